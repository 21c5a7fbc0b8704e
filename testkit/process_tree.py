"""Ending a foreign process together with everything it started, wherever that went.

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
import signal
from collections.abc import Mapping
from pathlib import Path

MARK = "TRACE_SUITE_PROCESS_TREE"
_PROC = Path("/proc")
_ROUNDS = 5  # a process may start another while the tree is ended: look again


def marked(environment: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The environment with a new tree's mark, and the mark."""
    mark = secrets.token_hex(8)
    return {**environment, MARK: mark}, mark


def end_tree(leader: int, mark: str) -> int:
    """Kill ``leader``'s process group and every process that carries ``mark``; how many
    marked processes were found outside the group."""
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
        found += len(carriers)
    return found


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
