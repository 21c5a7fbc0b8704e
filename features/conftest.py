"""The acceptance suite's fixtures and hooks, in one place. The steps live in
``features/steps``, by concept; the kit they drive (the local stack, the CLI runners,
the judgement) in ``testkit``.

The session's stack is chosen once, by the environment (``testkit.settings``): the
suite's own local stack, or a stack it did not create. Fixtures and the skip rules ask
it; a scenario that needs what its target lacks is skipped before it runs. Scenarios
are kept apart by their own task ids; each gets an honest gate and clock, and what a
scenario changes beyond its own records it puts back itself. The autouse check lives
here, not in a plugin module: a plugin's fixtures apply to every test of the session,
and this one is for the scenarios only.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from testkit.apigw.gateway import LocalApiGateway
from testkit.aws.gate_control import S3GateHandle
from testkit.conformance import judgement
from testkit.conformance.agent import AgentCodeError, stop_agents
from testkit.conformance.agent import check as check_agent
from testkit.conformance.cli import RUNS, SignIns, shows_a_token, sign_in
from testkit.conformance.phrasebook import Phrasebook
from testkit.lambda_.local_lambda import LOG_TRUNCATED, InvocationFailed, LocalLambda
from testkit.scene import Person, Scene
from testkit.settings import (
    CAPABILITIES,
    NEEDS,
    NOT_APPLICABLE,
    NotOnThisTarget,
    Settings,
    SettingsError,
    needs_local_stack,
)
from testkit.stack.footprint import TAG_KEY
from testkit.stack.launch import selects_scenarios, take_launched
from testkit.stack.resources import Resources
from testkit.stack.session import Stack, StackOpening
from testkit.stack.users import UserPool, create_user_pool

pytest_plugins = [
    "testkit.conformance.judgement",
    "features.steps.accounts",
    "features.steps.tasks",
    "features.steps.downloads",
    "features.steps.permissions",
]

_OPENING = pytest.StashKey[StackOpening | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("trace suite").addoption(
        "--conformance-report",
        metavar="PATH",
        help="write what the acceptance suite judged, and how each failed scenario "
        "differed, as JSON (for python -m tools.living_docs --conformance)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """The tags a scenario may need of its target are markers (``testkit.settings``),
    and the judgement begins. For a run that says it holds scenarios (its mark
    expression names `integration` other than as `not integration`), the collector is
    tuned, and the session's stack opens now, while pytest collects, in moto's server
    launched as the project's conftest registered (``testkit.stack.launch``). A wrong
    guess costs only time: a stack nobody used is stopped at the end."""
    for tag, meaning in CAPABILITIES.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}; skipped on a target without it")
    for tag, meaning in NEEDS.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}; else not applicable")
    for tag, meaning in judgement.TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}")
    judgement.begin(config)
    if not selects_scenarios(config):
        return
    # The youngest generation is collected after 100,000 allocations instead of 700:
    # the scenarios allocate much and keep little, and the collections would take a
    # large share of the run. The older generations keep their rhythm, relative to it.
    gc.set_threshold(100_000, 10, 10)
    moto = take_launched(config)
    if moto is not None:  # not for a listing, nor for the controller of workers
        try:
            config.stash[_OPENING] = StackOpening(Settings.current(), moto)
        except SettingsError:
            moto.stop()  # the stack fixture says why, in one line


def pytest_collectstart(collector: pytest.Collector) -> None:
    """The stack opens while pytest collects (``StackOpening``)."""
    opening = collector.config.stash.get(_OPENING, None)
    if opening is not None:
        opening.start()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The stack is open before the tests run. What is loaded by now (pytest, boto3, the
    code under test, the stack) lives until the end: once collection's garbage is gone,
    the collector no longer walks it."""
    opening = session.config.stash.get(_OPENING, None)
    if opening is not None:
        opening.wait()
    if selects_scenarios(session.config):
        gc.collect()
        gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    unused = take_launched(config)
    if unused is not None:
        unused.stop()
    opening = config.stash.get(_OPENING, None)
    if opening is not None:
        opening.close()
    if selects_scenarios(config):
        # The interpreter's last collection would walk everything the run loaded (about
        # a tenth of a second); the process's end frees it all the same.
        gc.freeze()


