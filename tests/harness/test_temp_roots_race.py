"""A session's root must be its own from the moment its lock file can be seen: a
session starting at the same moment, removing the roots that are over, must never
take it for one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit import temp_roots


def test_a_root_being_claimed_is_never_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flock = temp_roots.fcntl.flock
    removed: list[Path] = []

    def another_session_cleans_up_first(fd: Any, operation: int) -> None:
        # Another session's start, between this one's creating its lock file and
        # locking it.
        monkeypatch.setattr(temp_roots.fcntl, "flock", flock)
        removed.extend(temp_roots.remove_roots_that_are_over(str(tmp_path)))
        flock(fd, operation)

    monkeypatch.setattr(temp_roots.fcntl, "flock", another_session_cleans_up_first)
    root, lock = temp_roots.claim_root(str(tmp_path))
    try:
        assert removed == []
        assert Path(root).is_dir()
    finally:
        lock.close()
