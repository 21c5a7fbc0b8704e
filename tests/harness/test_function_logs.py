"""The handler's logs as they reach CloudWatch: the real runtime interface client, the
log format and level the infrastructure gives the function, the records it prints."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.lambda_.local_lambda import LocalLambda
from testkit.stack.local import FUNCTION_NAME, LocalStack, function_environment
from trace_infra.definitions import GET_TRACE_URL, trace_object_key

ID_TOKEN = "eyJraWQiOiJzZWNyZXQtaWQtdG9rZW4ifQ.payload.signature"  # must never be logged


@pytest.fixture(scope="module")
def local() -> Iterator[LocalStack]:
    with LocalStack.running() as running:
        yield running


def proxy_event(task_id: str, caller: str) -> dict[str, Any]:
    return {
        "resource": "/tasks/{task_id}/trace",
        "path": f"/tasks/{task_id}/trace",
        "httpMethod": "GET",
        "headers": {"Authorization": ID_TOKEN},
        "pathParameters": {"task_id": task_id},
        "requestContext": {
            "requestId": f"api-{uuid.uuid4()}",
            "authorizer": {"claims": {"sub": caller}},
        },
    }


def records_of(function: LocalLambda, request_id: str) -> list[dict[str, Any]]:
    return [r for r in function.log_records() if r.get("request_id") == request_id]


def test_a_refusal_is_an_info_record_with_task_request_and_reason(local: LocalStack) -> None:
    event = proxy_event("no-such-task", "user-a")
    result = local.function.invoke(event)

    assert result["statusCode"] == 404
    [record] = records_of(local.function, event["requestContext"]["requestId"])
    assert record["level"] == "INFO"
    assert record["logger"] == "trace_infra.handlers.get_trace_url"
    assert record["message"] == "trace url refused: TASK_NOT_FOUND"
    assert record["task_id"] == "no-such-task"
    assert record["reason"] == "TASK_NOT_FOUND"
    assert record["status"] == 404
    assert record["requestId"]  # the Lambda invocation's own id, set by the runtime
    assert ID_TOKEN not in "\n".join(local.function.log_lines())


def test_a_key_under_another_users_prefix_is_logged_as_an_error(local: LocalStack) -> None:
    task_id = f"task-{uuid.uuid4().hex[:12]}"
    local.resources.submit_task(task_id, "user-a", trace=True)
    stolen = f"s3://{local.resources.bucket}/{trace_object_key('user-b', 'their-task')}"
    local.resources.relink_trace(task_id, stolen)
    event = proxy_event(task_id, "user-a")

    result = local.function.invoke(event)

    assert result["statusCode"] == 403
    [record] = records_of(local.function, event["requestContext"]["requestId"])
    assert record["level"] == "ERROR"
    assert record["reason"] == "trace key outside the caller's prefix"
    assert record["task_id"] == task_id


def test_without_the_json_format_and_a_level_the_refusals_never_reach_the_logs(
    local: LocalStack,
) -> None:
    """Why the infrastructure sets both: the runtime's defaults drop INFO records."""
    text_default = dataclasses.replace(GET_TRACE_URL, log_format="Text", application_log_level="")
    function = LocalLambda(
        text_default,
        function_environment(local.endpoints, local.names, local.function_role),
        name=FUNCTION_NAME,
    )
    function.start()
    try:
        assert function.invoke(proxy_event("no-such-task", "user-a"))["statusCode"] == 404
        assert not [line for line in function.log_lines() if "trace url refused" in line]
    finally:
        function.stop()