@pytest.fixture(scope="session")
def stack(pytestconfig: pytest.Config) -> Iterator[Stack]:
    """The stack of this session, running until the session ends."""
    opening = pytestconfig.stash.get(_OPENING, None)
    pytestconfig.stash[_OPENING] = None  # closed here
    if opening is None:
        launched = take_launched(pytestconfig)
        try:
            opening = StackOpening(Settings.current(), launched)
        except SettingsError as unusable:
            if launched is not None:
                launched.stop()
            raise pytest.UsageError(str(unusable)) from None
    with ExitStack() as stopping:
        stopping.callback(opening.close)
        try:
            running = opening.stack()
        except InvocationFailed as failed:  # the handler under judgement cannot run
            pytest.exit(f"the trace API's handler cannot run: {failed}", returncode=4)
        agent = Settings.current().agent
        if agent is not None:
            stopping.callback(stop_agents)
            try:
                check_agent(agent, running.resources.agent.environment)
            except AgentCodeError as failed:
                pytest.exit(f"the agent cannot run: {failed}", returncode=4)
        shell = stopping.enter_context(pytest.MonkeyPatch.context())
        # The users' shell: for a local stack, bgagent login reaches its user pool.
        for name, value in running.cli_environment().items():
            shell.setenv(name, value)
        yield running


@pytest.fixture
def gate(stack: Stack) -> S3GateHandle:
    """The S3 gate, for the steps that move its clock, read its records or break the wire."""
    with needs_local_stack():
        return stack.gate


@pytest.fixture
def api_gateway(stack: Stack) -> LocalApiGateway:
    """The local API Gateway, for the steps that move its authorizer's clock."""
    with needs_local_stack():
        return stack.gateway


@pytest.fixture
def function(stack: Stack) -> LocalLambda:
    """The trace URL function in its local Lambda, for the steps that read its logs."""
    with needs_local_stack():
        return stack.function


@pytest.fixture(scope="session")
def phrasebook(pytestconfig: pytest.Config) -> Phrasebook:
    """How the CLI under judgement words the messages the scenarios check."""
    return judgement.phrasebook_of(pytestconfig)


@pytest.fixture
def resources(stack: Stack) -> Resources:
    """The stack's resources as a scenario finds them: an honest gate and clock, its own
    task ids."""
    stack.start_scenario()
    return stack.resources


