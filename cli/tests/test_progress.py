"""A download's progress: on a terminal's stderr once it has taken a second, while the
trace goes to a file; cleared before any message. Never when stderr is piped, never
while the trace is printed to the terminal or piped (`| cat`, `| less` show it on the
same terminal), never in the data."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bgagent import progress
from bgagent.download import announced_size
from bgagent.main import run
from bgagent.progress import Progress


class Terminal(io.StringIO):
    """What bgagent sees as stderr when it runs in a terminal."""

    def isatty(self) -> bool:
        return True


def clock(*times: float) -> Iterator[float]:
    return iter(times)


def test_when_nobody_can_watch_the_chunks_pass_untouched() -> None:
    chunks = iter([b"abc"])
    assert Progress(None, 3).track(chunks) is chunks


def test_nothing_shows_in_the_first_second() -> None:
    terminal = Terminal()
    times = clock(1000.0, 1000.4, 1000.999)  # a monotonic clock starts anywhere
    watched = Progress(terminal, 3072, clock=lambda: next(times))
    assert list(watched.track(iter([b"a" * 1024, b"b" * 1024]))) == [b"a" * 1024, b"b" * 1024]
    watched.close()
    assert terminal.getvalue() == ""


def test_after_a_second_the_bar_shows_the_bytes_and_the_share_done() -> None:
    terminal = Terminal()
    times = clock(1000.0, 1000.5, 1001.0, 1001.5)
    watched = Progress(terminal, 4 * 1024 * 1024, clock=lambda: next(times))
    chunks = [b"x" * 1024 * 1024] * 3
    assert list(watched.track(iter(chunks))) == chunks  # the data itself is untouched
    shown = terminal.getvalue()
    assert shown.startswith("\rDownloading:  50%|")
    assert "2.00M/4.00M" in shown  # bytes so far, of the announced size, in MiB
    assert "B/s" in shown  # the rate
    watched.close()
    cleared = terminal.getvalue()[len(shown) :]
    assert cleared.startswith("\r")
    assert cleared.endswith("\r")
    assert cleared.strip() == ""  # the line is blanked: the next message starts clean
    watched.close()  # closing twice does nothing
    assert terminal.getvalue() == shown + cleared


def test_an_unknown_size_still_shows_the_bytes() -> None:
    terminal = Terminal()
    times = clock(0.0, 1.0)
    watched = Progress(terminal, None, clock=lambda: next(times))
    list(watched.track(iter([b"x" * 2048])))
    assert "Downloading: 2.00kB" in terminal.getvalue()


class BrokenTerminal(Terminal):
    def write(self, text: str) -> int:
        raise OSError(11, "Resource temporarily unavailable")


def test_a_terminal_that_refuses_the_bar_never_fails_the_download() -> None:
    times = clock(0.0, 1.0, 1.5, 2.0)
    watched = Progress(BrokenTerminal(), 3, clock=lambda: next(times))
    assert list(watched.track(iter([b"a", b"b", b"c"]))) == [b"a", b"b", b"c"]
    watched.close()


class TerminalThatStopsTaking(Terminal):
    """Takes the bar's first drawing, then refuses every write (a terminal gone away)."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise OSError(11, "Resource temporarily unavailable")
        return super().write(text)


def test_a_bar_that_can_no_longer_be_drawn_is_given_up() -> None:
    terminal = TerminalThatStopsTaking()
    times = clock(0.0, 1.0)
    watched = Progress(terminal, 2, clock=lambda: next(times))
    assert list(watched.track(iter([b"a"]))) == [b"a"]
    assert "Downloading" in terminal.getvalue()
    watched.close()  # its clearing is refused: given up, not raised
    watched.close()


def test_the_bar_has_no_thread_of_its_own() -> None:
    """tqdm's monitor thread would redraw the bar over the messages that follow it."""
    times = clock(0.0, 1.0)
    watched = Progress(Terminal(), 2, clock=lambda: next(times))
    list(watched.track(iter([b"a"])))
    assert [t for t in threading.enumerate() if type(t).__name__ == "TMonitor"] == []
    watched.close()


def test_without_tqdm_there_is_no_bar_and_the_download_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as in an install that lacks it
    terminal = Terminal()
    times = clock(0.0, 1.0, 1.5)
    watched = Progress(terminal, 2, clock=lambda: next(times))
    assert list(watched.track(iter([b"a", b"b"]))) == [b"a", b"b"]
    watched.close()
    assert terminal.getvalue() == ""


@pytest.mark.parametrize(
    ("header", "size"),
    [("0", 0), ("1448884", 1448884), ("9" * 19, int("9" * 19))]
    + [(odd, None) for odd in ("", "-1", "12, 12", "²", "١٢", " 12", "1e3", "9" * 20, "9" * 5000)],
)
def test_only_a_plain_content_length_is_a_size(header: str, size: int | None) -> None:
    assert announced_size(header) == size


