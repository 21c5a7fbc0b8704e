"""Every test runs with fake AWS credentials and no profile: nothing can reach real AWS.

The one exception is the acceptance suite pointed at a deployed stack on purpose
(TRACE_SUITE_API_URL): its scenarios use the credentials of the shell that runs them.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import tempfile
from pathlib import Path

import pytest

# The acceptance suite's step modules hold its assertions: rewrite them for clear failures.
pytest.register_assert_rewrite("trace_steps", "trace_harness")

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
    if os.environ.get("TRACE_SUITE_API_URL") and request.node.get_closest_marker("integration"):
        return
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _FAKE_AWS.items():
        monkeypatch.setenv(name, value)


def pytest_unconfigure(config: pytest.Config) -> None:
    """pytest's temporary directories are gone with the session (retention "none");
    their parent, once empty, goes too, so that a run leaves nothing in the temp dir."""
    parent = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    with contextlib.suppress(OSError):  # only when empty: another session may use it
        parent.rmdir()
