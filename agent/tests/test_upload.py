import base64
import dataclasses
import hashlib
import logging

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from trace_agent.upload import TraceStorage, upload_trace_to_s3


def test_uploads_a_gzip_object_without_content_encoding(aws: dict) -> None:
    bucket = aws["bucket"]
    uri = upload_trace_to_s3("task-1", "user-a", b"\x1f\x8bdata")

    assert uri == f"s3://{bucket}/traces/user-a/task-1.jsonl.gz"
    stored = aws["s3"].get_object(Bucket=bucket, Key="traces/user-a/task-1.jsonl.gz")
    assert stored["Body"].read() == b"\x1f\x8bdata"
    assert stored["ContentType"] == "application/gzip"
    assert "ContentEncoding" not in stored
    checked = aws["s3"].head_object(
        Bucket=bucket, Key="traces/user-a/task-1.jsonl.gz", ChecksumMode="ENABLED"
    )
    assert (
        checked["ChecksumSHA256"]
        == base64.b64encode(hashlib.sha256(b"\x1f\x8bdata").digest()).decode()
    )


@pytest.mark.parametrize(
    ("task_id", "user_id", "reason"),
    [("", "user-a", "empty task_id"), ("task-1", "", "empty user_id")],
)
def test_skips_without_an_owner_or_task(
    aws: dict, caplog: pytest.LogCaptureFixture, task_id: str, user_id: str, reason: str
) -> None:
    assert upload_trace_to_s3(task_id, user_id, b"x") is None
    assert reason in caplog.text
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"])["KeyCount"] == 0


def test_skips_when_the_bucket_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TRACE_ARTIFACTS_BUCKET_NAME", raising=False)
    assert upload_trace_to_s3("task-1", "user-a", b"x") is None
    assert "TRACE_ARTIFACTS_BUCKET_NAME is not set" in caplog.text


class _FailingS3:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def put_object(self, **_: object) -> None:
        raise self.error


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PutObject")


@pytest.mark.parametrize(
    "error",
    [_client_error("AccessDenied"), _client_error("InvalidAccessKeyId"), NoCredentialsError()],
)
def test_access_problems_fail_open_with_an_iam_hint(
    caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    with caplog.at_level(logging.ERROR):
        assert TraceStorage("b", _FailingS3(error)).upload("t", "u", b"x") is None
    assert "IAM" in caplog.text


@pytest.mark.parametrize(
    "error", [_client_error("SlowDown"), _client_error("InternalError"), TimeoutError("read")]
)
def test_other_failures_fail_open_without_the_iam_hint(
    caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    assert TraceStorage("b", _FailingS3(error)).upload("t", "u", b"x") is None
    assert "trace upload failed" in caplog.text
    assert "IAM" not in caplog.text


def test_a_storage_stays_pointed_at_its_bucket(aws: dict) -> None:
    storage = TraceStorage(aws["bucket"], aws["s3"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        storage.bucket = "another-bucket"  # type: ignore[misc]
