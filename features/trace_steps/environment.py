"""The acceptance suite's environment: the stack it runs against, and its users.

One object per session says what the target is and what it can do
(``trace_harness.targets``): the suite's own local stack, built by
``LocalStack.running`` (the same builder as the sandbox and the benchmarks), or a
stack the suite did not create (``DeployedStack``). Fixtures and the skip rules ask
it; a scenario that needs what its target lacks is skipped before it runs.
Scenarios are kept apart by their own task ids; each gets an honest gate and
clock, and what a scenario changes beyond its own records it puts back itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, cast

import pytest

from trace_harness.api_gateway import LocalApiGateway
from trace_harness.deployed import IncompleteTarget
from trace_harness.function_code import FunctionCodeError
from trace_harness.identities import UserDirectory
from trace_harness.local_aws import MotoServer
from trace_harness.local_lambda import InvocationFailed, LocalLambda
from trace_harness.s3_gate import S3Gate
from trace_harness.stack import TraceStack
from trace_harness.suite import SuiteStack, launch_moto, open_suite_stack, target_of
from trace_harness.targets import NotOnThisTarget

_LAUNCHED = pytest.StashKey[MotoServer | None]()


def pytest_configure(config: pytest.Config) -> None:
    """moto's server starts now, while pytest collects, when the run may hold scenarios:
    its mark expression names `integration` other than as `not integration`, it runs
    tests, and it is not the controller of parallel workers (each starts its own). A
    wrong guess costs only time: a server nobody used is stopped at the end, and a
    session that finds none starts its own."""
    controller = bool(getattr(config.option, "numprocesses", None)) and not hasattr(
        config, "workerinput"
    )
    if selects_scenarios(config) and not config.option.collectonly and not controller:
        with contextlib.suppress(OSError):  # then the session starts its own
            config.stash[_LAUNCHED] = launch_moto()


def selects_scenarios(config: pytest.Config) -> bool:
    """Whether the run's mark expression names `integration` other than as `not
    integration`: whether it may hold scenarios."""
    markexpr = " ".join(config.option.markexpr.split())
    return re.search(r"(?<!not )\bintegration\b", markexpr) is not None


def pytest_unconfigure(config: pytest.Config) -> None:
    unused = config.stash.get(_LAUNCHED, None)
    if unused is not None:
        unused.stop()


@pytest.fixture(scope="session")
def suite_stack(pytestconfig: pytest.Config) -> Iterator[SuiteStack]:
    """The stack of this session, running until the session ends."""
    moto = pytestconfig.stash.get(_LAUNCHED, None)
    pytestconfig.stash[_LAUNCHED] = None  # the stack stops it now
    try:
        opened = open_suite_stack(moto=moto)
    except (IncompleteTarget, FunctionCodeError) as unusable:
        if moto is not None:
            moto.stop()
        raise pytest.UsageError(str(unusable)) from None
    with ExitStack() as stopping:
        try:
            running = stopping.enter_context(opened)
        except InvocationFailed as failed:  # the handler under judgement cannot run
            pytest.exit(f"the trace API's handler cannot run: {failed}", returncode=4)
        shell = stopping.enter_context(pytest.MonkeyPatch.context())
        # The users' shell: for a local stack, bgagent login reaches its user pool.
        for name, value in running.cli_environment().items():
            shell.setenv(name, value)
        yield running


def _local(suite_stack: SuiteStack, part: str) -> Any:
    """A part of the suite's own local stack; a scenario on a target without it fails,
    saying which tag it lacks."""
    try:
        return getattr(suite_stack, part)
    except NotOnThisTarget as missing:
        pytest.fail(f"this scenario needs {missing}: tag it @needs_local_stack")


@pytest.fixture
def gate(suite_stack: SuiteStack) -> S3Gate:
    """The S3 gate, for the steps that move its clock, read its records or break the wire."""
    return cast(S3Gate, _local(suite_stack, "gate"))


@pytest.fixture
def api_gateway(suite_stack: SuiteStack) -> LocalApiGateway:
    """The local API Gateway, for the steps that move its authorizer's clock."""
    return cast(LocalApiGateway, _local(suite_stack, "gateway"))


@pytest.fixture
def function(suite_stack: SuiteStack) -> LocalLambda:
    """The trace URL function in its local Lambda, for the steps that read its logs."""
    return cast(LocalLambda, _local(suite_stack, "function"))


@pytest.fixture(scope="session")
def directory(suite_stack: SuiteStack) -> UserDirectory:
    """The platform's users: each signed up once per session."""
    return suite_stack.users


@pytest.fixture(scope="session")
def api_url(suite_stack: SuiteStack) -> str:
    return suite_stack.api_url


@pytest.fixture
def stack(suite_stack: SuiteStack) -> TraceStack:
    """The stack as a scenario finds it: an honest gate and clock, its own task ids."""
    suite_stack.start_scenario()
    return suite_stack.stack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenarios that need what the chosen target lacks are skipped, and say why."""
    try:
        target = target_of()
    except IncompleteTarget as incomplete:
        raise pytest.UsageError(str(incomplete)) from None
    for item in items:
        reason = target.skip_reason(mark.name for mark in item.iter_markers())
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
