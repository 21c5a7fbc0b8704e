"""Running the real ``bgagent`` CLI module as a given person, in-process."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

from bgagent.main import run
from trace_steps.scene import CliRun, Person


def run_bgagent(person: Person, *args: str, env: Mapping[str, str] | None = None) -> CliRun:
    stdout, stderr = io.BytesIO(), io.StringIO()
    environ = {**os.environ, **(env or {}), "BGAGENT_CONFIG_DIR": str(person.config_dir)}
    exit_code = run(list(args), stdout=stdout, stderr=stderr, environ=environ)
    return CliRun(list(args), exit_code, stdout.getvalue(), stderr.getvalue())
