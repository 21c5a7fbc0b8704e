"""``GET /tasks/{task_id}/trace``: hand a task's owner a short-lived link to its trace.

REST API (v1) proxy event in, proxy result out. The checks run in the order of
the contract; the first that fails answers. Every refusal is logged once, with
structured fields (``task_id``, ``request_id``, ``reason``, ``status``) that the
runtime's JSON log format prints; nothing secret (tokens, presigned URLs) is
ever logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from trace_infra.definitions import (
    ENV_TASK_TABLE,
    ENV_TRACE_BUCKET,
    PRESIGNED_URL_TTL_SECONDS,
    caller_key_prefix,
)

logger = logging.getLogger(__name__)

_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$", re.DOTALL)
_MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_RESPONSE_HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
# DynamoDB refuses a partition key longer than this, in UTF-8 bytes: no task has such an id.
MAX_TASK_ID_BYTES = 2048


class ApiError(Exception):
    """An answer the handler gives on purpose: status, code and a user-facing message."""

    def __init__(
        self, status: int, code: str, message: str, *, reason: str = "", alarming: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason or code  # for the log only: users get the message
        # An error for whoever runs the platform, whatever the user is told.
        self.alarming = alarming or status >= 500


def internal_error(reason: str) -> ApiError:
    """A 500 that tells the user nothing of the platform's configuration."""
    return ApiError(500, "INTERNAL_ERROR", "Internal server error.", reason=reason)


_INTERNAL = internal_error("INTERNAL_ERROR")


@dataclass(frozen=True)
class HandlerDeps:
    s3: Any
    dynamodb: Any
    table_name: str
    bucket: str
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def handle(event: Any, deps: HandlerDeps) -> dict[str, Any]:
    """Answer one proxy event; never raises, whatever the event's shape."""
    request_id = _request_id(event)
    task_id = _task_id(event)
    try:
        return _respond(200, {"data": _presign_for_owner(event, deps)}, request_id)
    except ApiError as err:
        logger.log(
            logging.ERROR if err.alarming else logging.INFO,
            "trace url refused: %s",
            err.reason,
            extra={**_log_context(task_id, request_id), "reason": err.reason, "status": err.status},
        )
        return _error_response(err, request_id)
    except Exception:
        logger.exception("trace url failed", extra=_log_context(task_id, request_id))
        return _error_response(_INTERNAL, request_id)


