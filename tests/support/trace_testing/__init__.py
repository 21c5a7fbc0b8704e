"""Test support shared by the unit tests of every layer and the acceptance harness."""
