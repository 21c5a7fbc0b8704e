"""The sandbox as a maintainer uses it: start it, follow what it prints, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from testkit.stack.footprint import Mark, over_sessions

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
# What the stack's owners keep in it, some of it named as the suite names its own.
FOREIGN_USERS = (
    "bgsuite-1-abcdef-999999-abcd-dana",  # a tag of the suite's older naming
    "bgsuite-19e0c2b7a00-0badf00d-erin",  # this naming, and a marker whose proof is wrong
    "frank",
)
FORGED_MARKER = f"bgsuite-19e0c2b7a00-0badf00d.{'0' * 32}"


def _seed_the_stack(target: dict[str, str]) -> None:
    """A bucket policy, tags, users, task records and stored objects of the stack's own."""
    s3, ddb, cognito = (_client(target, name) for name in ("s3", "dynamodb", "cognito-idp"))
    bucket, table = target["TRACE_ARTIFACTS_BUCKET_NAME"], target["TASK_TABLE_NAME"]
    pool = target["TRACE_SUITE_USER_POOL_ID"]
    s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps(FOREIGN_POLICY).replace("{bucket}", bucket)
    )
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ours"}]})
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ours"}])
    for username in FOREIGN_USERS:
        created = cognito.admin_create_user(
            UserPoolId=pool,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "profile", "Value": FORGED_MARKER}],
        )["User"]
        sub = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
        ddb.put_item(
            TableName=table,
            Item={
                "task_id": {"S": f"{username}-task"},
                "user_id": {"S": sub},
                "status": {"S": "SUCCEEDED"},
                "status_created_at": {"S": "SUCCEEDED#2026-12-01T00:00:00.000Z"},
                "created_at": {"S": "2026-12-01T00:00:00.000Z"},
                "suite_session": {"S": FORGED_MARKER},
            },
        )
        s3.put_object(Bucket=bucket, Key=f"traces/{sub}/{username}-task.jsonl.gz", Body=b"x")
    # Under the suite's lease prefix, and no lease the suite could have written.
    s3.put_object(Bucket=bucket, Key="bgsuite-leases/notes.txt", Body=b"ours")
    s3.put_object(
        Bucket=bucket,
        Key="bgsuite-leases/bgsuite-19e0c2b7a00-0badf00d.json",
        Body=b'{"proof": "not the one", "seconds": 0}',
    )


def _stack_as_it_stands(target: dict[str, str]) -> dict[str, object]:
    """Everything the suite must leave byte for byte as it was: the bucket's policy and
    tags, the table's tags, the pool's users with their attributes and dates, the
    table's items, the bucket's objects with their bodies and metadata."""
    s3, ddb, cognito = (_client(target, name) for name in ("s3", "dynamodb", "cognito-idp"))
    bucket, table = target["TRACE_ARTIFACTS_BUCKET_NAME"], target["TASK_TABLE_NAME"]
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    objects = {}
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=listed["Key"])
        objects[listed["Key"]] = (
            got["Body"].read(),
            got["ETag"],
            got["ContentType"],
            got.get("Metadata"),
            str(got["LastModified"]),
        )
    users = cognito.list_users(UserPoolId=target["TRACE_SUITE_USER_POOL_ID"])["Users"]
    return {
        "policy": s3.get_bucket_policy(Bucket=bucket)["Policy"],
        "bucket tags": s3.get_bucket_tagging(Bucket=bucket)["TagSet"],
        "table tags": ddb.list_tags_of_resource(ResourceArn=arn)["Tags"],
        "users": sorted(json.dumps(u, sort_keys=True, default=str) for u in users),
        "items": sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=table)["Items"]),
        "objects": objects,
    }