@pytest.fixture(scope="session")
def signed_in(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> SignIns:
    """Each person configures bgagent and signs in through it once per session; every
    scenario that calls on them then works on its own copy of that configuration. Their
    credentials live under pytest's temporary directories, removed with the run."""
    sessions: dict[str, Person] = {}

    def person(name: str, workdir: Path) -> Person:
        if name not in sessions:
            home = tmp_path_factory.mktemp(f"bgagent-{name.lower()}")
            user, users = stack.users.user(name), stack.users
            sessions[name] = sign_in(name, user, stack.resources.api_url, users.pool, home)
        first = sessions[name]
        own = workdir.parent / f"bgagent-{name.lower()}"
        return Person(name, first.user, own, first.id_token, first.refresh_token, first.config_dir)

    return person


@pytest.fixture
def other_user_pool(resources: Resources) -> Iterator[UserPool]:
    """A user pool of someone else's, removed after the scenario; marked as the
    session's, so that a run killed mid-scenario leaves nothing a later one cannot
    prove its own."""
    cognito = resources.aws.client("cognito-idp")
    other = create_user_pool(
        cognito,
        name=f"{resources.mark.session}-elsewhere",
        region=resources.pool.region,
        endpoint=resources.pool.endpoint,
        tags={TAG_KEY: str(resources.mark)},
    )
    yield other
    cognito.delete_user_pool(UserPoolId=other.id)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenarios that need what the chosen target lacks are skipped, and say why; those
    that need what the implementation under judgement lacks are not applicable."""
    try:
        settings = Settings.current()
    except SettingsError as unusable:
        if selects_scenarios(config):
            raise pytest.UsageError(str(unusable)) from None
        return  # a run for the unit tests: a scenario that still runs fails in set-up
    for item in items:
        tags = [mark.name for mark in item.iter_markers()]
        reason = settings.target.skip_reason(tags)
        lacking = settings.lacks(tags)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif lacking:
            item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE + lacking))


_SCENARIOS = itertools.count(1)


@pytest.fixture
def scene(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """What the scenario has seen. Its folder is numbered in the order scenarios ran and
    named after it, under the session's temporary folder: cheaper than pytest's
    tmp_path, which scans and re-links its base folder for every test."""
    readable = re.sub(r"[^\w-]+", "_", request.node.name)[:40]
    folder = tmp_path_factory.getbasetemp() / "scenarios" / f"{next(_SCENARIOS):04d}-{readable}"
    (folder / "work").mkdir(parents=True)
    return Scene(workdir=folder / "work")


@pytest.fixture(autouse=True)
def _secrets_stay_secret(
    scene: Scene, caplog: pytest.LogCaptureFixture, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[None]:
    """In every scenario: no ID token, refresh token or link signature in any layer's
    logs (their tracebacks and the function's log stream included) or in anything any
    CLI run printed, on stderr or stdout."""
    for layer in ("trace_agent", "bgagent"):
        caplog.set_level(logging.DEBUG, logger=layer)
    log_mark, runs_before = stack.function_log_mark(), len(RUNS)
    request.node.stash[judgement.WITNESSES] = lambda: _witnesses(scene, stack, log_mark)
    yield
    try:
        _check_secrets(scene, caplog, stack, log_mark, runs_before)
    except AssertionError:
        # Reported once the session's stack may be gone: what IAM refused is read now.
        refused = stack.refusals()
        request.node.stash[judgement.WITNESSES] = lambda: _witnesses(
            scene, stack, log_mark, refused
        )
        raise


def _check_secrets(
    scene: Scene, caplog: pytest.LogCaptureFixture, stack: Stack, log_mark: int, runs_before: int
) -> None:
    # In teardown, caplog.text would only hold the teardown's records.
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]
    formatter = logging.Formatter()
    shown = [r.getMessage() for r in records]
    shown += [formatter.formatException(r.exc_info) for r in records if r.exc_info]
    logged = stack.function_log_since(log_mark)
    assert LOG_TRUNCATED not in logged, (
        "the function's log passed its bound in this scenario: it was not all checked"
    )
    shown += logged
    for cli_run in RUNS[runs_before:]:
        shown += [cli_run.stderr, cli_run.stdout.decode("utf-8", "replace")]
    text = "\n".join(shown)
    assert "X-Amz-Signature" not in text
    secrets = {f"{p.name}'s ID token": p.id_token for p in scene.people.values()}
    secrets |= {f"{p.name}'s refresh token": p.refresh_token for p in scene.people.values()}
    secrets |= _link_signatures(stack) | _tokens_presented(stack)
    for what, secret in secrets.items():
        assert not secret or secret not in text, f"{what} was shown"
    assert not shows_a_token(text), "a token was shown (a JSON Web Token the suite did not know)"


def _link_signatures(stack: Stack) -> dict[str, str]:
    try:
        seen = stack.gate.presigned
    except NotOnThisTarget:
        return {}
    return {f"a link's signature ({s.signature[:8]}…)": s.signature for s in seen}


def _tokens_presented(stack: Stack) -> dict[str, str]:
    """Every ID token any CLI presented to the API, whatever it keeps its tokens in."""
    try:
        authorizer = stack.gateway.authorizer
    except NotOnThisTarget:
        return {}
    seen = set(authorizer.seen) if authorizer is not None else set()
    # Only what could be a token: a CLI that sends a word would fail every scenario.
    tokens = [token for token in seen if len(token) >= 40]
    return {f"an ID token presented to the API ({token[-8:]}…)": token for token in tokens}


def _witnesses(
    scene: Scene, stack: Stack, log_mark: int, refused: list[str] | None = None
) -> list[str]:
    """What the layers said in a scenario that failed: the CLI's last line, the handler's
    last error record, and what IAM refused (``refused``: as read before the stack
    could stop)."""
    said = []
    if scene.cli is not None:
        lines = scene.cli.stderr_lines or ["(nothing on stderr)"]
        said.append(f"the CLI said, ending with status {scene.cli.exit_code}: {lines[-1]}")
    errors = [line for line in stack.function_log_since(log_mark) if _is_error(line)]
    if errors:
        said.append(f"the handler's log: {errors[-1]}")
    said += [f"IAM: {refusal}" for refusal in (stack.refusals() if refused is None else refused)]
    return said


def _is_error(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return "ERROR" in line
    return isinstance(record, dict) and str(record.get("level", "")).upper() in ("ERROR", "FATAL")
