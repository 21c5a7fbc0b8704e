"""What a session may remove from a stack it shares: only what carries the marker of a
session whose lease is over, with the proof that lease holds. Never its own, never one
still renewing its lease (whatever its host, process or age), never a thing whose name
merely looks like the suite's."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from testkit.aws.resources import create_task_table, create_trace_bucket
from testkit.stack import footprint
from testkit.stack.footprint import (
    ITEM_MARKER,
    LEASE_PREFIX,
    TAG_KEY,
    USER_MARKER,
    Clients,
    Footprint,
    Lease,
    LeaseRefused,
    Mark,
    lease_key,
    over_lease,
    remove_leftover_stacks,
)
from testkit.stack.local import LocalStack
from testkit.stack.users import UserPool, create_user, create_user_pool, random_password
from trace_infra.definitions import trace_object_key

BUCKET, TABLE, REGION = "the-stacks-traces", "the-stacks-tasks", "us-east-1"


@pytest.fixture
def stack() -> Iterator[Footprint]:
    """A stack the suite did not create, in moto."""
    with mock_aws():
        s3, dynamodb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", REGION)
        cognito = boto3.client("cognito-idp", region_name=REGION)
        create_trace_bucket(s3, BUCKET)
        create_task_table(dynamodb, TABLE)
        pool = create_user_pool(cognito, name="the-stacks-users", region=REGION, endpoint="")
        yield Footprint(cognito, dynamodb, s3, pool.id, TABLE, BUCKET)


@dataclass
class Made:
    """A user with a task record and a stored trace, as a session (or someone else)
    leaves them."""

    username: str
    sub: str
    task_id: str


def make(stack: Footprint, username: str, *, marker: str | None, item_marker: str | None) -> Made:
    pool = UserPool(stack.pool_id, "", REGION, "")
    attributes = {USER_MARKER: marker} if marker is not None else {}
    user = create_user(stack.cognito, pool, username, random_password(), attributes=attributes)
    task_id = f"task-{username}"
    item = {
        "task_id": {"S": task_id},
        "user_id": {"S": user.sub},
        "status_created_at": {"S": "SUCCEEDED#2026-12-03T11:00:00.000Z"},
    }
    if item_marker is not None:
        item[ITEM_MARKER] = {"S": item_marker}
    stack.dynamodb.put_item(TableName=TABLE, Item=item)
    stack.s3.put_object(Bucket=BUCKET, Key=trace_object_key(user.sub, task_id), Body=b"trace")
    return Made(username, user.sub, task_id)


def made_by(stack: Footprint, mark: Mark, name: str) -> Made:
    return make(stack, f"{mark.session}-{name}", marker=str(mark), item_marker=str(mark))


def still_there(stack: Footprint, made: Made) -> tuple[bool, bool, bool]:
    users = stack.cognito.list_users(UserPoolId=stack.pool_id)["Users"]
    item = stack.dynamodb.get_item(TableName=TABLE, Key={"task_id": {"S": made.task_id}})
    key = trace_object_key(made.sub, made.task_id)
    listed = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])
    return (any(u["Username"] == made.username for u in users), "Item" in item, bool(listed))


def lease_over(stack: Footprint, mark: Mark) -> None:
    """A lease that lasted no time: over as soon as it is written."""
    Lease(stack.s3, BUCKET, mark, 0).renew()


def test_a_marker_reads_back_and_nothing_close_to_one_does() -> None:
    mark = Mark.new()
    assert Mark.read(str(mark)) == mark
    for close in (
        f"{mark}x",
        f" {mark}",
        str(mark).upper(),
        mark.session,
        f"{mark.session}.{mark.proof[:-1]}",
        "bgsuite-1-abcdef-999999-abcd-dana",
        None,
        7,
    ):
        assert Mark.read(close) is None, close


def test_the_users_of_a_session_whose_lease_is_over_go_with_their_tasks_and_traces(
    stack: Footprint,
) -> None:
    over = Mark.new()
    lease_over(stack, over)
    gone = made_by(stack, over, "alice")

    assert stack.remove_leftovers(Mark.new()) == [gone.username]

    assert still_there(stack, gone) == (False, False, False)
    assert over_lease(stack.s3, BUCKET, over.session) is None  # the lease went last
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=LEASE_PREFIX)


def test_a_renewed_lease_keeps_everything_whatever_host_process_or_age_it_names(
    stack: Footprint,
) -> None:
    # A session started a day ago, whose lease names a process this machine does not
    # run: another container with the same host name, still renewing.
    started = Mark.new()
    elsewhere = Mark(f"bgsuite-{int(time.time()) - 86400:x}-0badf00d", started.proof)
    stack.s3.put_object(
        Bucket=BUCKET,
        Key=lease_key(elsewhere.session),
        Body=json.dumps(
            {"proof": elsewhere.proof, "seconds": 300, "host": "same-host", "pid": 2**22 + 1}
        ).encode(),
    )
    kept = made_by(stack, elsewhere, "alice")

    assert stack.remove_leftovers(Mark.new()) == []

    assert still_there(stack, kept) == (True, True, True)
    assert over_lease(stack.s3, BUCKET, elsewhere.session) is None


def test_the_current_session_is_never_its_own_leftover(stack: Footprint) -> None:
    current = Mark.new()
    lease_over(stack, current)
    kept = made_by(stack, current, "alice")
    assert stack.remove_leftovers(current) == []
    assert still_there(stack, kept) == (True, True, True)


def test_what_only_looks_like_the_suites_is_kept(stack: Footprint) -> None:
    over = Mark.new()
    lease_over(stack, over)
    forged = Mark(over.session, "0" * 32)
    kept = [
        # A name like a suite's, and no marker.
        make(stack, "bgsuite-1-abcdef-999999-abcd-dana", marker=None, item_marker=None),
        # The session's own name, without its marker.
        make(stack, f"{over.session}-erin", marker=None, item_marker=None),
        # Its marker with another proof: written by someone who never read the lease.
        make(stack, f"{over.session}-frank", marker=str(forged), item_marker=str(forged)),
        # A marker, but the record is not marked.
        make(stack, "bgsuite-2-abcdef-1-abcd-gina", marker=str(forged), item_marker=None),
    ]
    gone = made_by(stack, over, "alice")
    # Someone else's record filed under the suite user: it stays when the user goes.
    stack.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "task_id": {"S": "someone-elses"},
            "user_id": {"S": gone.sub},
            "status_created_at": {"S": "RUNNING#2026-12-03T11:00:00.000Z"},
        },
    )

    assert stack.remove_leftovers(Mark.new()) == [gone.username]

    for made in kept:
        assert still_there(stack, made) == (True, True, True), made
    assert "Item" in stack.dynamodb.get_item(
        TableName=TABLE, Key={"task_id": {"S": "someone-elses"}}
    )


@pytest.mark.parametrize(
    "lease",
    [
        None,
        b"not json",
        b"[]",
        b'{"proof": "nothex", "seconds": 0}',
        b'{"seconds": 0}',
        b'{"proof": "PROOF", "seconds": -1}',
        b'{"proof": "PROOF", "seconds": true}',
        b'{"proof": "PROOF", "seconds": 0.5}',
        b'{"proof": "PROOF"}',
    ],
)
def test_without_a_lease_the_suite_could_have_written_nothing_is_proven(
    stack: Footprint, lease: bytes | None
) -> None:
    over = Mark.new()
    if lease is not None:
        stack.s3.put_object(
            Bucket=BUCKET,
            Key=lease_key(over.session),
            Body=lease.replace(b"PROOF", over.proof.encode()),
        )
    kept = made_by(stack, over, "alice")
    assert stack.remove_leftovers(Mark.new()) == []
    assert still_there(stack, kept) == (True, True, True)
    if lease is not None:  # and what is not a lease is not removed either
        assert stack.s3.get_object(Bucket=BUCKET, Key=lease_key(over.session))["Body"].read()


def test_a_lease_is_over_only_once_its_length_has_passed_by_s3s_clock(stack: Footprint) -> None:
    mark = Mark.new()
    Lease(stack.s3, BUCKET, mark, 1).renew()
    assert over_lease(stack.s3, BUCKET, mark.session) is None
    deadline = time.monotonic() + 10
    while over_lease(stack.s3, BUCKET, mark.session) != mark:  # S3's clock ticks on
        assert time.monotonic() < deadline, "a lease of one second never ended"
        time.sleep(0.1)


class CountingS3:
    """An S3 client that tells each lease write."""

    def __init__(self, writes: int) -> None:
        self.keys: list[str] = []
        self.enough = threading.Event()
        self._writes = writes

    def put_object(self, **call: Any) -> None:
        self.keys.append(call["Key"])
        if len(self.keys) >= self._writes:
            self.enough.set()


def test_a_held_lease_is_renewed_until_stopped() -> None:
    s3 = CountingS3(writes=3)
    mark = Mark.new()
    lease = Lease(s3, BUCKET, mark, 2)
    lease.hold()
    assert s3.keys == [lease_key(mark.session)]  # taken at once
    assert s3.enough.wait(10), "the lease was not renewed"
    lease.stop()
    written = len(s3.keys)
    lease.stop()  # twice is fine
    assert lease._renewer is not None
    assert not lease._renewer.is_alive()
    assert len(s3.keys) == written


def test_a_renewal_that_fails_is_tried_again() -> None:
    class Flaky(CountingS3):
        def put_object(self, **call: Any) -> None:
            super().put_object(**call)
            if len(self.keys) == 2:
                raise ConnectionError("S3 is away")

    s3 = Flaky(writes=3)
    lease = Lease(s3, BUCKET, Mark.new(), 2)
    lease.hold()
    try:
        assert s3.enough.wait(10), "a failed renewal ended the renewing"
    finally:
        lease.stop()


@pytest.fixture
def emulator() -> Iterator[Clients]:
    with mock_aws():
        yield Clients(
            boto3.client("s3", region_name=REGION),
            boto3.client("dynamodb", region_name=REGION),
            boto3.client("cognito-idp", region_name=REGION),
        )


def own_stack(aws: Clients, mark: Mark, *, tag: str | None = None, seconds: int) -> list[str]:
    """A session's bucket, table and pool on a shared emulator, tagged ``tag``."""
    tags = {TAG_KEY: tag if tag is not None else str(mark)}
    bucket, table = f"{mark.session}-traces", f"{mark.session}-tasks"
    create_trace_bucket(aws.s3, bucket, tags=tags)
    Lease(aws.s3, bucket, mark, seconds).renew()
    aws.s3.put_object(Bucket=bucket, Key="traces/u/t.jsonl.gz", Body=b"trace")
    create_task_table(aws.dynamodb, table, tags=tags)
    name = f"{mark.session}-users"
    create_user_pool(aws.cognito, name=name, region=REGION, endpoint="", tags=tags)
    return [name, table, bucket]


