"""The acceptance suite run as a session of its own, the way a user starts it: for the
harness's tests of what a whole run does (another CLI, handler or phrasebook)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from testkit.conformance.cli import installed_bgagent

ROOT = Path(__file__).resolve().parents[2]


def run_acceptance_suite(
    *args: str, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``pytest -m integration`` with ``args`` from the project's root, in ``env`` on top
    of this one's environment. A session of its own: sharing this one's temporary root,
    its clean-up (the project keeps no temporary folders) would remove this test's."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "integration",
            *args,
        ],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def judged(done: subprocess.CompletedProcess[str]) -> str:
    """What a run's terminal said under "what the acceptance suite judged"."""
    return done.stdout.split("what the acceptance suite judged", 1)[1]


def another_cli(folder: Path, name: str, body: str) -> str:
    """The command line of a CLI written for a test: a Python script ``body`` that may
    end by running this project's bgagent (``BGAGENT``) with its own arguments."""
    script = folder / f"{name}.py"
    script.write_text(f"BGAGENT = {installed_bgagent()!r}\n{body}", encoding="utf-8")
    return f"{sys.executable} {script}"


def judged_with_cli(folder: Path, name: str, body: str, *args: str) -> str:
    """What a run of the acceptance suite (``args``: which scenarios) judged, with another
    CLI written for the test (``another_cli``) whose differences fail it."""
    done = run_acceptance_suite(*args, env={"TRACE_SUITE_CLI": another_cli(folder, name, body)})
    assert done.returncode == 1, done.stdout[-3000:]
    return judged(done)


# The settings of a stack the suite did not create (none answers at this address).
STACK_NOT_CREATED_HERE = {
    "TRACE_SUITE_API_URL": "https://api.invalid/prod",
    "TRACE_SUITE_USER_POOL_ID": "us-east-1_x",
    "TRACE_SUITE_CLIENT_ID": "client",
    "TRACE_ARTIFACTS_BUCKET_NAME": "bucket",
    "TASK_TABLE_NAME": "table",
    "AWS_REGION": "us-east-1",
}
