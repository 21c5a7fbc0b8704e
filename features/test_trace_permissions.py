"""Binds trace_permissions.feature; the steps live in ``features/steps``."""

from pytest_bdd import scenarios

scenarios("trace_permissions.feature")
