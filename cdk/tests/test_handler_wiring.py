"""What the handler reads and does, observed by running it, matches what the template
gives its Lambda: the environment variables and the IAM actions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from testkit.aws.resources import create_task_table, create_trace_bucket
from trace_infra.handlers import get_trace_url

# The IAM action that allows each API operation the handler makes.
IAM_ACTION_OF = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "GetObject"): "s3:GetObject",
    ("dynamodb", "GetItem"): "dynamodb:GetItem",
}


class RecordingEnviron(Mapping[str, str]):
    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def test_the_handler_reads_exactly_the_variables_the_template_sets(synthesized) -> None:
    function = synthesized.one("AWS::Lambda::Function", name_part="GetTraceUrl")
    template_vars = set(function["Properties"]["Environment"]["Variables"])
    environ = RecordingEnviron(dict.fromkeys(template_vars, "x") | {"AWS_REGION": "us-east-1"})

    get_trace_url.deps_from_environment(environ)

    # AWS_* variables are the Lambda runtime's own; the rest must come from the template.
    assert {name for name in environ.read if not name.startswith("AWS_")} == template_vars


@pytest.fixture
def operations() -> Iterator[tuple[list[tuple[str, str]], get_trace_url.HandlerDeps]]:
    """Handler dependencies on moto, and every AWS API operation made through them."""
    seen: list[tuple[str, str]] = []
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        s3 = session.client("s3", config=Config(signature_version="s3v4"))
        ddb = session.client("dynamodb")
        create_trace_bucket(s3, "trace-bucket")
        create_task_table(ddb, "tasks")
        s3.put_object(Bucket="trace-bucket", Key="traces/u/t1.jsonl.gz", Body=b"x")
        ddb.put_item(
            TableName="tasks",
            Item={
                "task_id": {"S": "t1"},
                "user_id": {"S": "u"},
                "trace_s3_uri": {"S": "s3://trace-bucket/traces/u/t1.jsonl.gz"},
            },
        )

        def record(event_name: str, **_: Any) -> None:
            _, service, operation = event_name.split(".")[:3]
            seen.append((service, operation))

        # Registered after the setup above: only the handler's own calls are seen.
        for client in (s3, ddb):
            client.meta.events.register("before-call.*.*", record)
        yield (
            seen,
            get_trace_url.HandlerDeps(
                s3=s3, dynamodb=ddb, table_name="tasks", bucket="trace-bucket"
            ),
        )


def test_the_handler_role_allows_exactly_what_the_handler_calls(operations, synthesized) -> None:
    seen, deps = operations
    event = {
        "pathParameters": {"task_id": "t1"},
        "requestContext": {"requestId": "r", "authorizer": {"claims": {"sub": "u"}}},
    }
    assert get_trace_url.handle(event, deps)["statusCode"] == 200
    needed = {IAM_ACTION_OF[call] for call in seen}

    policies = synthesized.resources_of("AWS::IAM::Policy")
    granted = {
        statement["Action"]
        for name, policy in policies.items()
        if "GetTraceUrlServiceRole" in name
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    assert needed == {"s3:GetObject", "dynamodb:GetItem"}
    # s3:ListBucket is never called: it makes S3 answer 404 rather than 403 for a
    # trace that has left storage (HeadObject's documented permission rule).
    assert granted == needed | {"s3:ListBucket"}
