"""Hostile co-tenants of a shared stack: what lies under the lease prefix, and clean-ups
that run at the same moment, must never stop a session from starting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from testkit.aws.resources import create_task_table, create_trace_bucket
from testkit.stack.footprint import (
    TAG_KEY,
    Clients,
    Footprint,
    Lease,
    Mark,
    lease_key,
    remove_leftover_stacks,
)
from testkit.stack.users import create_user_pool

BUCKET, TABLE, REGION = "the-stacks-traces", "the-stacks-tasks", "us-east-1"


@pytest.fixture
def stack() -> Iterator[Footprint]:
    with mock_aws():
        s3, dynamodb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", REGION)
        cognito = boto3.client("cognito-idp", region_name=REGION)
        create_trace_bucket(s3, BUCKET)
        create_task_table(dynamodb, TABLE)
        pool = create_user_pool(cognito, name="the-stacks-users", region=REGION, endpoint="")
        yield Footprint(cognito, dynamodb, s3, pool.id, TABLE, BUCKET)


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

        assert aws.s3.list_buckets()["Buckets"] == []
        assert aws.dynamodb.list_tables()["TableNames"] == []
        assert aws.cognito.list_user_pools(MaxResults=60)["UserPools"] == []
