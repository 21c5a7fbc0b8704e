"""Running the real ``bgagent`` CLI as a given person: in-process (the module), or as the
installed command in a process of its own, the way users run it."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bgagent.main import run
from trace_steps.scene import CliRun, Person


def run_bgagent(
    person: Person, *args: str, env: Mapping[str, str] | None = None, stdin: str = ""
) -> CliRun:
    stdout, stderr = io.BytesIO(), io.StringIO()
    environ = {**os.environ, **(env or {}), "BGAGENT_CONFIG_DIR": str(person.config_dir)}
    exit_code = run(
        list(args), stdout=stdout, stderr=stderr, stdin=io.StringIO(stdin), environ=environ
    )
    return _ran(CliRun(list(args), exit_code, stdout.getvalue(), stderr.getvalue()))


def run_bgagent_process(person: Person, *args: str) -> CliRun:
    command = shutil.which("bgagent", path=str(Path(sys.executable).parent))
    assert command, "the bgagent command is not installed next to this Python"
    environ = {**os.environ, "BGAGENT_CONFIG_DIR": str(person.config_dir)}
    done = subprocess.run(
        [command, *args], env=environ, capture_output=True, timeout=60, check=False
    )
    return _ran(CliRun([command, *args], done.returncode, done.stdout, done.stderr.decode()))


# Every run of the CLI in this session, for the check that no secret was ever shown.
RUNS: list[CliRun] = []


def _ran(cli_run: CliRun) -> CliRun:
    RUNS.append(cli_run)
    return cli_run
