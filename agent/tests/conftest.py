from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from testkit.aws.resources import create_task_table, create_trace_bucket

BUCKET = "trace-bucket"
TABLE = "tasks"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """In-process moto with the stack's bucket and table, named in the agent's env."""
    monkeypatch.setenv("TRACE_ARTIFACTS_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("TASK_TABLE_NAME", TABLE)
    with mock_aws():
        s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
        create_trace_bucket(s3, BUCKET)
        create_task_table(ddb, TABLE)
        yield {"s3": s3, "dynamodb": ddb, "bucket": BUCKET, "table": TABLE}
