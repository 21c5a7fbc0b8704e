import base64
import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from testkit.aws.resources import create_task_table, create_trace_bucket
from trace_infra.handlers import get_trace_url
from trace_infra.handlers.get_trace_url import (
    HandlerDeps,
    deps_from_environment,
    handle,
    key_belongs_to,
    lambda_handler,
)

BUCKET, TABLE = "trace-bucket", "tasks"
OWNER, OTHER = "sub-alice", "sub-bob"
KEY = f"traces/{OWNER}/t1.jsonl.gz"
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
ARTIFACT = b"\x1f\x8b..."


@pytest.fixture
def deps() -> Iterator[HandlerDeps]:
    with mock_aws():
        s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
        ddb = boto3.client("dynamodb")
        create_trace_bucket(s3, BUCKET)
        create_task_table(ddb, TABLE)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=ARTIFACT, ChecksumAlgorithm="SHA256")
        yield HandlerDeps(s3=s3, dynamodb=ddb, table_name=TABLE, bucket=BUCKET, now=lambda: NOW)


def put_task(deps: HandlerDeps, *, user_id: str = OWNER, uri: str | None = None) -> None:
    item: dict[str, Any] = {"task_id": {"S": "t1"}, "user_id": {"S": user_id}}
    if uri is not None:
        item["trace_s3_uri"] = {"S": uri}
    deps.dynamodb.put_item(TableName=TABLE, Item=item)


def event(sub: str | None = OWNER, task_id: str | None = "t1") -> dict[str, Any]:
    claims = {"sub": sub} if sub is not None else {}
    return {
        "httpMethod": "GET",
        "pathParameters": {"task_id": task_id} if task_id is not None else None,
        "requestContext": {"requestId": "req-1", "authorizer": {"claims": claims}},
    }


