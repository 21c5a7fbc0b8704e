"""Binds the scenarios of trace_download.feature; the steps live in ``features/steps``."""

from pytest_bdd import scenarios

scenarios("trace_download.feature")
