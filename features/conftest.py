"""The acceptance suite's fixtures and steps, registered from their packages, and the
check every scenario ends with.

``trace_steps.environment`` starts the local AWS (moto, the S3 gate, the API
gateway) and the users; the other modules hold the steps, by concept. The
autouse check lives here, not in a plugin module: a plugin's fixtures apply to
every test of the session, and this one is for the scenarios only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from trace_harness.suite import SuiteStack
from trace_harness.targets import NotOnThisTarget
from trace_steps.cli import RUNS
from trace_steps.scene import Scene

pytest_plugins = [
    "trace_steps.environment",
    "trace_steps.conformance",
    "trace_steps.scene",
    "trace_steps.accounts",
    "trace_steps.tasks",
    "trace_steps.downloads",
    "trace_steps.permissions",
]


@pytest.fixture(autouse=True)
def _secrets_stay_secret(
    scene: Scene, caplog: pytest.LogCaptureFixture, suite_stack: SuiteStack
) -> Iterator[None]:
    """In every scenario: no ID token, refresh token or link signature in any layer's
    logs (their tracebacks and the function's log stream included) or in anything any
    CLI run printed, on stderr or stdout."""
    for layer in ("trace_agent", "bgagent"):
        caplog.set_level(logging.DEBUG, logger=layer)
    logs_before, runs_before = len(suite_stack.function_log()), len(RUNS)
    yield
    # In teardown, caplog.text would only hold the teardown's records.
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]
    formatter = logging.Formatter()
    shown = [r.getMessage() for r in records]
    shown += [formatter.formatException(r.exc_info) for r in records if r.exc_info]
    shown += suite_stack.function_log()[logs_before:]
    for cli_run in RUNS[runs_before:]:
        shown += [cli_run.stderr, cli_run.stdout.decode("utf-8", "replace")]
    text = "\n".join(shown)
    assert "X-Amz-Signature" not in text
    secrets = {f"{p.name}'s ID token": p.id_token for p in scene.people.values()}
    secrets |= {f"{p.name}'s refresh token": p.refresh_token for p in scene.people.values()}
    secrets |= _link_signatures(suite_stack)
    for what, secret in secrets.items():
        assert not secret or secret not in text, f"{what} was shown"


def _link_signatures(suite_stack: SuiteStack) -> dict[str, str]:
    try:
        seen = suite_stack.gate.presigned
    except NotOnThisTarget:
        return {}
    return {f"a link's signature ({s.signature[:8]}…)": s.signature for s in seen}
