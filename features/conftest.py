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
from trace_steps.scene import Scene

pytest_plugins = [
    "trace_steps.environment",
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
    """In every scenario: no ID token and no link signature in any layer's logs (the
    function's log stream included) or in what the CLI printed."""
    for layer in ("trace_agent", "bgagent"):
        caplog.set_level(logging.DEBUG, logger=layer)
    seen_before = len(suite_stack.function_log())
    yield
    # In teardown, caplog.text would only hold the teardown's records.
    logged = [r.getMessage() for when in ("setup", "call") for r in caplog.get_records(when)]
    logged += suite_stack.function_log()[seen_before:]
    shown = "\n".join(logged) + (scene.cli.stderr if scene.cli else "")
    assert "X-Amz-Signature" not in shown
    for person in scene.people.values():
        assert person.id_token not in shown, f"{person.name}'s ID token was shown"