def _presign_for_owner(event: Mapping[str, Any], deps: HandlerDeps) -> dict[str, str]:
    caller = _caller_sub(event)
    if not caller:
        raise ApiError(401, "UNAUTHORIZED", "Missing or invalid caller identity.")
    task_id = _task_id(event)
    if not task_id:
        raise ApiError(400, "VALIDATION_ERROR", "Missing task_id path parameter.")
    if not can_be_a_task_id(task_id):
        # No task has such an id, so it is answered as a task that does not exist,
        # without asking the table (which would refuse the key): any caller can send
        # one, so it must never read as the API failing.
        raise ApiError(
            404,
            "TASK_NOT_FOUND",
            # Not the id itself: it may be megabytes, which the user already has.
            f"Task not found: a task id is at most {MAX_TASK_ID_BYTES} bytes of UTF-8.",
            reason=f"task_id cannot be a DynamoDB key: over {MAX_TASK_ID_BYTES} bytes or not UTF-8",
        )

    item = deps.dynamodb.get_item(
        TableName=deps.table_name, Key={"task_id": {"S": task_id}}, ConsistentRead=True
    ).get("Item")
    if item is None:
        raise ApiError(404, "TASK_NOT_FOUND", f"Task {task_id} not found.")
    if _string(item, "user_id") != caller:
        raise ApiError(403, "FORBIDDEN", "You do not have access to this task.")
    if item.get("trace_s3_uri") in (None, {"S": ""}):
        raise ApiError(404, "TRACE_NOT_AVAILABLE", "No trace is available for this task.")
    uri = _string(item, "trace_s3_uri")
    if uri is None:
        # A link of another type is a corrupt record, not a task without a trace.
        raise internal_error("trace_s3_uri is not a string")

    match = _S3_URI.match(uri)
    if match is None:
        raise internal_error("trace_s3_uri is not s3://<bucket>/<key>")
    bucket, key = match["bucket"], match["key"]
    if bucket != deps.bucket:
        # Never sign an object in a bucket this API does not own.
        raise internal_error("trace_s3_uri names a bucket other than the trace bucket")
    if not key_belongs_to(key, caller):
        # The record links a key the caller does not own: a tampered record or a
        # cross-user write, never a user's mistake.
        raise ApiError(
            403,
            "FORBIDDEN",
            "You do not have access to this trace.",
            reason="trace key outside the caller's prefix",
            alarming=True,
        )

    try:
        # With the stored checksum, which the CLI checks the download against (an ETag
        # is an MD5 only for some uploads and encryptions). Signing the checksum mode
        # into the link instead would make S3 refuse a plain GET of it.
        head = deps.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as err:
        if _is_missing(err):
            raise ApiError(
                404, "TRACE_NOT_AVAILABLE", "No trace is available for this task."
            ) from err
        raise internal_error(f"HEAD of the trace failed: {_error_code(err)}") from err

    url = deps.s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key},
        ExpiresIn=PRESIGNED_URL_TTL_SECONDS,
    )
    expires_at = deps.now() + timedelta(seconds=PRESIGNED_URL_TTL_SECONDS)
    answer = {"url": url, "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    checksum = head.get("ChecksumSHA256")
    if isinstance(checksum, str) and checksum:
        answer["checksum_sha256"] = checksum
    return answer


def can_be_a_task_id(task_id: str) -> bool:
    """Whether DynamoDB could hold ``task_id`` as the task table's partition key: at most
    MAX_TASK_ID_BYTES of UTF-8 (a lone surrogate has no UTF-8)."""
    try:
        return len(task_id.encode("utf-8")) <= MAX_TASK_ID_BYTES
    except UnicodeEncodeError:
        return False


def key_belongs_to(key: str, caller: str) -> bool:
    """True only for a plain key under the caller's own prefix.

    S3 keys are literal, but HTTP clients may normalise ``.``/``..`` and empty
    path segments, so a key carrying them is refused rather than reasoned about.
    """
    if not caller or "/" in caller or not key.startswith(caller_key_prefix(caller)):
        return False
    return all(segment not in ("", ".", "..") for segment in key.split("/"))


def _field(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...``, or None wherever a level is not a mapping."""
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _caller_sub(event: Any) -> str | None:
    sub = _field(event, "requestContext", "authorizer", "claims", "sub")
    return sub if isinstance(sub, str) and sub else None


def _task_id(event: Any) -> str | None:
    task_id = _field(event, "pathParameters", "task_id")
    return task_id if isinstance(task_id, str) else None


def _request_id(event: Any) -> str:
    request_id = _field(event, "requestContext", "requestId")
    return request_id if isinstance(request_id, str) and request_id else str(uuid.uuid4())


def _string(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _is_missing(err: ClientError) -> bool:
    code = _error_code(err)
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _MISSING_OBJECT_CODES or status == 404


def _respond(status: int, body: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**_RESPONSE_HEADERS, "X-Request-Id": request_id},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _error_response(err: ApiError, request_id: str) -> dict[str, Any]:
    body = {"error": {"code": err.code, "message": err.message, "request_id": request_id}}
    return _respond(err.status, body, request_id)


def _log_context(task_id: object, request_id: str) -> dict[str, object]:
    return {"task_id": task_id, "request_id": request_id}


def deps_from_environment(environ: Mapping[str, str] = os.environ) -> HandlerDeps:
    """Clients and names from the function's environment (boto3 itself reads the
    endpoint and credentials variables)."""
    session = boto3.session.Session(
        region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    )
    return HandlerDeps(
        # Real S3 wants SigV4; boto3 would presign SigV2 in some regions.
        s3=session.client("s3", config=Config(signature_version="s3v4")),
        dynamodb=session.client("dynamodb"),
        table_name=environ[ENV_TASK_TABLE],
        bucket=environ[ENV_TRACE_BUCKET],
    )


@cache
def _deps_of_this_process() -> HandlerDeps:
    # Built on the first invocation and reused by every warm one.
    return deps_from_environment()


def lambda_handler(event: Any, context: object) -> dict[str, Any]:
    """The Lambda entry point."""
    try:
        deps = _deps_of_this_process()
    except KeyError as err:
        logger.error("handler misconfigured: %s is not set", err)
        return _error_response(_INTERNAL, _request_id(event))
    return handle(event, deps)
