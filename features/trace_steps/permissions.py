"""What each layer's role lets it do: roles changed for a scenario, and calls refused."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from pytest_bdd import given, parsers, then, when

from trace_harness.local_lambda import LocalLambda
from trace_harness.stack import TraceStack
from trace_harness.suite import SuiteStack
from trace_harness.targets import NotOnThisTarget
from trace_steps.scene import Scene


@given(parsers.parse("the trace API's role has lost its read access to the trace storage"))
def api_loses_read_access(suite_stack: SuiteStack, request: pytest.FixtureRequest) -> None:
    try:
        request.addfinalizer(suite_stack.revoke("trace API", "s3:GetObject"))
    except NotOnThisTarget as missing:
        pytest.fail(f"this scenario needs {missing}: tag it @needs_local_stack")


@then("the trace API logged an error: the trace storage refused to let it check the trace")
def api_logged_refused_check(scene: Scene, function: LocalLambda) -> None:
    task_id = scene.current_task().task_id
    errors = [
        record
        for record in function.log_records()
        if record.get("task_id") == task_id and record.get("level") == "ERROR"
    ]
    assert [record["reason"] for record in errors] == ["HEAD of the trace failed: 403"]


@when("the agent runtime tries to store a file outside the trace prefix", target_fixture="refusal")
def agent_stores_outside_prefix(scene: Scene, stack: TraceStack) -> ClientError | None:
    scene.stored_before = stack.stored_keys()
    try:
        stack.agent.s3.put_object(
            Bucket=stack.bucket, Key=f"elsewhere/{uuid.uuid4().hex}.jsonl.gz", Body=b"\x1f\x8b"
        )
    except ClientError as refused:
        return refused
    return None


@then("the trace storage refuses it")
def storage_refuses(refusal: ClientError | None) -> None:
    assert refusal is not None, "the trace storage accepted it"
    assert refusal.response["Error"]["Code"] == "AccessDenied"
