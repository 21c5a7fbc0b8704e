"""Running a ``bgagent`` as a given person: this project's CLI in-process (the module), or
as an installed command in a process of its own, the way users run it.

``TRACE_SUITE_CLI`` names another ``bgagent``-compatible command line (for example
``node path/to/bgagent.js``): every run of the CLI in the scenarios is then that
command, as a subprocess, with the person's settings in ``BGAGENT_CONFIG_DIR``.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from bgagent.main import run
from trace_steps.scene import CliRun, Person

ENV_SUITE_CLI = "TRACE_SUITE_CLI"
_RUN_SECONDS = 60


def suite_cli(environ: Mapping[str, str] = os.environ) -> list[str] | None:
    """The command line of the CLI under judgement; None for this project's, in-process."""
    line = environ.get(ENV_SUITE_CLI, "").strip()
    return shlex.split(line) if line else None


def run_bgagent(
    person: Person,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    interrupt_when: threading.Event | None = None,
) -> CliRun:
    """One run of the CLI; ``interrupt_when``: press Ctrl-C once that event is set (the
    in-process CLI is interrupted by the caller, on the main thread)."""
    command = suite_cli()
    if command is not None:
        return run_command(
            command, person, args, env=env, stdin=stdin, interrupt_when=interrupt_when
        )
    stdout, stderr = io.BytesIO(), io.StringIO()
    environ = {**os.environ, **(env or {}), "BGAGENT_CONFIG_DIR": str(person.config_dir)}
    exit_code = run(
        list(args), stdout=stdout, stderr=stderr, stdin=io.StringIO(stdin), environ=environ
    )
    return _ran(CliRun(list(args), exit_code, stdout.getvalue(), stderr.getvalue()))


def run_bgagent_process(person: Person, *args: str) -> CliRun:
    """The command users run: the CLI under judgement, or this project's installed one."""
    command = suite_cli()
    if command is None:
        installed = shutil.which("bgagent", path=str(Path(sys.executable).parent))
        assert installed, "the bgagent command is not installed next to this Python"
        command = [installed]
    return run_command(command, person, args)


def run_command(
    command: Sequence[str],
    person: Person,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    interrupt_when: threading.Event | None = None,
) -> CliRun:
    environ = {**os.environ, **(env or {}), "BGAGENT_CONFIG_DIR": str(person.config_dir)}
    # Ctrl-C must reach it as at a terminal, even when the suite was started in the
    # background: a shell's `&` leaves SIGINT ignored, and a child inherits an ignored
    # signal, not a handled one.
    handled = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [*command, *args],
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    finally:
        signal.signal(signal.SIGINT, handled)
    with process:
        if interrupt_when is not None:

            def interrupt_once_under_way() -> None:
                if interrupt_when.wait(_RUN_SECONDS):
                    process.send_signal(signal.SIGINT)

            threading.Thread(target=interrupt_once_under_way, daemon=True).start()
        try:
            stdout, stderr = process.communicate(stdin.encode(), timeout=_RUN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
    return _ran(
        CliRun([*command, *args], process.returncode, stdout, stderr.decode("utf-8", "replace"))
    )


# Every run of the CLI in this session, for the check that no secret was ever shown.
RUNS: list[CliRun] = []


def _ran(cli_run: CliRun) -> CliRun:
    RUNS.append(cli_run)
    return cli_run
