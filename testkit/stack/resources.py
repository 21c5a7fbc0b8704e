"""The trace round trip's AWS side as the scenarios see it: its resources, the agent
runtime's clients, and what scenarios do to a task's record and stored trace."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from testkit.aws.endpoint import AwsEndpoint
from testkit.conformance.agent import run_other_agent
from testkit.settings import Settings
from testkit.stack.footprint import ITEM_MARKER, Mark
from testkit.stack.users import UserPool
from trace_agent.pipeline import TaskOutcome, run_task
from trace_agent.task_config import TaskConfig
from trace_agent.task_record import ACTIVE_STATUSES, TaskRecords
from trace_agent.upload import TraceStorage


@dataclass(frozen=True)
class ResourceNames:
    """Names of the bucket, table and user pool a session creates: led by the session's
    name, so that sessions sharing an emulator never meet."""

    bucket: str
    table: str
    pool: str

    @classmethod
    def for_session(cls, mark: Mark) -> ResourceNames:
        session = mark.session
        return cls(f"{session}-traces", f"{session}-tasks", f"{session}-users")


@dataclass(frozen=True)
class AgentRuntime:
    """The agent runtime's view of the stack: its own clients, as the runtime's role
    reaches S3 and DynamoDB, and the names its environment gives it."""

    s3: Any
    dynamodb: Any
    bucket: str
    table: str
    # What an agent runtime process gets: another team's agent reads it.
    environment: Mapping[str, str]

    def records(self) -> TaskRecords:
        return TaskRecords(self.table, self.dynamodb)

    def traces(self) -> TraceStorage:
        return TraceStorage(self.bucket, self.s3)


@dataclass(frozen=True)
class Resources:
    """The stack as the scenarios see it, whichever target runs it: the harness's own
    clients (``aws``), the agent runtime's, and the names of its resources; ``mark``
    is what the session writes on all it creates (``testkit.stack.footprint``)."""

    aws: AwsEndpoint
    agent: AgentRuntime
    pool: UserPool
    api_url: str
    bucket: str
    table: str
    mark: Mark

    def run_task(
        self,
        task_id: str,
        user_id: str,
        events: Iterable[Mapping[str, Any]],
        *,
        trace: bool,
        trace_max_bytes: int | None = None,
    ) -> TaskOutcome:
        """A task submitted for its owner and run to its end by the real pipeline, as the
        agent runtime runs it: with its own clients and the names its environment gives.
        Another team's agent (``TRACE_SUITE_PROFILE``'s ``[agent]``) finishes it instead."""
        self.submit_task(task_id, user_id, trace=trace)
        other = Settings.current().agent
        if other is not None:
            return run_other_agent(
                other,
                task_id,
                user_id,
                events,
                trace=trace,
                environment=self.agent.environment,
                records=self.agent.records(),
            )
        capped = {} if trace_max_bytes is None else {"trace_max_bytes": trace_max_bytes}
        return run_task(
            TaskConfig(task_id=task_id, user_id=user_id, trace=trace, **capped),
            events,
            records=self.agent.records(),
            traces=self.agent.traces(),
        )

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
                ITEM_MARKER: {"S": str(self.mark)},
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

    def deny_all_bucket_access(self) -> Callable[[], None]:
        """A bucket policy that denies everyone: every object request gets 403.

        Returns what puts the bucket's policy back as it was.
        """
        s3 = self.aws.client("s3")
        try:
            before: str | None = s3.get_bucket_policy(Bucket=self.bucket)["Policy"]
        except s3.exceptions.ClientError as err:
            if err.response["Error"]["Code"] != "NoSuchBucketPolicy":
                raise
            before = None
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
        s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))

        def restore() -> None:
            if before is None:
                s3.delete_bucket_policy(Bucket=self.bucket)
            else:
                s3.put_bucket_policy(Bucket=self.bucket, Policy=before)

        return restore

    def stored_keys(self) -> list[str]:
        pages = self.aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def task_record(self, task_id: str, *attributes: str) -> dict[str, Any]:
        """The task's record, or only the named attributes of it (moto reads a large
        record back slowly)."""
        projection: dict[str, Any] = {}
        if attributes:
            names = {f"#a{index}": name for index, name in enumerate(attributes)}
            projection = {
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
        item = self.aws.client("dynamodb").get_item(
            TableName=self.table,
            Key={"task_id": {"S": task_id}},
            ConsistentRead=True,
            **projection,
        )["Item"]
        return {name: next(iter(value.values())) for name, value in item.items()}

    def _location(self, task_id: str) -> tuple[str, str]:
        uri = self.task_record(task_id, "trace_s3_uri")["trace_s3_uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bucket, key

    def stored_object(self, task_id: str) -> dict[str, Any]:
        """The object the task record links to, read straight from the bucket."""
        bucket, key = self._location(task_id)
        return self.aws.client("s3").get_object(Bucket=bucket, Key=key)

    def stored_artifact(self, task_id: str) -> bytes:
        return self.stored_object(task_id)["Body"].read()
