"""A session's temporary root is removed by a later session only once the session
that claimed it has ended, wherever it ran."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit import temp_roots
from testkit.temp_roots import LOCK, PREFIX, claim_root, remove_roots_that_are_over

CLAIM = (
    "import sys; from testkit.temp_roots import claim_root; "
    "root, lock = claim_root(sys.argv[1]); print(root, flush=True); sys.stdin.read()"
)


def test_a_root_is_kept_while_its_session_runs_in_another_pid_namespace(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to start a PID namespace")
    # Pid 1 of its namespace, whose number means another process here.
    session = subprocess.Popen(
        ["unshare", "--pid", "--fork", sys.executable, "-c", CLAIM, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert session.stdout is not None
    assert session.stdin is not None
    root = Path(session.stdout.readline().strip())
    try:
        assert root.parent == tmp_path
        assert remove_roots_that_are_over(str(tmp_path)) == []
        assert root.is_dir()
    finally:
        session.stdin.close()  # the session ends
        session.wait(timeout=30)
    assert remove_roots_that_are_over(str(tmp_path)) == [root]
    assert not root.exists()


def test_this_sessions_root_and_folders_it_cannot_prove_ended_are_kept(tmp_path: Path) -> None:
    root, lock = claim_root(str(tmp_path))
    unlocked = tmp_path / f"{PREFIX}starting"  # created, not yet locked
    unlocked.mkdir()
    linked = tmp_path / f"{PREFIX}linked"
    linked.mkdir()
    (linked / LOCK).symlink_to(Path(root) / LOCK)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / LOCK).touch()
    pointing = tmp_path / f"{PREFIX}pointing"
    pointing.symlink_to(elsewhere)
    try:
        assert remove_roots_that_are_over(str(tmp_path)) == [pointing]
        assert Path(root).is_dir()
        assert unlocked.is_dir()
        assert linked.is_dir()
        assert (elsewhere / LOCK).exists()  # never removed through a link
    finally:
        lock.close()
    assert Path(root) in remove_roots_that_are_over(str(tmp_path))
    assert not Path(root).exists()


def test_a_root_of_a_session_that_ended_is_removed_with_all_it_holds(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", CLAIM, str(tmp_path)],
        input="",
        capture_output=True,
        text=True,
        check=True,
    )
    root = Path(ended.stdout.strip())
    (root / "pytest-of-root" / "deep").mkdir(parents=True)
    assert remove_roots_that_are_over(str(tmp_path)) == [root]
    assert os.listdir(tmp_path) == []


# A session's root must be its own from the moment its lock file can be seen: a
# session starting at the same moment, removing the roots that are over, must never
# take it for one.


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


def test_a_removal_touches_only_roots_of_its_own_prefix(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", CLAIM, str(tmp_path)], input="", capture_output=True, check=True
    )
    pytest_root = Path(ended.stdout.decode().strip())
    other, lock = claim_root(str(tmp_path), prefix="bgagent-mutate-")
    lock.close()  # that run is over too
    assert remove_roots_that_are_over(str(tmp_path), prefix="bgagent-mutate-") == [Path(other)]
    assert pytest_root.is_dir()
    assert remove_roots_that_are_over(str(tmp_path)) == [pytest_root]
