"""Every test runs with fake AWS credentials and no profile: nothing can reach real AWS.

The one exception is the acceptance suite pointed at a deployed stack on purpose
(TRACE_SUITE_API_URL): its scenarios use the credentials of the shell that runs them.
"""

from __future__ import annotations

import os
import shutil
from typing import IO

import pytest

# The acceptance suite's steps and kit hold its assertions: rewrite them for clear failures.
pytest.register_assert_rewrite("features", "testkit")

# Light modules only, before anything else of the kit: see pytest_plugin_registered.
from testkit.stack.launch import launch_early  # noqa: E402  (rewritten, as above)
from testkit.temp_roots import claim_root, remove_roots_that_are_over  # noqa: E402

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def pytest_plugin_registered(plugin: object) -> None:
    """As this conftest registers, pytest replays its config's registration: the
    earliest moment the session can tell whether it may run scenarios, and launch
    moto's server while the kit's other modules load."""
    if isinstance(plugin, pytest.Config):
        launch_early(plugin)


@pytest.fixture(autouse=True)
def _fake_aws_credentials(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    from testkit.settings import names_a_deployed_stack  # imported once moto is launched

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


_ROOT_KEY = pytest.StashKey[tuple[str, IO[bytes]]]()


def pytest_configure(config: pytest.Config) -> None:
    """Each session's temporary directories under a root of its own
    (``testkit.temp_roots``), removed whole when the session ends, so a run leaves
    nothing in the temp dir."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    remove_roots_that_are_over()
    root, lock = claim_root()
    os.environ["PYTEST_DEBUG_TEMPROOT"] = root
    config.stash[_ROOT_KEY] = (root, lock)


def pytest_unconfigure(config: pytest.Config) -> None:
    claimed = config.stash.get(_ROOT_KEY, None)
    if claimed is not None:
        root, lock = claimed
        shutil.rmtree(root, ignore_errors=True)
        lock.close()
        os.environ.pop("PYTEST_DEBUG_TEMPROOT", None)