def _client(target: dict[str, str], service: str) -> Any:
    """A client of the stack's AWS side, as the exports the sandbox printed give it."""
    session: Any = boto3.session.Session(
        region_name=target["AWS_REGION"],
        aws_access_key_id=target["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=target["AWS_SECRET_ACCESS_KEY"],
    )
    return session.client(service, endpoint_url=target["AWS_ENDPOINT_URL"])


def _usernames(target: dict[str, str]) -> set[str]:
    cognito = _client(target, "cognito-idp")
    pages = cognito.get_paginator("list_users").paginate(
        UserPoolId=target["TRACE_SUITE_USER_POOL_ID"]
    )
    return {user["Username"] for page in pages for user in page["Users"]}


def _wait_for_a_session_user(target: dict[str, str], suite: subprocess.Popen) -> None:
    """Until the running suite has signed up its first user (or has ended)."""
    known = _usernames(target)
    while suite.poll() is None:
        if _usernames(target) - known:
            return
        time.sleep(0.05)  # polling a server the suite is writing to; bounded by the suite
    raise AssertionError("the suite ended before signing anyone up")


def _wait_for_its_lease_to_end(target: dict[str, str], *, within: float = 60) -> None:
    """Until S3's clock says a session's lease is over (the killed run's)."""
    s3, bucket = _client(target, "s3"), target["TRACE_ARTIFACTS_BUCKET_NAME"]
    deadline = time.monotonic() + within
    while not over_sessions(s3, bucket, Mark.new()):
        assert time.monotonic() < deadline, "the killed run's lease never ended"
        time.sleep(0.2)  # polling S3's clock, bounded above


def _assert_kept(before: dict[str, Any], now: dict[str, Any]) -> None:
    """All that was there before is there still, whatever was added."""
    for part, was in before.items():
        if isinstance(was, dict):
            assert {k: now[part].get(k) for k in was} == was, part
        elif part in ("users", "items"):
            assert set(was) <= set(now[part]), part
        else:
            assert now[part] == was, part


def _run_suite(env: dict[str, str], temp: Path, *, prefix: Sequence[str] = ()) -> subprocess.Popen:
    temp.mkdir()
    return subprocess.Popen(
        [*prefix, *SUITE],
        cwd=ROOT,
        env={**env, "TMPDIR": str(temp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_suite_changes_nothing_of_a_stack_it_did_not_create(
    tmp_path: Path, clean_env: dict[str, str], start_sandbox
) -> None:
    """The sandbox in a process of its own stands in for a deployed stack, seeded with
    what its owners keep in it. A run killed mid-way, then two runs side by side (one
    in a PID namespace of its own, as in another container of the same host name),
    leave all of it byte for byte as it was, and what the killed run left is removed
    once its lease is over."""
    env = clean_env
    sandbox = start_sandbox(tmp_path, env)
    try:
        printed = _read_until(sandbox, "Ctrl-C stops the sandbox.")
        suite_part = printed.split("as against a deployed stack:", 1)[1]
        target = dict(re.findall(r"export (\w+)=(\S+)", suite_part))
        assert "TRACE_SUITE_API_URL" in target
        _seed_the_stack(target)
        before = _stack_as_it_stands(target)

        killed = _run_suite(
            {**env, **target, "TRACE_SUITE_LEASE_SECONDS": "2"}, tmp_path / "killed-run-temp"
        )
        try:
            _wait_for_a_session_user(target, killed)
        finally:
            killed.kill()
            killed.communicate(timeout=20)
        left = _stack_as_it_stands(target)
        assert left != before  # the killed run left its users: a later run removes them
        _assert_kept(before, left)
        _wait_for_its_lease_to_end(target)

        # The second starts once the first has users: its start-up clean-up meets them.
        first = _run_suite({**env, **target}, tmp_path / "first-run-temp")
        _wait_for_a_session_user(target, first)
        second = _run_suite(
            {**env, **target},
            tmp_path / "second-run-temp",
            prefix=["unshare", "--pid", "--fork"] if shutil.which("unshare") else [],
        )
        runs = [first, second]
        outputs = [run.communicate(timeout=300)[0] for run in runs]
        after = _stack_as_it_stands(target)
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=20)
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        counts = re.search(r"(\d+) passed, (\d+) skipped", output)
        assert counts, output[-2000:]
        assert int(counts.group(1)) >= 20
        assert "TRACE_SUITE_API_URL points the suite at" in output
    assert after == before
    for temp in ("first-run-temp", "second-run-temp"):
        assert list((tmp_path / temp).iterdir()) == []  # nothing of a run outlives it
