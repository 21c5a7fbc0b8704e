"""The one definition of the trace bucket and the task table.

Every other layer uses or pins these values: the handler checks keys against
``TRACE_KEY_PREFIX``, the agent's key builder is pinned to it by a contract test,
and the acceptance fixtures build the moto bucket and table from these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TRACE_KEY_PREFIX = "traces/"
TRACE_OBJECT_SUFFIX = ".jsonl.gz"
TRACE_CONTENT_TYPE = "application/gzip"
TRACE_CHECKSUM_ALGORITHM = "SHA256"
PRESIGNED_URL_TTL_SECONDS = 900

# Environment variables shared by the agent runtime and the handler.
ENV_TRACE_BUCKET = "TRACE_ARTIFACTS_BUCKET_NAME"
ENV_TASK_TABLE = "TASK_TABLE_NAME"


def trace_object_key(user_id: str, task_id: str) -> str:
    """``traces/<user_id>/<task_id>.jsonl.gz``: the key shape every layer agrees on."""
    return f"{TRACE_KEY_PREFIX}{user_id}/{task_id}{TRACE_OBJECT_SUFFIX}"


def caller_key_prefix(user_id: str) -> str:
    """The only prefix a caller may be handed a link under."""
    return f"{TRACE_KEY_PREFIX}{user_id}/"


@dataclass(frozen=True)
class TraceBucketDefinition:
    lifecycle_rule_id: str = "trace-artifacts-ttl"
    expiration_days: int = 7
    abort_incomplete_multipart_days: int = 1
    sse_algorithm: str = "AES256"
    block_public_access: bool = True
    enforce_tls: bool = True


# What a grant applies to: the trace objects (``<bucket>/traces/*``), the trace
# bucket itself (listing), or the task table.
Scope = Literal["trace objects", "trace bucket", "task table"]


@dataclass(frozen=True)
class Grant:
    """One IAM statement: these actions allowed on that scope."""

    actions: tuple[str, ...]
    scope: Scope


# The trace URL function's role. HeadObject is authorized by s3:GetObject; without
# s3:ListBucket, S3 answers 403 (not 404) for a key that does not exist, so a trace
# that has left storage could not be told apart from a denied read.
GET_TRACE_URL_GRANTS = (
    Grant(("s3:GetObject",), "trace objects"),
    Grant(("s3:ListBucket",), "trace bucket"),
    Grant(("dynamodb:GetItem",), "task table"),
)

# The agent runtime's role: it stores traces and writes its task's terminal status.
AGENT_RUNTIME_GRANTS = (
    Grant(("s3:PutObject",), "trace objects"),
    Grant(("dynamodb:UpdateItem",), "task table"),
)


@dataclass(frozen=True)
class FunctionDefinition:
    """The trace URL Lambda: what the construct deploys and the local stack runs."""

    handler: str = "trace_infra.handlers.get_trace_url.lambda_handler"
    runtime: str = "python3.12"
    timeout_seconds: int = 10
    memory_mb: int = 256
    # The runtime's JSON log format with an application log level: without a level
    # the runtime leaves Python's root logger at WARNING and INFO records are dropped;
    # in the text format the records' structured fields are never printed.
    log_format: Literal["JSON", "Text"] = "JSON"
    application_log_level: str = "INFO"
    system_log_level: str = "WARN"
    environment_names: tuple[str, ...] = (ENV_TRACE_BUCKET, ENV_TASK_TABLE)


AttributeType = Literal["S", "N", "B"]
Projection = Literal["ALL", "KEYS_ONLY"]


@dataclass(frozen=True)
class GlobalIndex:
    name: str
    partition_key: str
    sort_key: str | None
    projection: Projection


@dataclass(frozen=True)
class TaskTableDefinition:
    partition_key: str = "task_id"
    billing_mode: Literal["PAY_PER_REQUEST"] = "PAY_PER_REQUEST"
    ttl_attribute: str = "ttl"
    point_in_time_recovery: bool = True
    global_indexes: tuple[GlobalIndex, ...] = field(
        default=(
            GlobalIndex("UserStatusIndex", "user_id", "status_created_at", "ALL"),
            GlobalIndex("StatusIndex", "status", "created_at", "ALL"),
            GlobalIndex("IdempotencyIndex", "idempotency_key", None, "KEYS_ONLY"),
        )
    )

    def key_attributes(self) -> dict[str, AttributeType]:
        """Every attribute used in a key of the table or an index (all strings)."""
        names = [self.partition_key]
        for index in self.global_indexes:
            names.append(index.partition_key)
            if index.sort_key:
                names.append(index.sort_key)
        return dict.fromkeys(names, "S")


GET_TRACE_URL = FunctionDefinition()
TRACE_BUCKET = TraceBucketDefinition()
TASK_TABLE = TaskTableDefinition()
