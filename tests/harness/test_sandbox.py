"""The sandbox as a maintainer uses it: start it, follow what it prints, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

SANDBOX = [sys.executable, "-m", "tools.sandbox"]


@pytest.fixture
def clean_env(pytestconfig: pytest.Config) -> dict[str, str]:
    """This shell's environment without AWS settings, finding the test code as pytest
    does (the harness is not installed)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "TRACE_", "PYTEST_"))  # a suite it starts is its own
    }
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pytestconfig.getini("pythonpath"))
    return env


@pytest.fixture
def start_sandbox() -> Iterator[Callable[[Path, dict[str, str]], subprocess.Popen]]:
    """Starts sandboxes in process groups of their own; whatever a test does, every one
    of them (and the function processes they started) is stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
        # Started with SIGINT ignored, as a script's background job would start it:
        # Ctrl-C must stop it all the same.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            sandbox = subprocess.Popen(
                [*SANDBOX, "--dir", str(tmp_path / "sbx")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sandbox.pid, signal.SIGKILL)
        sandbox.wait()


def test_the_sandbox_serves_the_round_trip_it_prints_and_stops_on_ctrl_c(
    tmp_path: Path, clean_env: dict[str, str], start_sandbox
) -> None:
    env = clean_env
    sandbox = start_sandbox(tmp_path, env)
    try:
        printed = _read_until(sandbox, "Ctrl-C stops the sandbox.")
        user_env = {
            **env,
            **dict(re.findall(r"export (\w+)=(\S+)", printed)),
            "HOME": str(tmp_path),  # a user with no AWS credentials at all
        }
        commands = re.findall(r"^  (BGAGENT_CONFIG_DIR=\S+ bgagent .+)$", printed, re.MULTILINE)
        login_alice, login_bob, download, save, as_bob, untraced = commands

        assert _shell(login_alice, user_env, stdin="Alice-Sandbox-Pass-1\n").returncode == 0
        assert _shell(login_bob, user_env, stdin="Bob-Sandbox-Pass-1\n").returncode == 0
        shown = _shell(download, user_env)
        assert shown.returncode == 0
        assert b'"event":"TRAJECTORY_ARTIFACT_HEADER"' in shown.stdout.splitlines()[0]
        assert _shell(save, user_env, cwd=tmp_path).returncode == 0
        assert (tmp_path / "trace.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"
        refused = _shell(as_bob, user_env)
        assert (refused.returncode, refused.stdout) == (1, b"")
        assert b"(FORBIDDEN)" in refused.stderr
        assert b"did not run with --trace" in _shell(untraced, user_env).stderr
    finally:
        sandbox.send_signal(signal.SIGINT)
        out, err = sandbox.communicate(timeout=20)
    assert sandbox.returncode == 0, err
    assert "Sandbox stopped." in out
    assert "Traceback" not in err


def _read_until(process: subprocess.Popen, marker: str, *, within: float = 60) -> str:
    """What the process printed up to ``marker``; fails fast if it stops or stays silent."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)
            if marker in line:
                return
        lines.put("")  # the process closed its output

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + within
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"the sandbox printed no {marker!r} in {within:g} s: {''.join(seen)}"
            ) from None
        if not line:
            raise AssertionError(f"the sandbox stopped early: {''.join(seen)}")
        seen.append(line)
        if marker in line:
            return "".join(seen)


def _shell(
    command: str, env: dict[str, str], *, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess:
    # The printed command, as a user would paste it; --password-stdin stands in for typing.
    if stdin:
        command += " --password-stdin"
    bin_dir = str(Path(sys.executable).parent)
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", command],
        input=stdin.encode(),
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
    )


