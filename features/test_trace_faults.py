"""Binds trace_faults.feature; the steps live in ``trace_steps``."""

from pytest_bdd import scenarios

scenarios("trace_faults.feature")
