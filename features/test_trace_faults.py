"""Binds trace_faults.feature; the steps live in ``features/steps``."""

from pytest_bdd import scenarios

scenarios("trace_faults.feature")
