"""Binds trace_refusals.feature; the steps live in ``features/steps``."""

from pytest_bdd import scenarios

scenarios("trace_refusals.feature")
