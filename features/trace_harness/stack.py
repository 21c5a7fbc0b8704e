"""The trace round trip's AWS side, as one scenario sees it, built fresh in moto."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trace_agent.task_record import ACTIVE_STATUSES
from trace_harness.identities import UserPool
from trace_harness.local_aws import (
    REGION,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsEndpoint,
)
from trace_infra.definitions import ENV_TASK_TABLE, ENV_TRACE_BUCKET
from trace_testing.resources import create_task_table, create_trace_bucket


@dataclass(frozen=True)
class StackNames:
    """Names of one session's bucket and table: unique, so that sessions sharing an
    emulator (or xdist workers) never meet."""

    bucket: str
    table: str

    @classmethod
    def unique(cls) -> StackNames:
        suffix = uuid.uuid4().hex[:10]
        return cls(f"bgagent-trace-artifacts-{suffix}", f"bgagent-tasks-{suffix}")


def code_under_test_environment(
    aws: AwsEndpoint, s3_endpoint: str, names: StackNames
) -> dict[str, str]:
    """What the agent runtime and the handler read, pointed at moto (S3 through the gate).

    boto3 honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3 itself, so production
    code needs no test hook; the empty config files keep any real AWS profile on
    this machine out of reach.
    """
    return {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        ENV_TRACE_BUCKET: names.bucket,
        ENV_TASK_TABLE: names.table,
    }


@dataclass(frozen=True)
class TraceStack:
    aws: AwsEndpoint
    pool: UserPool
    api_url: str
    bucket: str
    table: str

    @classmethod
    def build(cls, aws: AwsEndpoint, pool: UserPool, api_url: str, names: StackNames) -> TraceStack:
        """The stack's bucket and table, new, beside the session's user pool."""
        create_trace_bucket(aws.client("s3"), names.bucket)
        create_task_table(aws.client("dynamodb"), names.table)
        return cls(aws, pool, api_url, names.bucket, names.table)

    def remove(self) -> None:
        """Delete the bucket (emptied first) and the table, on an endpoint that outlives us."""
        s3 = self.aws.client("s3")
        for key in self.stored_keys():
            s3.delete_object(Bucket=self.bucket, Key=key)
        s3.delete_bucket(Bucket=self.bucket)
        self.aws.client("dynamodb").delete_table(TableName=self.table)

    def undo_scenario_changes(self) -> None:
        """Put back what a scenario may change in the shared resources: the bucket policy.

        Everything else a scenario writes is keyed by its own task ids, which no
        other scenario ever uses.
        """
        self.aws.client("s3").delete_bucket_policy(Bucket=self.bucket)

    def submit_task(self, task_id: str, user_id: str, *, trace: bool) -> None:
        """The task record as the API writes it when a task is submitted and starts."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.aws.client("dynamodb").put_item(
            TableName=self.table,
            Item={
                "task_id": {"S": task_id},
                "user_id": {"S": user_id},
                "status": {"S": "RUNNING"},
                "created_at": {"S": now},
                "status_created_at": {"S": f"RUNNING#{now}"},
                "trace": {"BOOL": trace},
            },
        )

    def cancel_task(self, task_id: str) -> None:
        """What the API's cancel does: an active task becomes CANCELLED."""
        active = {f":a{i}": status for i, status in enumerate(ACTIVE_STATUSES)}
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.aws.client("dynamodb").update_item(
            TableName=self.table,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET #s = :c, status_created_at = :sca",
            ConditionExpression=f"#s IN ({', '.join(active)})",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":c": {"S": "CANCELLED"},
                ":sca": {"S": f"CANCELLED#{now}"},
                **{name: {"S": status} for name, status in active.items()},
            },
        )

    def relink_trace(self, task_id: str, uri: str) -> None:
        """Damage the record's trace link, as corruption or a bad migration would."""
        self.aws.client("dynamodb").update_item(
            TableName=self.table,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET trace_s3_uri = :u",
            ExpressionAttributeValues={":u": {"S": uri}},
        )

    def delete_stored_trace(self, task_id: str) -> None:
        """moto does not apply lifecycle expiry: remove the object as expiry would."""
        bucket, key = self._location(task_id)
        self.aws.client("s3").delete_object(Bucket=bucket, Key=key)

    def restore_with_content_encoding(self, task_id: str, encoding: str) -> None:
        """Store the same bytes again, the way the buggy agent release did."""
        bucket, key = self._location(task_id)
        body = self.stored_artifact(task_id)
        self.aws.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/gzip",
            ContentEncoding=encoding,
        )

    def deny_all_bucket_access(self) -> None:
        """A bucket policy that denies everyone: every object request gets 403."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
                }
            ],
        }
        self.aws.client("s3").put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))

    def stored_keys(self) -> list[str]:
        listing = self.aws.client("s3").list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in listing.get("Contents", [])]

    def task_record(self, task_id: str) -> dict[str, Any]:
        item = self.aws.client("dynamodb").get_item(
            TableName=self.table, Key={"task_id": {"S": task_id}}, ConsistentRead=True
        )["Item"]
        return {name: next(iter(value.values())) for name, value in item.items()}

    def _location(self, task_id: str) -> tuple[str, str]:
        uri = self.task_record(task_id)["trace_s3_uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bucket, key

    def stored_object(self, task_id: str) -> dict[str, Any]:
        """The object the task record links to, read straight from the bucket."""
        bucket, key = self._location(task_id)
        return self.aws.client("s3").get_object(Bucket=bucket, Key=key)

    def stored_artifact(self, task_id: str) -> bytes:
        return self.stored_object(task_id)["Body"].read()
