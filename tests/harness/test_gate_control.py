"""The gates run in moto's process; the steps change them from the test process. Each
change holds once its setter returns: the very next call meets it, with no wait
between, so a change lost or applied late fails here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from testkit.aws.auth import Role, Statement
from testkit.aws.endpoint import REGION, MotoServer
from testkit.aws.gate_control import ControlFailed, RolesHandle, S3GateHandle
from testkit.aws.resources import create_task_table
from testkit.aws.s3_gate import ChecksumStyle, EtagStyle, Fault

BUCKET, TABLE, KEY = "control-bucket", "control-table", "traces/alice/t.jsonl.gz"
OBJECTS = f"arn:aws:s3:::{BUCKET}/*"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer.launch().ready()
    server.client("s3").create_bucket(Bucket=BUCKET)
    create_task_table(server.client("dynamodb"), TABLE)
    yield server
    server.stop()


@pytest.fixture
def gate(moto: MotoServer) -> Iterator[S3GateHandle]:
    handle = S3GateHandle(moto.gates.control, moto.gates.s3)
    handle.reset()
    yield handle
    handle.reset()


@pytest.fixture
def roles(moto: MotoServer) -> RolesHandle:
    return RolesHandle(moto.gates.control)


@pytest.fixture
def role(roles: RolesHandle) -> Role:
    grants = [
        Statement(("s3:GetObject", "s3:PutObject"), (OBJECTS,)),
        Statement(("dynamodb:GetItem",), (TABLE_ARN,)),
    ]
    return roles.create("test role", grants)


def client(service: str, endpoint: str, role: Role) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=role.access_key_id,
        aws_secret_access_key=role.secret_access_key,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )


@pytest.fixture
def link(moto: MotoServer, role: Role) -> str:
    s3 = client("s3", moto.gates.s3, role)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"\x1f\x8b" + b"trace" * 100)
    return str(
        s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=60)
    )


def test_a_fault_set_is_met_by_the_next_download_and_a_reset_ends_it(
    gate: S3GateHandle, link: str
) -> None:
    gate.fault = Fault.FORBIDDEN
    assert requests.get(link, timeout=10).status_code == 403
    gate.reset()
    assert requests.get(link, timeout=10).status_code == 200


def test_a_fault_for_the_first_tries_only_is_met_that_many_times(
    gate: S3GateHandle, link: str
) -> None:
    gate.fault = Fault.SLOW_DOWN
    gate.fault_times = 2
    statuses = [requests.get(link, timeout=10).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_the_clock_moved_ages_the_next_link_at_once(gate: S3GateHandle, link: str) -> None:
    gate.clock_offset = timedelta(minutes=2)
    answer = requests.get(link, timeout=10)
    assert (answer.status_code, "Request has expired" in answer.text) == (403, True)
    assert gate.presigned[-1].verdict == "AccessDenied"
    gate.clock_offset = timedelta(0)
    assert requests.get(link, timeout=10).status_code == 200


def test_the_presigned_requests_are_read_as_the_gate_saw_them(
    gate: S3GateHandle, link: str
) -> None:
    assert gate.presigned == []
    requests.get(link, timeout=10)
    seen = gate.presigned
    assert [(s.algorithm, s.expires_seconds, s.verdict, s.role) for s in seen] == [
        ("AWS4-HMAC-SHA256", 60, "ok", "test role")
    ]
    assert seen[0].signature
    assert seen[0].signature in link


def test_styles_and_denied_uploads_hold_from_the_next_call(
    gate: S3GateHandle, moto: MotoServer, role: Role, link: str
) -> None:
    gate.etag_style = EtagStyle.MULTIPART
    gate.checksum_style = ChecksumStyle.COMPOSITE
    assert requests.get(link, timeout=10).headers["ETag"].endswith('-2"')
    gate.deny_uploads = True
    with pytest.raises(ClientError, match="AccessDenied"):
        client("s3", moto.gates.s3, role).put_object(Bucket=BUCKET, Key=KEY, Body=b"x")


def test_a_revoked_action_is_refused_at_once_and_given_back_by_the_undo(
    moto: MotoServer, roles: RolesHandle, role: Role
) -> None:
    dynamodb = client("dynamodb", moto.gates.dynamodb, role)
    key = {"task_id": {"S": "t-1"}}
    dynamodb.get_item(TableName=TABLE, Key=key)
    undo = roles.revoke(role, "dynamodb:GetItem")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        dynamodb.get_item(TableName=TABLE, Key=key)
    assert roles.refusals()[-1] == (f"test role is not allowed dynamodb:GetItem on {TABLE_ARN}")
    undo()
    dynamodb.get_item(TableName=TABLE, Key=key)


def test_a_stall_is_told_as_soon_as_it_begins(gate: S3GateHandle, link: str) -> None:
    gate.fault = Fault.STALL
    assert not gate.stalling.is_set()
    ended: list[str] = []

    def download() -> None:
        try:
            ended.append(f"{len(requests.get(link, timeout=30).content)} bytes")
        except requests.RequestException as broken:
            ended.append(type(broken).__name__)

    downloading = threading.Thread(target=download, daemon=True)
    downloading.start()
    assert gate.stalling.wait(30)
    assert gate.body_begun.is_set()
    gate.reset()  # the stalled answer ends, and its connection with it
    downloading.join(30)
    assert not downloading.is_alive()
    assert ended == ["ChunkedEncodingError"]  # the body cut short, not a read timeout


def test_a_change_the_process_refuses_or_never_answers_raises(moto: MotoServer) -> None:
    roles = RolesHandle(moto.gates.control)
    ghost = Role("ghost", "AKIANOBODY", "secret", [])
    with pytest.raises(ControlFailed, match="refused PUT /roles/AKIANOBODY/statements"):
        roles.revoke(ghost, "s3:GetObject")
    assert ghost.statements == []  # what the process refused is not mirrored either
    stopped = MotoServer.launch().ready()
    handle = S3GateHandle(stopped.gates.control, stopped.gates.s3)
    stopped.stop()
    with pytest.raises(ControlFailed, match="did not answer PATCH /s3"):
        handle.fault = Fault.FORBIDDEN
    assert handle.fault is None


def test_the_control_refuses_whoever_lacks_the_sessions_token(
    moto: MotoServer, gate: S3GateHandle, link: str
) -> None:
    """A program that finds the control's port (a layer under judgement scanning
    127.0.0.1) changes nothing without the token in its path."""
    port, token = moto.gates.control.rsplit(":", 1)[1].split("/", 1)
    for path in ("/s3", f"/{'x' * len(token)}/s3", "//s3"):
        answer = requests.patch(
            f"http://127.0.0.1:{port}{path}", json={"fault": "FORBIDDEN"}, timeout=10
        )
        assert answer.status_code in (400, 404)  # cheroot refuses a path of "//" itself
    assert requests.get(link, timeout=10).status_code == 200
    assert gate.presigned[-1].verdict == "ok"