def stacks(aws: Clients) -> set[str]:
    pools = aws.cognito.list_user_pools(MaxResults=60)["UserPools"]
    return (
        {p["Name"] for p in pools}
        | set(aws.dynamodb.list_tables()["TableNames"])
        | {b["Name"] for b in aws.s3.list_buckets()["Buckets"]}
    )


def test_on_a_shared_emulator_only_the_stacks_of_sessions_that_are_over_go(
    emulator: Clients,
) -> None:
    already = stacks(emulator)  # moto's state may hold other tests' resources
    over, running, current = Mark.new(), Mark.new(), Mark.new()
    gone = own_stack(emulator, over, seconds=0)
    kept = own_stack(emulator, running, seconds=300)
    kept += own_stack(emulator, current, seconds=0)
    impostor = Mark.new()  # tagged with the over session's name, not its proof
    kept += own_stack(emulator, impostor, tag=f"{over.session}.{'0' * 32}", seconds=0)
    untagged = "bgsuite-1-abcdef-999999-abcd-traces"
    emulator.s3.create_bucket(Bucket=untagged)
    kept.append(untagged)

    removed = remove_leftover_stacks(emulator, current)

    assert set(gone) <= set(removed)
    assert stacks(emulator) == (already - set(removed)) | set(kept)