ROOT = Path(__file__).resolve().parents[2]
SUITE = [sys.executable, "-m", "pytest", "-m", "integration", "features/", "-q", "-rs"]
SUITE += ["-p", "no:cacheprovider"]
FOREIGN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "SomeoneElses",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::{bucket}/public/*",
        }
    ],
}


def _stack_as_it_stands(target: dict[str, str]) -> dict[str, object]:
    """What the suite must leave alone: the bucket policy, the pool's users, the items."""
    s3, ddb, cognito = (_client(target, name) for name in ("s3", "dynamodb", "cognito-idp"))
    bucket, table = target["TRACE_ARTIFACTS_BUCKET_NAME"], target["TASK_TABLE_NAME"]
    users = cognito.list_users(UserPoolId=target["TRACE_SUITE_USER_POOL_ID"])["Users"]
    return {
        "policy": s3.get_bucket_policy(Bucket=bucket)["Policy"],
        "users": sorted(u["Username"] for u in users),
        "items": sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=table)["Items"]),
        "objects": sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])),
    }


def _client(target: dict[str, str], service: str) -> Any:
    """A client of the stack's AWS side, as the exports the sandbox printed give it."""
    session: Any = boto3.session.Session(
        region_name=target["AWS_REGION"],
        aws_access_key_id=target["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=target["AWS_SECRET_ACCESS_KEY"],
    )
    return session.client(service, endpoint_url=target["AWS_ENDPOINT_URL"])


def _give_the_stack_a_policy(target: dict[str, str]) -> None:
    s3 = _client(target, "s3")
    bucket = target["TRACE_ARTIFACTS_BUCKET_NAME"]
    policy = json.dumps(FOREIGN_POLICY).replace("{bucket}", bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def _wait_for_a_session_user(target: dict[str, str], suite: subprocess.Popen) -> None:
    """Until the running suite has signed up its first user (or has ended)."""
    cognito = _client(target, "cognito-idp")
    while suite.poll() is None:
        users = cognito.list_users(UserPoolId=target["TRACE_SUITE_USER_POOL_ID"])["Users"]
        if any(u["Username"].startswith("bgsuite-") for u in users):
            return
        time.sleep(0.05)  # polling a server the suite is writing to; bounded by the suite
    raise AssertionError("the suite ended before signing anyone up")


def test_the_suite_changes_nothing_of_a_stack_it_did_not_create(
    tmp_path: Path, clean_env: dict[str, str], start_sandbox
) -> None:
    """The sandbox in a process of its own stands in for a deployed stack with a bucket
    policy: a full run leaves the policy, the pool's users and the table's items as
    they were; a run killed mid-way leaves what the next run removes."""
    env = clean_env
    sandbox = start_sandbox(tmp_path, env)
    try:
        printed = _read_until(sandbox, "Ctrl-C stops the sandbox.")
        suite_part = printed.split("as against a deployed stack:", 1)[1]
        target = dict(re.findall(r"export (\w+)=(\S+)", suite_part))
        assert "TRACE_SUITE_API_URL" in target
        _give_the_stack_a_policy(target)
        before = _stack_as_it_stands(target)

        killed_temp = tmp_path / "killed-run-temp"  # what a killed run leaves stays here
        killed_temp.mkdir()
        killed = subprocess.Popen(
            SUITE,
            cwd=ROOT,
            env={**env, **target, "TMPDIR": str(killed_temp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_a_session_user(target, killed)
        finally:
            killed.kill()
            killed.wait(timeout=20)
        assert _stack_as_it_stands(target) != before  # the killed run left its users

        temp = tmp_path / "system-temp"
        temp.mkdir()
        done = subprocess.run(
            SUITE,
            cwd=ROOT,
            env={**env, **target, "TMPDIR": str(temp)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        after = _stack_as_it_stands(target)
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=20)
    assert done.returncode == 0, done.stdout[-3000:]
    counts = re.search(r"(\d+) passed, (\d+) skipped", done.stdout)
    assert counts, done.stdout[-2000:]
    assert int(counts.group(1)) >= 20
    assert "TRACE_SUITE_API_URL points the suite at" in done.stdout
    assert after == before
    assert list(temp.iterdir()) == []  # nothing of the run outlives it