@pytest.fixture
def shows_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar is due from the first chunk: the in-process downloads here take milliseconds."""
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0.0)


def download(config_dir: Path, *args: str, stderr: io.StringIO) -> tuple[int, bytes]:
    stdout = io.BytesIO()
    environ = {"BGAGENT_CONFIG_DIR": str(config_dir)}
    code = run(["trace", "download", "t-1", *args], stdout=stdout, stderr=stderr, environ=environ)
    return code, stdout.getvalue()


@pytest.mark.usefixtures("shows_at_once")
def test_saving_to_a_file_shows_progress_then_only_the_message(
    config_dir: Path, backend, tmp_path: Path
) -> None:
    terminal, target = Terminal(), tmp_path / "trace.jsonl.gz"
    assert download(config_dir, "-o", str(target), stderr=terminal) == (0, b"")
    shown = terminal.getvalue()
    assert "Downloading: 100%" in shown
    assert shown.rsplit("\r", 1)[1] == f"Wrote {target}\n"  # after the cleared bar
    assert target.read_bytes() == backend.artifact


@pytest.mark.usefixtures("shows_at_once")
def test_a_piped_stderr_gets_no_progress(config_dir: Path, backend, tmp_path: Path) -> None:
    piped, target = io.StringIO(), tmp_path / "trace.jsonl.gz"
    assert download(config_dir, "-o", str(target), stderr=piped) == (0, b"")
    assert piped.getvalue() == f"Wrote {target}\n"


@pytest.mark.usefixtures("shows_at_once")
def test_a_trace_written_to_another_program_shows_no_progress(config_dir: Path, backend) -> None:
    terminal = Terminal()
    assert download(config_dir, stderr=terminal) == (0, backend.trace_lines)
    assert terminal.getvalue() == ""


@pytest.mark.usefixtures("shows_at_once")
def test_a_failed_download_clears_the_bar_before_its_message(
    config_dir: Path, backend, tmp_path: Path
) -> None:
    backend.object_body = backend.artifact[:-1] + bytes([backend.artifact[-1] ^ 1])
    terminal = Terminal()
    code, _ = download(config_dir, "-o", str(tmp_path / "trace.jsonl.gz"), stderr=terminal)
    assert code == 1
    shown = terminal.getvalue()
    assert "Downloading: 100%" in shown
    assert shown.rsplit("\r", 1)[1].startswith("bgagent: ")


def in_a_terminal(config_dir: Path, *args: str, stdout: Any) -> tuple[int, bytes]:
    """The installed command with stderr on a real terminal (a pseudo-terminal), and
    stdout as given: "terminal" (the same one), or what subprocess accepts (a pipe, a
    file). What the terminal showed, whole, once the command has exited."""
    controller, terminal = pty.openpty()
    # 80 columns, as a terminal window has (a new pseudo-terminal has none).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)}
    with subprocess.Popen(
        [sys.executable, "-m", "bgagent", "trace", "download", "t-1", *args],
        env=env,
        stdout=terminal if stdout == "terminal" else stdout,
        stderr=terminal,
    ) as process:
        os.close(terminal)
        shown = b""
        while select.select([controller], [], [], 30)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command has closed the terminal's last end
                break
            if not chunk:
                break
            shown += chunk
        os.close(controller)
        if process.stdout is not None:
            process.stdout.read()
        return process.wait(timeout=30), shown


def test_a_slow_download_in_a_real_terminal_shows_progress(
    config_dir: Path, backend, tmp_path: Path
) -> None:
    backend.object_stall_seconds = 1.5  # past the second after which progress shows
    target = tmp_path / "trace.jsonl.gz"
    code, shown = in_a_terminal(config_dir, "-o", str(target), stdout=subprocess.DEVNULL)
    assert code == 0
    assert b"Downloading: 100%" in shown
    assert shown.endswith(f"\rWrote {target}\r\n".encode())
    assert target.read_bytes() == backend.artifact


def test_a_slow_download_redirected_to_a_file_shows_progress(
    config_dir: Path, backend, tmp_path: Path
) -> None:
    backend.object_stall_seconds = 1.5
    target = tmp_path / "trace.jsonl"
    with target.open("wb") as redirected:  # bgagent trace download t-1 > trace.jsonl
        code, shown = in_a_terminal(config_dir, stdout=redirected)
    assert code == 0
    assert b"Downloading: 100%" in shown
    assert target.read_bytes() == backend.trace_lines  # the file holds only the trace


def test_a_trace_piped_to_another_program_shows_no_progress(config_dir: Path, backend) -> None:
    backend.object_stall_seconds = 1.5
    code, shown = in_a_terminal(config_dir, stdout=subprocess.PIPE)  # | cat
    assert (code, shown) == (0, b"")


def test_a_trace_printed_in_the_terminal_shows_no_progress(config_dir: Path, backend) -> None:
    backend.object_stall_seconds = 1.5
    code, shown = in_a_terminal(config_dir, stdout="terminal")
    assert code == 0
    assert shown == backend.trace_lines.replace(b"\n", b"\r\n")  # the terminal's newlines
