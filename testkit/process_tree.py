"""A foreign process run within bounds, and ended together with everything it started,
wherever that went.

A process the suite starts for an implementation under judgement (a CLI run, a
function instance) carries a mark in its environment, which whatever it starts
inherits: a helper that moves to a session of its own, out of the process group, keeps
it. Ending the tree kills the group, then every process whose environment carries the
mark (read from Linux's ``/proc``, as the same user may; elsewhere only the group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

MARK = "TRACE_SUITE_PROCESS_TREE"
_SLICE_SECONDS = 1.0  # how long its pipes may stay open after its end
_POLL_SECONDS = 0.1  # how often a run is looked at while it says nothing
_CHUNK = 65536
_PROC = Path("/proc")
_ROUNDS = 5  # a process may start another while the tree is ended: look again
_DYING_SECONDS = 5.0  # how long a killed process may take to end, on a loaded machine


def marked(environment: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The environment with a new tree's mark, and the mark."""
    mark = secrets.token_hex(8)
    return {**environment, MARK: mark}, mark


def end_tree(leader: int, mark: str) -> int:
    """Kill ``leader``'s process group and every process that carries ``mark``, and wait
    until each has ended; how many marked processes were found outside the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    found = 0
    for _ in range(_ROUNDS):
        carriers = list(_carrying(f"{MARK}={mark}".encode()))
        if not carriers:
            break
        for pid in carriers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        # Killed is not yet ended: a busy machine may take a while to run its end.
        _wait_ended(carriers, time.monotonic() + _DYING_SECONDS)
        found += len(carriers)
    return found


def _wait_ended(pids: Sequence[int], deadline: float) -> None:
    """Until each process has ended (a zombie counts), or the deadline: told by the
    kernel through a pidfd, where Linux offers one."""
    if not hasattr(os, "pidfd_open"):
        return
    for pid in pids:
        try:
            descriptor = os.pidfd_open(pid)
        except OSError:  # gone already, or not ours
            continue
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(descriptor, selectors.EVENT_READ)
                selector.select(max(0.0, deadline - time.monotonic()))
        finally:
            os.close(descriptor)


def _carrying(entry: bytes) -> list[int]:
    if not _PROC.is_dir():
        return []
    carriers = []
    for folder in _PROC.iterdir():
        if not folder.name.isdigit() or int(folder.name) == os.getpid():
            continue
        try:
            environment = (folder / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if entry in environment.split(b"\0"):
            carriers.append(int(folder.name))
    return carriers


@dataclass(frozen=True)
class Finished:
    status: int  # as a shell reports it: 128 + the signal that ended it
    stdout: bytes
    stderr: bytes  # with what the run had to say of it, last


def run_tree(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: bytes,
    seconds: float,
    limits: tuple[int, int],
    cwd: Path | None = None,
    while_running: Callable[[subprocess.Popen[bytes]], AbstractContextManager[None]] | None = None,
) -> Finished:
    """``argv`` in a process group and session of its own, marked; given ``stdin``; its
    stdout and stderr kept up to ``limits``; ended with all it started after ``seconds``,
    or once it has ended, whatever happens (the suite stopped included)."""
    environ, mark = marked(env)
    process = subprocess.Popen(
        list(argv),
        env=environ,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    running = while_running(process) if while_running else nullcontext()
    with process, running:
        try:
            stdout, stderr = _output(process, mark, stdin, seconds, limits)
        finally:  # whatever it left, and all of it should the suite be stopped
            end_tree(process.pid, mark)
    process.wait()
    status = process.returncode if process.returncode >= 0 else 128 - process.returncode
    return Finished(status, stdout, stderr)


def _output(
    process: subprocess.Popen[bytes],
    mark: str,
    given: bytes,
    seconds: float,
    limits: tuple[int, int],
) -> tuple[bytes, bytes]:
    """Its stdout and stderr (at most ``limits`` bytes of each kept) once it has ended
    and its pipes have closed, within ``seconds``; after that it is ended with all it
    started. Whatever it left holding its pipes a second after its end is ended too, and
    said."""
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    stdin, out, err = (s.fileno() for s in (process.stdin, process.stdout, process.stderr))
    kept = {out: bytearray(), err: bytearray()}
    room = dict(zip(kept, limits, strict=True))
    notes, pending = b"", memoryview(given)
    with selectors.DefaultSelector() as watched:
        for reading in kept:
            watched.register(reading, selectors.EVENT_READ)
        watched.register(stdin, selectors.EVENT_WRITE)
        deadline = time.monotonic() + seconds
        ended_at: float | None = None
        while watched.get_map():
            now = time.monotonic()
            if ended_at is None and process.poll() is not None:
                ended_at = now
            if ended_at is None and now > deadline:
                notes += f"\n(the run was ended after {seconds:g} s)".encode()
                end_tree(process.pid, mark)
                ended_at = deadline = now
            elif ended_at is not None and now > ended_at + _SLICE_SECONDS:
                if deadline == ended_at:  # held still, out of reach: that was all it said
                    break
                notes += b"\n(its output was held open by a process it left)"
                end_tree(process.pid, mark)
                ended_at = deadline = now
            for key, _ in watched.select(timeout=_POLL_SECONDS):
                if key.fd == stdin:
                    try:
                        pending = (
                            pending[os.write(stdin, pending[:_CHUNK]) :] if pending else pending
                        )
                    except BrokenPipeError:  # it reads no more: the rest is not for it
                        pending = pending[:0]
                    if not pending:
                        watched.unregister(stdin)
                        process.stdin.close()
                    continue
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    watched.unregister(key.fd)
                elif len(chunk) > room[key.fd] >= 0:
                    kept[key.fd] += chunk[: room[key.fd]]
                    room[key.fd] = -1  # said once; nothing more is kept
                    notes += b"\n(its output passed its bound: the rest was not kept)"
                elif room[key.fd] > 0:
                    kept[key.fd] += chunk
                    room[key.fd] -= len(chunk)
    return bytes(kept[out]), bytes(kept[err]) + notes
