"""The acceptance suite run as a session of its own, the way a user starts it: for the
harness's tests of what a whole run does (another CLI, handler or phrasebook)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


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
