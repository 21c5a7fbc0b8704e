"""The Node.js bridge: a handler module of another team's, run as Lambda's Node.js
runtime would run it, behind the same local Runtime API as this project's handler."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from trace_harness.function_code import node_handler
from trace_harness.local_lambda import InvocationFailed, LocalLambda
from trace_infra.definitions import GET_TRACE_URL, FunctionDefinition

EVENT = {
    "resource": "/tasks/{task_id}/trace",
    "path": "/tasks/t-1/trace",
    "httpMethod": "GET",
    "pathParameters": {"task_id": "t-1"},
    "requestContext": {"requestId": "api-1", "authorizer": {"claims": {"sub": "user-a"}}},
}

# A handler written for these tests: it answers with what it was given.
ECHO_ESM = """
export const handler = async (event, context) => {
  console.log("asked for %s", event.pathParameters.task_id);
  console.error("a refusal", { reason: "none" });
  return {
    statusCode: 200,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      path: event.path,
      requestId: context.awsRequestId,
      arn: context.invokedFunctionArn,
      functionName: context.functionName,
      memory: context.memoryLimitInMB,
      remaining: context.getRemainingTimeInMillis(),
      bucket: process.env.TRACE_ARTIFACTS_BUCKET_NAME,
      shell: process.env.SHELL_ONLY ?? null,
      root: process.env.LAMBDA_TASK_ROOT,
    }),
    isBase64Encoded: false,
  };
};
"""


@contextmanager
def running(
    tmp_path: Path,
    source: str,
    *,
    name: str = "handler.mjs",
    export: str = "handler",
    function: FunctionDefinition = GET_TRACE_URL,
) -> Iterator[LocalLambda]:
    file = tmp_path / name
    file.write_text(source, encoding="utf-8")
    local = LocalLambda(
        function,
        {"TRACE_ARTIFACTS_BUCKET_NAME": "the-bucket", "AWS_REGION": "eu-west-1"},
        name="GetTraceUrl",
        code=node_handler(file, export),
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


def body_of(result: dict[str, Any]) -> dict[str, Any]:
    assert result["statusCode"] == 200
    return dict(json.loads(result["body"]))


def test_the_handler_gets_the_proxy_event_a_lambda_context_and_only_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL_ONLY", "of the shell running the suite")
    with running(tmp_path, ECHO_ESM) as local:
        first, second = body_of(local.invoke(EVENT)), body_of(local.invoke(EVENT))

    assert first["path"] == "/tasks/t-1/trace"
    assert first["requestId"] != second["requestId"]
    assert first["arn"] == "arn:aws:lambda:eu-west-1:000000000000:function:GetTraceUrl"
    assert first["functionName"] == "GetTraceUrl"
    assert first["memory"] == str(GET_TRACE_URL.memory_mb)
    assert 0 < first["remaining"] <= GET_TRACE_URL.timeout_seconds * 1000
    assert first["bucket"] == "the-bucket"
    assert first["shell"] is None
    assert first["root"] == str(tmp_path.resolve())


def test_console_output_is_the_log_stream_in_the_functions_json_format(tmp_path: Path) -> None:
    with running(tmp_path, ECHO_ESM) as local:
        request_id = body_of(local.invoke(EVENT))["requestId"]
        records = local.log_records()

    assert [(r["level"], r["message"], r["requestId"]) for r in records] == [
        ("INFO", "asked for t-1", request_id),
        ("ERROR", "a refusal { reason: 'none' }", request_id),
    ]
    assert all(r["timestamp"].endswith("Z") for r in records)


def test_records_below_the_functions_log_level_are_dropped(tmp_path: Path) -> None:
    warn = dataclasses.replace(GET_TRACE_URL, application_log_level="WARN")
    with running(tmp_path, ECHO_ESM, function=warn) as local:
        local.invoke(EVENT)
        levels = [record["level"] for record in local.log_records()]
    assert levels == ["ERROR"]


def test_in_the_text_format_a_line_carries_time_request_level_and_message(
    tmp_path: Path,
) -> None:
    text = dataclasses.replace(GET_TRACE_URL, log_format="Text")
    with running(tmp_path, ECHO_ESM, function=text) as local:
        request_id = body_of(local.invoke(EVENT))["requestId"]
        lines = local.log_lines()
    fields = lines[0].split("\t")
    assert fields[1:] == [request_id, "INFO", "asked for t-1"]
    assert fields[0].endswith("Z")
    assert local.log_records() == []


def test_a_commonjs_handler_answering_through_its_callback(tmp_path: Path) -> None:
    source = (
        "exports.handle = (event, context, callback) => {\n"
        "  setTimeout(() => callback(null, { statusCode: 200, body: event.path }), 5);\n"
        "};\n"
    )
    with running(tmp_path, source, name="handler.js", export="handle") as local:
        assert local.invoke(EVENT) == {"statusCode": 200, "body": "/tasks/t-1/trace"}


def test_a_commonjs_handler_its_exports_build_at_load_time(tmp_path: Path) -> None:
    """Exports Node cannot name before running the module: found on its default."""
    source = (
        "const make = () => ({ handle: async () => ({ statusCode: 204 }) });\n"
        "module.exports = make();\n"
    )
    with running(tmp_path, source, name="handler.cjs", export="handle") as local:
        assert local.invoke(EVENT) == {"statusCode": 204}


def test_a_handler_that_returns_nothing_answers_null(tmp_path: Path) -> None:
    with running(tmp_path, "export const handler = async () => undefined;\n") as local:
        assert local.invoke(EVENT) is None


def test_a_handler_that_throws_fails_that_invocation_only(tmp_path: Path) -> None:
    source = (
        "let calls = 0;\n"
        "export const handler = async () => {\n"
        "  calls += 1;\n"
        "  if (calls === 1) throw new TypeError('no table configured');\n"
        "  return { statusCode: 200, body: String(calls) };\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        with pytest.raises(InvocationFailed) as failed:
            local.invoke(EVENT)
        assert local.invoke(EVENT) == {"statusCode": 200, "body": "2"}  # the same instance
        logged = local.log_records()
    error = json.loads(str(failed.value))
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "no table configured")
    assert logged[0]["level"] == "ERROR"
    assert "Invoke Error" in logged[0]["message"]


def test_a_callback_error_fails_the_invocation(tmp_path: Path) -> None:
    source = "exports.handle = (event, context, callback) => callback('refused');\n"
    with (
        running(tmp_path, source, name="handler.cjs", export="handle") as local,
        pytest.raises(InvocationFailed, match="refused"),
    ):
        local.invoke(EVENT)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("export const other = async () => ({});\n", "exports no function named handler"),
        ("export const handler = ;\n", "SyntaxError"),
        ("throw new Error('no config at import');\n", "no config at import"),
    ],
)
def test_a_module_that_cannot_load_fails_to_start(tmp_path: Path, source: str, says: str) -> None:
    with running(tmp_path, source) as local, pytest.raises(InvocationFailed) as failed:
        local.invoke(EVENT)
    assert str(failed.value).startswith("the function failed to start:")
    assert says in str(failed.value)


def test_a_handler_that_ends_its_process_fails_what_it_was_running(tmp_path: Path) -> None:
    exits = "export const handler = async () => process.exit(3);\n"
    with (
        running(tmp_path, exits) as local,
        pytest.raises(InvocationFailed, match="exited with status 3"),
    ):
        local.invoke(EVENT)
