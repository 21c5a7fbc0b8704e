"""The agent's writes to the task record: the terminal status and the trace link."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from trace_agent import aws_clients

ACTIVE_STATUSES = ("RUNNING", "HYDRATING", "FINALIZING", "AWAITING_APPROVAL")
TERMINAL_STATUSES = ("CANCELLED", "COMPLETED", "FAILED", "TIMED_OUT")
ENV_TASK_TABLE = "TASK_TABLE_NAME"
# DynamoDB's words for a write past its 400 KB item limit (PutItem, then UpdateItem).
_ITEM_TOO_LARGE = ("Item size has exceeded", "Item size to update has exceeded")


class RecordTooLarge(Exception):
    """The write would take the task record past DynamoDB's 400 KB item limit."""


def _utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TaskRecords:
    """Conditional writes to the task table; each says whether its condition held."""

    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any,
        *,
        now_iso: Callable[[], str] = _utc_now_iso,
    ) -> None:
        self.table_name = table_name
        self._ddb = dynamodb_client
        self._now_iso = now_iso

    @classmethod
    def from_environment(cls) -> TaskRecords:
        return cls(os.environ[ENV_TASK_TABLE], aws_clients.client("dynamodb"))

    def write_terminal(self, task_id: str, status: str, trace_s3_uri: str | None) -> bool:
        """Move an active task to ``status``, with its trace link in the same write.

        False when the task was no longer active (a cancel or a reconciler won).
        Raises RecordTooLarge when the record cannot hold what the write adds.
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status} is not a terminal status")
        now = self._now_iso()
        updates = ["#s = :status", "completed_at = :now", "status_created_at = :sca"]
        values: dict[str, Any] = {
            ":status": {"S": status},
            ":now": {"S": now},
            ":sca": {"S": f"{status}#{now}"},
            **_status_values("active", ACTIVE_STATUSES),
        }
        if trace_s3_uri:
            updates.append("trace_s3_uri = :uri")
            values[":uri"] = {"S": trace_s3_uri}
        return self._conditional_update(
            task_id,
            update="SET " + ", ".join(updates),
            condition=f"#s IN ({_placeholders('active', ACTIVE_STATUSES)})",
            values=values,
        )

    def link_trace(self, task_id: str, trace_s3_uri: str) -> bool:
        """Link a trace to a task that already reached a terminal status, once."""
        return self._conditional_update(
            task_id,
            update="SET trace_s3_uri = :uri",
            condition=(
                "attribute_not_exists(trace_s3_uri) AND "
                f"#s IN ({_placeholders('terminal', TERMINAL_STATUSES)})"
            ),
            values={":uri": {"S": trace_s3_uri}, **_status_values("terminal", TERMINAL_STATUSES)},
        )

    def _conditional_update(
        self, task_id: str, *, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            error = err.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                return False
            if error.get("Code") == "ValidationException" and str(
                error.get("Message", "")
            ).startswith(_ITEM_TOO_LARGE):
                raise RecordTooLarge(f"task {task_id}: {error.get('Message')}") from err
            raise
        return True


def _placeholders(group: str, statuses: tuple[str, ...]) -> str:
    return ", ".join(f":{group}{i}" for i in range(len(statuses)))


def _status_values(group: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    return {f":{group}{i}": {"S": status} for i, status in enumerate(statuses)}
