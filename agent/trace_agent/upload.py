"""Upload a dumped trajectory to the trace bucket. Fail-open: a trace never fails a task."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from trace_agent import aws_clients

logger = logging.getLogger(__name__)

# The infrastructure owns these (trace_infra.definitions); a contract test pins them.
TRACE_KEY_PREFIX = "traces/"
TRACE_OBJECT_SUFFIX = ".jsonl.gz"
# The object *is* a gzip file, so it is typed as one and carries no Content-Encoding:
# with that header HTTP clients would unpack it on the fly.
TRACE_CONTENT_TYPE = "application/gzip"
TRACE_CHECKSUM_ALGORITHM = "SHA256"
ENV_TRACE_BUCKET = "TRACE_ARTIFACTS_BUCKET_NAME"

_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "KMS.AccessDeniedException",
    }
)


def trace_key(user_id: str, task_id: str) -> str:
    return f"{TRACE_KEY_PREFIX}{user_id}/{task_id}{TRACE_OBJECT_SUFFIX}"


@dataclass(frozen=True)
class TraceStorage:
    """The trace bucket, as the agent runtime reaches it."""

    bucket: str
    s3: Any

    @classmethod
    def from_environment(cls) -> TraceStorage:
        """The bucket the runtime's environment names (empty when unset: uploads are then
        skipped, with a log line), through the process's S3 client."""
        return cls(os.environ.get(ENV_TRACE_BUCKET, ""), aws_clients.client("s3"))

    def upload(self, task_id: str, user_id: str, body: bytes) -> str | None:
        """Store ``body`` at ``traces/<user_id>/<task_id>.jsonl.gz``; return its ``s3://``
        URI. Returns None, after logging why, instead of raising."""
        if not task_id:
            logger.warning("trace upload skipped: empty task_id")
            return None
        if not user_id:
            # traces//<task>.jsonl.gz could never be downloaded: no caller owns it.
            logger.warning("trace upload skipped for task %s: empty user_id", task_id)
            return None
        bucket = self.bucket
        if not bucket:
            logger.warning(
                "trace upload skipped for task %s: %s is not set", task_id, ENV_TRACE_BUCKET
            )
            return None

        key = trace_key(user_id, task_id)
        try:
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=TRACE_CONTENT_TYPE,
                # Stored with the object whatever its encryption: the CLI checks it.
                ChecksumAlgorithm=TRACE_CHECKSUM_ALGORITHM,
            )
        except (ClientError, BotoCoreError) as err:
            _log_failure(task_id, bucket, key, err)
            return None
        except Exception:
            logger.exception("trace upload failed for task %s (s3://%s/%s)", task_id, bucket, key)
            return None
        logger.info("trace uploaded for task %s: %d bytes", task_id, len(body))
        return f"s3://{bucket}/{key}"


def upload_trace_to_s3(task_id: str, user_id: str, body: bytes) -> str | None:
    """Fail-open upload to the bucket the environment names (see ``TraceStorage.upload``)."""
    return TraceStorage.from_environment().upload(task_id, user_id, body)


def _log_failure(task_id: str, bucket: str, key: str, err: Exception) -> None:
    code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""
    if code in _ACCESS_DENIED_CODES or isinstance(
        err, NoCredentialsError | PartialCredentialsError
    ):
        logger.error(
            "trace upload denied for task %s (s3://%s/%s): %s. The agent runtime role is "
            "likely missing s3:PutObject on the trace bucket; check its IAM policy.",
            task_id,
            bucket,
            key,
            err,
        )
    else:
        logger.error("trace upload failed for task %s (s3://%s/%s): %s", task_id, bucket, key, err)