# Hostile co-tenants of a shared stack: what lies under the lease prefix, and clean-ups
# that run at the same moment, must never stop a session from starting.


def test_a_lease_nested_past_the_recursion_limit_is_no_lease_and_stops_no_session(
    stack: Footprint,
) -> None:
    """Anyone who may write to the bucket can leave this under the lease prefix: it is
    no lease of the suite's, and must be kept and passed over like any other."""
    forged = Mark.new()
    body = b"[" * 4096
    stack.s3.put_object(Bucket=BUCKET, Key=lease_key(forged.session), Body=body)

    assert stack.remove_leftovers(Mark.new()) == []
    assert stack.s3.get_object(Bucket=BUCKET, Key=lease_key(forged.session))["Body"].read() == body


class _Racing:
    """A client that lets another session's clean-up run just before ``operation``."""

    def __init__(self, client: Any, operation: str, other: Any) -> None:
        self._client, self._operation, self._other = client, operation, other

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def racing(**call: Any) -> Any:
            other, self._other = self._other, None
            if other is not None:
                other()
            return attribute(**call)

        return racing


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("cognito", "describe_user_pool"),
        ("cognito", "delete_user_pool"),
        ("dynamodb", "describe_table"),
        ("dynamodb", "delete_table"),
        ("s3", "delete_object"),
    ],
)
def test_two_sessions_removing_the_same_leftover_stack_both_start(
    service: str, operation: str
) -> None:
    """Two sessions start side by side after a killed one's lease is over: both find its
    stack over, and each must start whichever removes each part first."""
    with mock_aws():
        aws = Clients(
            boto3.client("s3", region_name=REGION),
            boto3.client("dynamodb", region_name=REGION),
            boto3.client("cognito-idp", region_name=REGION),
        )
        killed = Mark.new()
        tags = {TAG_KEY: str(killed)}
        create_trace_bucket(aws.s3, f"{killed.session}-traces", tags=tags)
        Lease(aws.s3, f"{killed.session}-traces", killed, 0).renew()
        create_task_table(aws.dynamodb, f"{killed.session}-tasks", tags=tags)
        create_user_pool(
            aws.cognito, name=f"{killed.session}-users", region=REGION, endpoint="", tags=tags
        )

        def other_session() -> None:
            remove_leftover_stacks(aws, Mark.new())

        parts = {"s3": aws.s3, "dynamodb": aws.dynamodb, "cognito": aws.cognito}
        parts[service] = _Racing(parts[service], operation, other_session)
        racing = Clients(**parts)

        remove_leftover_stacks(racing, Mark.new())  # must not raise

        # moto's state may hold other tests' resources: only the killed stack's count.
        assert not [n for n in stacks(aws) if n.startswith(killed.session)]