def answer(deps: HandlerDeps, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    result = handle(event(**kwargs), deps)
    return result["statusCode"], json.loads(result["body"]), result["headers"]


def test_the_owner_gets_a_sigv4_link_for_900_seconds(deps: HandlerDeps) -> None:
    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    status, body, headers = answer(deps)

    assert status == 200
    url = body["data"]["url"]
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path.endswith(KEY)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert body["data"]["expires_at"] == "2026-11-24T12:15:00Z"
    assert (
        body["data"]["checksum_sha256"]
        == base64.b64encode(hashlib.sha256(ARTIFACT).digest()).decode()
    )
    # The link signs nothing a plain GET would not send.
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert headers == {
        "Content-Type": "application/json",
        "Access-Control-Allow-Origin": "*",
        "X-Request-Id": "req-1",
    }


NO_TASK_ACCESS = "You do not have access to this task."
NO_TRACE = "No trace is available for this task."
INTERNAL = "Internal server error."


@pytest.mark.parametrize(
    ("setup", "kwargs", "status", "code", "message"),
    [
        (None, {"sub": None}, 401, "UNAUTHORIZED", "Missing or invalid caller identity."),
        (None, {"sub": ""}, 401, "UNAUTHORIZED", "Missing or invalid caller identity."),
        (None, {"task_id": None}, 400, "VALIDATION_ERROR", "Missing task_id path parameter."),
        (None, {}, 404, "TASK_NOT_FOUND", "Task t1 not found."),
        (
            {"user_id": OTHER, "uri": f"s3://{BUCKET}/traces/{OTHER}/t1.jsonl.gz"},
            {},
            403,
            "FORBIDDEN",
            NO_TASK_ACCESS,
        ),
        ({}, {}, 404, "TRACE_NOT_AVAILABLE", NO_TRACE),
        ({"uri": ""}, {}, 404, "TRACE_NOT_AVAILABLE", NO_TRACE),
        ({"uri": f"https://{BUCKET}/{KEY}"}, {}, 500, "INTERNAL_ERROR", INTERNAL),
        ({"uri": f"s3://{BUCKET}"}, {}, 500, "INTERNAL_ERROR", INTERNAL),
        ({"uri": f"s3://other-bucket/{KEY}"}, {}, 500, "INTERNAL_ERROR", INTERNAL),
        (
            {"uri": f"s3://{BUCKET}/traces/{OTHER}/t1.jsonl.gz"},
            {},
            403,
            "FORBIDDEN",
            "You do not have access to this trace.",
        ),
        (
            {"uri": f"s3://{BUCKET}/traces/{OWNER}/missing.jsonl.gz"},
            {},
            404,
            "TRACE_NOT_AVAILABLE",
            NO_TRACE,
        ),
    ],
)
def test_each_check_answers_in_contract_order(
    deps: HandlerDeps, setup: dict | None, kwargs: dict, status: int, code: str, message: str
) -> None:
    if setup is not None:
        put_task(deps, **setup)
    got_status, body, headers = answer(deps, **kwargs)
    assert (got_status, body["error"]) == (
        status,
        {"code": code, "message": message, "request_id": "req-1"},
    )
    assert headers == {
        "Content-Type": "application/json",
        "Access-Control-Allow-Origin": "*",
        "X-Request-Id": "req-1",
    }


def test_the_task_record_is_read_consistently(deps: HandlerDeps) -> None:
    """A trace linked by the agent's terminal write a moment ago must be seen."""
    reads: list[dict[str, Any]] = []

    class RecordingDynamoDB:
        def get_item(self, **request: Any) -> Any:
            reads.append(request)
            return deps.dynamodb.get_item(**request)

    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    status, _, _ = answer(HandlerDeps(deps.s3, RecordingDynamoDB(), TABLE, BUCKET, deps.now))
    assert status == 200
    assert reads == [{"TableName": TABLE, "Key": {"task_id": {"S": "t1"}}, "ConsistentRead": True}]


def test_a_head_failure_other_than_missing_is_a_500(deps: HandlerDeps) -> None:
    class DenyingS3:
        def head_object(self, **_: object) -> None:
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    denied = HandlerDeps(DenyingS3(), deps.dynamodb, TABLE, BUCKET)
    status, body, _ = answer(denied)
    assert (status, body["error"]["code"]) == (500, "INTERNAL_ERROR")


def test_an_unexpected_error_is_a_generic_500(deps: HandlerDeps) -> None:
    broken = HandlerDeps(deps.s3, deps.dynamodb, "no-such-table", BUCKET)
    status, body, _ = answer(broken)
    assert (status, body["error"]) == (
        500,
        {"code": "INTERNAL_ERROR", "message": "Internal server error.", "request_id": "req-1"},
    )


@pytest.mark.parametrize(
    ("setup", "level", "reason", "status"),
    [
        (None, logging.INFO, "TASK_NOT_FOUND", 404),
        ({"user_id": OTHER}, logging.INFO, "FORBIDDEN", 403),
        ({}, logging.INFO, "TRACE_NOT_AVAILABLE", 404),
        (
            {"uri": f"s3://other-bucket/{KEY}"},
            logging.ERROR,
            "trace_s3_uri names a bucket other than the trace bucket",
            500,
        ),
        (
            {"uri": f"s3://{BUCKET}/traces/{OTHER}/t1.jsonl.gz"},
            logging.ERROR,
            "trace key outside the caller's prefix",
            403,
        ),
    ],
    ids=["no-task", "not-the-owner", "no-trace", "foreign-bucket", "key-outside-prefix"],
)
def test_a_refusal_is_logged_once_and_as_an_error_only_when_someone_must_look(
    deps: HandlerDeps,
    caplog: pytest.LogCaptureFixture,
    setup: dict | None,
    level: int,
    reason: str,
    status: int,
) -> None:
    if setup is not None:
        put_task(deps, **setup)
    with caplog.at_level(logging.DEBUG, logger="trace_infra"):
        answer(deps)
    [logged] = [r for r in caplog.records if r.name.startswith("trace_infra")]
    assert (logged.levelno, logged.getMessage()) == (level, f"trace url refused: {reason}")
    fields = ("task_id", "request_id", "reason", "status")
    assert {name: getattr(logged, name) for name in fields} == {
        "task_id": "t1",
        "request_id": "req-1",
        "reason": reason,
        "status": status,
    }


def test_the_handlers_dependencies_cannot_change_between_invocations(deps: HandlerDeps) -> None:
    """Built once per process and shared by every warm invocation."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        deps.bucket = "another-bucket"  # type: ignore[misc]


def test_nothing_secret_is_logged(deps: HandlerDeps, caplog: pytest.LogCaptureFixture) -> None:
    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    with caplog.at_level(logging.DEBUG, logger="trace_infra"):
        url = json.loads(handle(event(), deps)["body"])["data"]["url"]
        handle(event(sub=OTHER), deps)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    assert signature not in caplog.text
    assert "X-Amz-Signature" not in caplog.text


@pytest.mark.parametrize(
    ("key", "caller", "allowed"),
    [
        (f"traces/{OWNER}/t1.jsonl.gz", OWNER, True),
        ("traces/alice2/t1.jsonl.gz", "alice", False),
        ("traces/alice/../bob/t1.jsonl.gz", "alice", False),
        ("traces/alice//t1.jsonl.gz", "alice", False),
        ("traces/alice/./t1.jsonl.gz", "alice", False),
        ("traces/alice/", "alice", False),
        ("traces//t1.jsonl.gz", "", False),
        ("traces/a/b/t1.jsonl.gz", "a/b", False),
    ],
)
def test_key_belongs_to_only_the_callers_plain_prefix(key: str, caller: str, allowed: bool) -> None:
    assert key_belongs_to(key, caller) is allowed


def test_the_lambda_entry_reads_its_configuration_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRACE_ARTIFACTS_BUCKET_NAME", raising=False)
    result = lambda_handler(event(), None)
    assert result["statusCode"] == 500
    assert json.loads(result["body"])["error"]["code"] == "INTERNAL_ERROR"


def test_an_artifact_stored_without_a_sha256_gets_a_link_without_one(deps: HandlerDeps) -> None:
    deps.s3.put_object(Bucket=BUCKET, Key=KEY, Body=ARTIFACT)  # boto3's default: CRC32 only
    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    status, body, _ = answer(deps)
    assert status == 200
    assert "checksum_sha256" not in body["data"]


@pytest.mark.parametrize(
    "malformed",
    [
        None,
        "not an event",
        [],
        {"requestContext": "a string"},
        {"requestContext": {"authorizer": ["claims"]}},
        {"pathParameters": ["t1"], "requestContext": {"authorizer": {"claims": {"sub": OWNER}}}},
        {
            "pathParameters": {"task_id": 7},
            "requestContext": {"authorizer": {"claims": {"sub": 1}}},
        },
        {"requestContext": {"requestId": ["r"], "authorizer": {"claims": {"sub": OWNER}}}},
    ],
)
def test_a_malformed_event_gets_an_answer_never_an_exception(
    deps: HandlerDeps, malformed: Any
) -> None:
    result = handle(malformed, deps)
    assert result["statusCode"] in (400, 401)
    assert json.loads(result["body"])["error"]["code"] in ("UNAUTHORIZED", "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "link", [{"N": "42"}, {"L": []}, {"SS": ["s3://a/b"]}, {"S": None}], ids=str
)
def test_a_trace_link_that_is_not_a_string_is_a_corrupt_record(
    deps: HandlerDeps, link: dict, caplog: pytest.LogCaptureFixture
) -> None:
    deps.dynamodb.put_item(TableName=TABLE, Item={"task_id": {"S": "t1"}, "user_id": {"S": OWNER}})
    original = deps.dynamodb.get_item

    def with_link(**kwargs: Any) -> dict:
        answer = original(**kwargs)
        answer["Item"]["trace_s3_uri"] = link
        return answer

    broken = HandlerDeps(
        s3=deps.s3,
        dynamodb=type("Ddb", (), {"get_item": staticmethod(with_link)})(),
        table_name=TABLE,
        bucket=BUCKET,
        now=deps.now,
    )
    with caplog.at_level(logging.ERROR):
        status, body, _ = answer(broken)
    assert (status, body["error"]["code"]) == (500, "INTERNAL_ERROR")
    assert "trace url refused: trace_s3_uri is not a string" in caplog.text


def test_a_caller_id_that_is_not_text_is_no_caller(deps: HandlerDeps) -> None:
    put_task(deps, user_id="123", uri=f"s3://{BUCKET}/{KEY}")
    status, body, _ = answer(deps, sub=123)  # type: ignore[arg-type]
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize("request_id", [123, ""])
def test_a_request_id_that_is_not_text_is_replaced_by_a_fresh_one(
    deps: HandlerDeps, request_id: Any
) -> None:
    malformed = event()
    malformed["requestContext"]["requestId"] = request_id
    result = handle(malformed, deps)
    given = result["headers"]["X-Request-Id"]
    assert str(uuid.UUID(given)) == given
    assert json.loads(result["body"])["error"]["request_id"] == given


class HeadAnswers:
    """S3 whose HEAD answers as told; presigning as real S3 does."""

    def __init__(self, real: Any, *, head: dict | None = None, error: ClientError | None = None):
        self._real, self._head, self._error = real, head, error

    def head_object(self, **_: object) -> dict:
        if self._error is not None:
            raise self._error
        return self._head or {}

    def generate_presigned_url(self, *args: Any, **kwargs: Any) -> str:
        return self._real.generate_presigned_url(*args, **kwargs)


def test_an_empty_stored_checksum_is_left_out_of_the_answer(deps: HandlerDeps) -> None:
    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    s3 = HeadAnswers(deps.s3, head={"ChecksumSHA256": ""})
    status, body, _ = answer(HandlerDeps(s3, deps.dynamodb, TABLE, BUCKET, deps.now))
    assert status == 200
    assert "checksum_sha256" not in body["data"]


@pytest.mark.parametrize(
    ("code", "http_status", "answered"),
    [
        ("NoSuchKey", 400, 404),
        ("Unusual", 404, 404),
        ("InternalError", 500, 500),
        ("403", 403, 500),
    ],
)
def test_a_trace_is_missing_when_s3_says_so_by_code_or_status(
    deps: HandlerDeps, code: str, http_status: int, answered: int
) -> None:
    put_task(deps, uri=f"s3://{BUCKET}/{KEY}")
    error = ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": http_status}},
        "HeadObject",
    )
    s3 = HeadAnswers(deps.s3, error=error)
    status, _, _ = answer(HandlerDeps(s3, deps.dynamodb, TABLE, BUCKET, deps.now))
    assert status == answered


@pytest.mark.parametrize(
    ("environ", "region"),
    [
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-east-2"}, "us-east-2"),
    ],
)
def test_the_function_takes_its_region_from_the_lambda_environment(
    environ: dict[str, str], region: str
) -> None:
    names = {"TRACE_ARTIFACTS_BUCKET_NAME": BUCKET, "TASK_TABLE_NAME": TABLE}
    built = deps_from_environment({**names, **environ})
    assert (built.s3.meta.region_name, built.dynamodb.meta.region_name) == (region, region)
    assert (built.bucket, built.table_name) == (BUCKET, TABLE)


def test_warm_invocations_reuse_the_clients_of_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_ARTIFACTS_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("TASK_TABLE_NAME", TABLE)
    get_trace_url._deps_of_this_process.cache_clear()
    try:
        assert get_trace_url._deps_of_this_process() is get_trace_url._deps_of_this_process()
    finally:
        get_trace_url._deps_of_this_process.cache_clear()


class KeyLimited:
    """The task table as DynamoDB answers (in-process moto reads any key): a partition
    key over 2,048 bytes is a ValidationException."""

    def __init__(self, dynamodb: Any) -> None:
        self._ddb = dynamodb

    def get_item(self, **request: Any) -> Any:
        key = request["Key"]["task_id"]["S"]
        if len(key.encode("utf-8", "surrogatepass")) > 2048:
            message = (
                "One or more parameter values were invalid: Size of hashkey has exceeded "
                "the maximum size limit of2048 bytes"
            )
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": message}}, "GetItem"
            )
        return self._ddb.get_item(**request)


@pytest.mark.parametrize(
    "task_id",
    ["a" * 2049, "é" * 1025, "a" * 100_000, "lone \ud800 surrogate"],
    ids=["2049 bytes", "2050 bytes in 1025 characters", "100 KB", "not UTF-8"],
)
def test_a_task_id_no_task_can_have_is_not_found_and_pages_no_one(
    deps: HandlerDeps, task_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """DynamoDB refuses a partition key over 2,048 bytes of UTF-8: no task has such an
    id. Any caller can send one, so it must not read as the API failing."""
    as_dynamodb = HandlerDeps(deps.s3, KeyLimited(deps.dynamodb), TABLE, BUCKET, deps.now)
    with caplog.at_level(logging.DEBUG, logger="trace_infra"):
        status, body, _ = answer(as_dynamodb, task_id=task_id)
    assert (status, body["error"]) == (
        404,
        {
            "code": "TASK_NOT_FOUND",
            "message": "Task not found: a task id is at most 2048 bytes of UTF-8.",
            "request_id": "req-1",
        },
    )
    [logged] = [r for r in caplog.records if r.name.startswith("trace_infra")]
    assert logged.levelno == logging.INFO
    assert logged.exc_info is None
    assert logged.reason == "task_id cannot be a DynamoDB key: over 2048 bytes or not UTF-8"  # type: ignore[attr-defined]


def test_a_task_id_no_task_can_have_is_refused_before_the_table_is_read(
    deps: HandlerDeps,
) -> None:
    class NoReads:
        def get_item(self, **_: object) -> None:
            raise AssertionError("the table was read")

    status, _, _ = answer(HandlerDeps(deps.s3, NoReads(), TABLE, BUCKET), task_id="x" * 2049)
    assert status == 404


@pytest.mark.parametrize("task_id", ["a" * 2048, "é" * 1024], ids=["ascii", "two-byte"])
def test_a_task_id_of_2048_bytes_is_looked_up(deps: HandlerDeps, task_id: str) -> None:
    deps.dynamodb.put_item(
        TableName=TABLE, Item={"task_id": {"S": task_id}, "user_id": {"S": OWNER}}
    )
    status, body, _ = answer(deps, task_id=task_id)
    assert (status, body["error"]["code"]) == (404, "TRACE_NOT_AVAILABLE")  # found, no trace
