"""The installed ``bgagent`` command as a separate process: exit status, stdout bytes,
stderr, and what happens when its reader goes away early."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BGAGENT = [sys.executable, "-m", "bgagent"]


def bgagent_process(
    config_dir: Path, *args: str, stdin_cmd: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)}
    return subprocess.run([*BGAGENT, *args], env=env, capture_output=True, timeout=30, check=False)


def test_the_command_prints_the_trace_and_exits_zero(config_dir: Path, backend) -> None:
    done = bgagent_process(config_dir, "trace", "download", "t-1")
    assert (done.returncode, done.stdout, done.stderr) == (0, backend.trace_lines, b"")


def test_an_expected_failure_is_one_line_and_no_traceback(config_dir: Path, backend) -> None:
    backend.api_status = 404
    backend.api_body = b'{"error": {"code": "TASK_NOT_FOUND", "message": "Task t-1 not found."}}'
    done = bgagent_process(config_dir, "trace", "download", "t-1")
    assert done.returncode == 1
    assert done.stderr == b"bgagent: Task t-1 not found. (TASK_NOT_FOUND)\n"


def test_a_reader_that_stops_early_causes_no_traceback(config_dir: Path, backend) -> None:
    import gzip

    lines = b"".join(b'{"event":"TRAJECTORY_TURN","turn":%d}\n' % i for i in range(200_000))
    backend.object_body = gzip.compress(lines)
    env = {**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)}
    command = " ".join([*BGAGENT, "trace", "download", "t-1"]) + " | head -1"
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, timeout=30, check=False
    )
    assert done.stdout == b'{"event":"TRAJECTORY_TURN","turn":0}\n'
    assert done.stderr == b""


def test_an_unwritable_target_is_refused_before_any_download(
    bgagent, backend, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/bgagent-cannot-write-here.jsonl.gz")  # not even root may
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"bgagent: Cannot write {target}")
    assert result.stderr.count("\n") == 1
    assert backend.seen_paths == []


@pytest.mark.parametrize(
    "target", ["missing-dir/t.jsonl.gz", "."], ids=["missing-directory", "a-directory"]
)
def test_an_impossible_target_is_refused_with_a_clear_message(
    bgagent, backend, tmp_path: Path, target: str
) -> None:
    result = bgagent("trace", "download", "t-1", "-o", str(tmp_path / target))
    assert result.exit_code == 1
    assert "bgagent: " in result.stderr
    assert "Traceback" not in result.stderr
    assert backend.seen_paths == []
