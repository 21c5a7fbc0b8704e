"""Each pytest session's temporary folders, under a root of its own in the system's
temporary folder: sessions side by side (two suites, a mutation run) never clean up
each other's, and a root a killed session left is removed by a later one.

A session holds an exclusive ``flock`` on its root's lock file for as long as it
runs; the kernel lets go of it when the process ends, however it ends. A root whose
lock can be taken is over. A process id would not tell: a session in another PID
namespace (another container sharing the folder) has ids this one cannot see.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO

PREFIX = "pytest-bgagent-"
LOCK = ".session-lock"


def claim_root(parent: str | None = None, *, prefix: str = PREFIX) -> tuple[str, IO[bytes]]:
    """A new root, and its lock file held until it is closed (or the process ends)."""
    root = tempfile.mkdtemp(prefix=prefix, dir=parent)
    # Locked under another name, then named: a lock file a later session can see is
    # held already (one it could see unlocked would say the root is over).
    claiming = os.path.join(root, f"{LOCK}.claiming")
    lock = open(claiming, "wb")  # noqa: SIM115  (held for the session)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(claiming, os.path.join(root, LOCK))
    return root, lock


def remove_roots_that_are_over(parent: str | None = None, *, prefix: str = PREFIX) -> list[Path]:
    """Remove the roots of sessions that have ended; returns them. A folder without a
    lock file (a session between creating its root and locking it, or none of ours)
    is left alone."""
    removed = []
    for root in Path(parent or tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            held = os.open(root / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its session still runs
        finally:
            os.close(held)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed
