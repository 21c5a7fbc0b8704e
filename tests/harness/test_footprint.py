"""Which leftovers a session may remove from a stack it did not create: those of
sessions that are over, never its own or one still running."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from testkit.stack.footprint import MAX_SESSION_AGE_SECONDS, SessionTag, left_over


def test_a_tag_reads_back_as_written() -> None:
    tag = SessionTag.new()
    assert SessionTag.found_in(f"{tag}-alice") == tag
    assert SessionTag.found_in("alice") is None


def test_the_current_session_and_a_running_one_are_never_leftovers() -> None:
    current = SessionTag.new()
    assert not left_over(f"{current}-alice", current)
    running = SessionTag(int(time.time()), current.host, os.getppid())
    assert not left_over(f"{running}-bob", current)


def test_a_session_whose_process_is_gone_is_over() -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    current = SessionTag.new()
    gone = SessionTag(int(time.time()), current.host, int(ended.stdout))
    assert left_over(f"{gone}-alice", current)


def test_from_another_host_only_age_tells() -> None:
    current = SessionTag.new()
    recent = SessionTag(int(time.time()) - 60, "0000ff", 1)
    old = SessionTag(int(time.time()) - MAX_SESSION_AGE_SECONDS - 60, "0000ff", 1)
    assert not left_over(f"{recent}-alice", current)
    assert left_over(f"{old}-alice", current)
