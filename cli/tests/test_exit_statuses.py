"""What a script sees of each way a run ends: its exit status, and at most one line on
stderr. The statuses follow the shell's conventions, so they are pinned as numbers."""

from __future__ import annotations

import io
import os
import pty
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgagent import trace_command
from bgagent.errors import CliError
from bgagent.main import Terminated, run
from bgagent.trace_command import download_timeout

UNEXPECTED = (
    "bgagent: unexpected error (RuntimeError); please report it "
    "(BGAGENT_DEBUG=1 shows the details).\n"
)


@pytest.mark.parametrize(
    ("raised", "status", "stderr"),
    [
        (CliError("Something the user can fix."), 1, "bgagent: Something the user can fix.\n"),
        (KeyboardInterrupt(), 130, "bgagent: interrupted; nothing was saved.\n"),
        (Terminated(signal.SIGTERM), 143, "bgagent: stopped by a signal; nothing was saved.\n"),
        (Terminated(signal.SIGHUP), 129, "bgagent: stopped by a signal; nothing was saved.\n"),
        (BrokenPipeError(), 141, ""),  # `| head` went away: nothing to report
        (RuntimeError("a defect"), 70, UNEXPECTED),
    ],
    ids=["expected-failure", "ctrl-c", "sigterm", "sighup", "broken-pipe", "defect"],
)
def test_each_way_a_run_ends_has_its_exit_status(
    raised: BaseException,
    status: int,
    stderr: str,
    bgagent: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def download_trace(*_: object, **__: object) -> int:
        raise raised

    monkeypatch.setattr(trace_command, "download_trace", download_trace)
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stderr, result.stdout) == (status, stderr, b"")


def test_a_defect_shows_its_traceback_when_asked_to(
    bgagent: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def download_trace(*_: object, **__: object) -> int:
        raise RuntimeError("a defect")

    monkeypatch.setattr(trace_command, "download_trace", download_trace)
    with pytest.raises(RuntimeError, match="a defect"):
        bgagent("trace", "download", "t-1", BGAGENT_DEBUG="1")


@pytest.mark.parametrize(
    "argv", [[], ["trace"], ["trace", "download"], ["--no-such-option"], ["trace", "dl", "t-1"]]
)
def test_a_usage_error_exits_2(argv: list[str], bgagent: Callable[..., Any]) -> None:
    result = bgagent(*argv)
    assert result.exit_code == 2
    assert result.stderr.startswith("usage: bgagent")
    assert result.stdout == b""


def test_help_exits_0(bgagent: Callable[..., Any]) -> None:
    assert bgagent("--help").exit_code == 0


def test_a_download_gives_up_after_two_minutes_of_network_time_by_default() -> None:
    assert download_timeout({}) == 120.0
    assert download_timeout({"BGAGENT_DOWNLOAD_TIMEOUT": ""}) == 120.0
    assert download_timeout({"BGAGENT_DOWNLOAD_TIMEOUT": "7.5"}) == 7.5
    assert download_timeout({"BGAGENT_DOWNLOAD_TIMEOUT": str(7 * 24 * 3600)}) == 604800.0


def test_help_goes_to_the_stdout_it_is_given() -> None:
    stdout, stderr = io.BytesIO(), io.StringIO()
    assert run(["--help"], stdout=stdout, stderr=stderr, environ={}) == 0
    assert stdout.getvalue().startswith(b"usage: bgagent")
    assert stderr.getvalue() == ""


def test_a_usage_error_goes_to_the_stderr_it_is_given() -> None:
    stdout, stderr = io.BytesIO(), io.StringIO()
    assert run(["trace", "nothing"], stdout=stdout, stderr=stderr, environ={}) == 2
    assert stdout.getvalue() == b""
    assert stderr.getvalue().splitlines()[-1].startswith("bgagent: error: argument trace_command")


def test_a_terminal_given_as_stdout_is_one(config_dir: Path) -> None:
    """What run() is told is stdout is judged as the process's own stdout would be."""
    controller, terminal = pty.openpty()
    stderr = io.StringIO()
    with os.fdopen(terminal, "wb") as stdout:
        code = run(
            ["trace", "download", "t-1", "-o", "-"],
            stdout=stdout,
            stderr=stderr,
            environ={"BGAGENT_CONFIG_DIR": str(config_dir)},
        )
    os.close(controller)
    assert code == 1
    assert "Refusing to write the gzip artifact to a terminal" in stderr.getvalue()


def test_help_to_a_reader_that_went_away_ends_quietly_as_a_download_does() -> None:
    """`bgagent --help | head -c0`: the broken pipe's status, 141, and nothing said."""
    reader, writer = os.pipe()
    os.close(reader)
    stderr = io.StringIO()
    with os.fdopen(writer, "wb", buffering=0) as stdout:
        assert run(["--help"], stdout=stdout, stderr=stderr, environ={}) == 141
    assert stderr.getvalue() == ""
