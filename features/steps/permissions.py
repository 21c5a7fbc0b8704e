"""What each layer's role lets it do: roles changed for a scenario, and calls refused."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pytest_bdd import given, parsers, then, when

from testkit.conformance.phrasebook import Phrasebook
from testkit.lambda_.local_lambda import LocalLambda
from testkit.scene import Scene
from testkit.settings import Settings, needs_local_stack
from testkit.stack.resources import Resources
from testkit.stack.session import Stack
from trace_infra.definitions import trace_object_key

# The reason the function's error record gives, by the name the phrasebook gives it.
STORAGE_REFUSED_CHECK = "the trace storage refused to let it check the trace"


@given(parsers.parse("the trace API's role has lost its read access to the trace storage"))
def api_loses_read_access(stack: Stack, request: pytest.FixtureRequest) -> None:
    with needs_local_stack():
        request.addfinalizer(stack.revoke("trace API", "s3:GetObject"))


@given(parsers.parse("the agent runtime's role has lost its write access to the trace storage"))
def agent_loses_write_access(
    stack: Stack, scene: Scene, resources: Resources, request: pytest.FixtureRequest
) -> None:
    with needs_local_stack():
        request.addfinalizer(stack.revoke("agent runtime", "s3:PutObject"))
    scene.stored_before = resources.stored_keys()


@then("the agent logged an error: its role is likely missing s3:PutObject on the trace storage")
def agent_logged_missing_put(
    scene: Scene, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = scene.current_task().task_id
    key = trace_object_key(scene.current_task().owner.user.sub, task_id)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"trace upload denied for task {task_id} (s3://{resources.bucket}/{key}): An error "
        "occurred (AccessDenied) when calling the PutObject operation: Access Denied. The "
        "agent runtime role is likely missing s3:PutObject on the trace bucket; check its "
        "IAM policy."
    ]


@then("the trace API logged an error: the trace storage refused to let it check the trace")
def api_logged_refused_check(scene: Scene, function: LocalLambda, phrasebook: Phrasebook) -> None:
    task_id = scene.current_task().task_id
    errors = [
        fields
        for fields in map(_fields, function.log_records())
        if fields.get("task_id") == task_id and fields.get("level") == "ERROR"
    ]
    assert len(errors) == 1, f"{len(errors)} error records of the task in the function's log"
    field = Settings.current().function.log_reason
    assert field in errors[0], (
        f"the error record has no {field!r} field to say why (its fields: "
        f"{', '.join(sorted(errors[0]))}); a profile names the field its handler uses"
    )
    phrasebook.judge(STORAGE_REFUSED_CHECK, str(errors[0][field]), task=task_id)


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    """A log record's fields, with those of a JSON object it logged as its message (as
    ``console.error(JSON.stringify({...}))`` or ``console.error({...})`` logs them)."""
    message = record.get("message")
    if isinstance(message, str) and message.startswith("{"):
        with contextlib.suppress(ValueError):
            message = json.loads(message)
    if isinstance(message, dict):
        return {**record, **message, "level": record.get("level")}
    return record


@when("the agent runtime tries to store a file outside the trace prefix", target_fixture="refusal")
def agent_stores_outside_prefix(scene: Scene, resources: Resources) -> ClientError | None:
    scene.stored_before = resources.stored_keys()
    try:
        resources.agent.s3.put_object(
            Bucket=resources.bucket, Key=f"elsewhere/{uuid.uuid4().hex}.jsonl.gz", Body=b"\x1f\x8b"
        )
    except ClientError as refused:
        return refused
    return None


@then("the trace storage refuses it")
def storage_refuses(refusal: ClientError | None) -> None:
    assert refusal is not None, "the trace storage accepted it"
    assert refusal.response["Error"]["Code"] == "AccessDenied"