# A session on a shared emulator whose lease is refused (a bucket policy denying the
# lease prefix, say) must not leave its tagged bucket behind: without a lease nothing
# ever proves it over, so no later session would remove it.


def test_a_session_whose_lease_is_refused_leaves_no_bucket_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    refused = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"
    )

    def hold(self: footprint.Lease) -> None:
        raise refused

    monkeypatch.setattr(footprint.Lease, "hold", hold)
    try:
        with pytest.raises(ClientError), LocalStack.running(emulator=endpoint):
            pass
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []
    finally:
        server.stop()


class AnsweringS3:
    """An S3 client whose GetObject answers a lease written now with ``date``."""

    class exceptions:
        ClientError = ClientError

    def __init__(self, mark: Mark, date: str | None) -> None:
        self._body = json.dumps({"proof": mark.proof, "seconds": 0}).encode()
        self._headers = {} if date is None else {"date": date}

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {
            "Body": io.BytesIO(self._body),
            "LastModified": datetime(2026, 12, 3, 11, 0, tzinfo=UTC),
            "ResponseMetadata": {"HTTPHeaders": self._headers},
        }


@pytest.mark.parametrize(
    "date",
    ["", "garbage", "Thu, 03 Dec 2026 12:00:00 -0000", "Mon, 31 Feb 2026 12:00:00 GMT"],
)
def test_a_time_from_s3_that_is_no_time_never_ends_a_lease(date: str) -> None:
    mark = Mark.new()
    assert over_lease(AnsweringS3(mark, date), BUCKET, mark.session) is None


def test_by_s3s_clock_a_lease_past_its_length_is_over() -> None:
    mark = Mark.new()
    s3 = AnsweringS3(mark, "Thu, 03 Dec 2026 11:00:00 GMT")
    assert over_lease(s3, BUCKET, mark.session) == mark


def test_a_refused_lease_says_what_the_suite_needs(stack: Footprint) -> None:
    stack.s3.put_bucket_policy(
        Bucket=BUCKET,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{BUCKET}/{LEASE_PREFIX}*",
                    }
                ],
            }
        ),
    )
    mark = Mark.new()
    with pytest.raises(LeaseRefused) as refused:
        stack.lease(mark, 300).hold()
    said = str(refused.value)
    assert said.startswith(
        f"the session's lease s3://{BUCKET}/{lease_key(mark.session)} could not be written ("
    )
    assert said.endswith(
        "): the suite needs s3:PutObject, s3:GetObject and s3:DeleteObject on "
        f"{LEASE_PREFIX}* in that bucket"
    )
    assert "\n" not in said
