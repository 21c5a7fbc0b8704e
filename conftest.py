"""Every test runs with fake AWS credentials and no profile: nothing can reach real AWS.

The one exception is the acceptance suite pointed at a deployed stack on purpose
(TRACE_SUITE_API_URL): its scenarios use the credentials of the shell that runs them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The acceptance suite's steps and kit hold its assertions: rewrite them for clear failures.
pytest.register_assert_rewrite("features", "testkit")

from testkit.settings import names_a_deployed_stack  # noqa: E402  (rewritten, as above)
from testkit.stack.footprint import is_running  # noqa: E402

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@pytest.fixture(autouse=True)
def _fake_aws_credentials(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = request.node.get_closest_marker("integration") is not None
    if not scenario:
        # The suite's settings choose what the scenarios judge; a test of the kit sets
        # the ones it means, whatever the shell running all tests exported.
        for name in [name for name in os.environ if name.startswith("TRACE_SUITE_")]:
            monkeypatch.delenv(name)
    if names_a_deployed_stack() and scenario:
        return
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _FAKE_AWS.items():
        monkeypatch.setenv(name, value)


_ROOT_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Each session's temporary directories under a root of its own: sessions running
    side by side (two suites, a mutation run) never clean up each other's, and the
    whole root goes when the session ends, so a run leaves nothing in the temp dir."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    _remove_roots_of_sessions_that_are_gone()
    root = tempfile.mkdtemp(prefix=f"pytest-bgagent-{os.getpid()}-")
    os.environ["PYTEST_DEBUG_TEMPROOT"] = root
    config.stash[_ROOT_KEY] = root


def pytest_unconfigure(config: pytest.Config) -> None:
    root = config.stash.get(_ROOT_KEY, None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
        os.environ.pop("PYTEST_DEBUG_TEMPROOT", None)


def _remove_roots_of_sessions_that_are_gone() -> None:
    """A session killed before its end left its root: the next one removes it."""
    for root in Path(tempfile.gettempdir()).glob("pytest-bgagent-*-*"):
        pid = root.name.split("-")[2]
        if pid.isdigit() and not is_running(int(pid)):
            shutil.rmtree(root, ignore_errors=True)
