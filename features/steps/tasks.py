"""Tasks run by the agent: submitted, run to a terminal state, traced or not; and what
later happens to their record and their stored trace."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from testkit.agent_runs import agent_run
from testkit.aws.dynamodb_gate import ITEM_SIZE_LIMIT, item_size
from testkit.aws.gate_control import S3GateHandle
from testkit.scene import Person, Scene, Task
from testkit.stack.resources import Resources
from trace_agent.pipeline import TRACE_TRUNCATED, TaskCancelled
from trace_agent.task_config import InvalidTaskConfig, TaskConfig
from trace_agent.trajectory import HEADER_EVENT, UNSERIALIZABLE, TrajectoryAccumulator
from trace_infra.definitions import caller_key_prefix, trace_object_key


def new_task_id() -> str:
    return f"task-{uuid.uuid4().hex[:16]}"


def run_agent(
    resources: Resources,
    owner: Person,
    *,
    traced: bool,
    events: Any,
    recorded: list[dict] | None,
    task_id: str | None = None,
    trace_max_bytes: int | None = None,
) -> Task:
    """A task of ``owner``'s run to its end; ``events`` is the run's events, or a
    function of the task id that yields them."""
    task_id = task_id or new_task_id()
    outcome = resources.run_task(
        task_id,
        owner.user.sub,
        events(task_id) if callable(events) else events,
        trace=traced,
        trace_max_bytes=trace_max_bytes,
    )
    return Task(task_id, owner, traced, recorded if recorded is not None else events, outcome)


@given(
    parsers.parse(
        "{owner} ran a task with trace {switch}, which {ending} after {turns:d} turns of agent work"
    )
)
def finished_task(
    owner: str,
    switch: str,
    turns: int,
    scene: Scene,
    resources: Resources,
    ending: str = "finished",
) -> None:
    assert switch in ("on", "off"), f"trace is 'on' or 'off', not {switch!r}"
    assert ending in ("finished", "failed"), f"a run 'finished' or 'failed', not {ending!r}"
    events = agent_run(turns, failed=ending == "failed")
    scene.add_task(
        run_agent(
            resources,
            scene.person(owner),
            traced=switch == "on",
            events=events,
            recorded=events,
            trace_max_bytes=scene.trace_max_bytes,
        )
    )


# Values an agent's run may hold that JSON cannot carry, by the words the scenarios use.
NOT_JSON = {
    "a number that is no number": float("nan"),
    "text that is not valid Unicode": "caf\udce9",
    "a point in time": datetime(2026, 12, 3, 11, 0, tzinfo=UTC),
    "raw bytes": b"\x89PNG\r\n",
}
NOT_JSON_FIELD = "observed"  # where the second turn holds it


@given(
    parsers.parse(
        "{owner} ran a task with trace on, whose agent recorded {value} in its second turn"
    )
)
def task_with_value_json_cannot_carry(
    owner: str, value: str, scene: Scene, resources: Resources
) -> None:
    events = agent_run(3)
    second_turn = next(e for e in events if e["event"] == "TRAJECTORY_TURN" and e["turn"] == 2)
    second_turn[NOT_JSON_FIELD] = NOT_JSON[value]
    scene.add_task(
        run_agent(resources, scene.person(owner), traced=True, events=events, recorded=events)
    )


def _downloaded_lines(scene: Scene) -> list[dict[str, Any]]:
    """The trace the owner's download printed, as a strict JSON reader takes it: UTF-8
    only, no NaN or Infinity."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in the trace is not JSON")

    text = scene.last_run().stdout.decode("utf-8", errors="strict")
    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


@then(
    parsers.re(
        r"(?:she|he) reads every event of the task in order, (?P<value>.+) marked as an? "
        r"(?P<kind>\S+) JSON could not carry"
    )
)
def reads_events_with_value_marked(value: str, kind: str, scene: Scene) -> None:
    expected = []
    for event in scene.current_task().events:
        if NOT_JSON_FIELD in event:
            shown = {UNSERIALIZABLE: kind, "repr": repr(NOT_JSON[value])}
            event = {**event, NOT_JSON_FIELD: shown}
        expected.append(event)
    assert _downloaded_lines(scene)[1:] == expected


@then(parsers.parse("the summary counts {count:d} value JSON could not carry"))
@then(parsers.parse("the summary counts {count:d} values JSON could not carry"))
def summary_counts_values_not_json(count: int, scene: Scene) -> None:
    header = _downloaded_lines(scene)[0]
    assert header["event"] == HEADER_EVENT
    assert header["unserializable_values"] == count
    assert header["dropped"] == 0


@given(parsers.parse("the agent keeps at most {kib:d} KiB of each task's trace"))
def trace_cap(kib: int, scene: Scene) -> None:
    scene.trace_max_bytes = kib * 1024


@given(
    parsers.parse(
        "{owner} ran a task with trace on, whose first event alone is larger than {kib:d} KiB"
    )
)
def task_with_oversized_first_event(
    owner: str, kib: int, scene: Scene, resources: Resources
) -> None:
    events = agent_run(2)
    events[0]["content"][0]["text"] += "x" * (kib * 1024)
    scene.add_task(
        run_agent(
            resources,
            scene.person(owner),
            traced=True,
            events=events,
            recorded=events,
            trace_max_bytes=scene.trace_max_bytes,
        )
    )


@then("the summary names the task's first event as the first one dropped, with its size")
def summary_names_first_dropped(scene: Scene) -> None:
    first = scene.current_task().events[0]
    measure = TrajectoryAccumulator("measure", enabled=True)  # the agent's own measure
    measure.record(first)
    header = _downloaded_lines(scene)[0]
    assert header["first_dropped"] == {"event": first["event"], "bytes": measure.accumulated_bytes}


@then("the task reported, once, that its trace was truncated")
def reported_truncated(scene: Scene) -> None:
    outcome = scene.current_task().outcome
    assert outcome is not None
    assert outcome.milestones == [TRACE_TRUNCATED]


@given(
    parsers.parse("{owner} ran a task with trace on, which was cancelled while the agent worked")
)
def cancelled_while_running(owner: str, scene: Scene, resources: Resources) -> None:
    events = agent_run(3)[:3]  # the run got this far

    def run_until_cancelled(task_id: str) -> Iterator[dict[str, Any]]:
        yield from events
        resources.cancel_task(task_id)  # the owner cancels through the API...
        raise TaskCancelled  # ...and the agent notices

    scene.add_task(
        run_agent(
            resources, scene.person(owner), traced=True, events=run_until_cancelled, recorded=events
        )
    )


@given(
    parsers.parse(
        "{owner} ran a task with trace on, which was cancelled just as the agent recorded its end"
    )
)
def cancelled_at_the_end(owner: str, scene: Scene, resources: Resources) -> None:
    events = agent_run(2)

    def run_then_lose_the_race(task_id: str) -> Iterator[dict[str, Any]]:
        yield from events
        resources.cancel_task(task_id)  # lands between the run's end and the terminal write

    scene.add_task(
        run_agent(
            resources,
            scene.person(owner),
            traced=True,
            events=run_then_lose_the_race,
            recorded=events,
        )
    )


# Room a grown record leaves: enough for the terminal status and its time (about 40
# bytes), too little for the trace's link (its name and an s3:// URI, about 100).
ROOM_LEFT = 60


@given(
    parsers.parse(
        "{owner} ran a task with trace on, whose record had grown too large to also hold "
        "the trace's link"
    )
)
def task_record_without_room_for_link(owner: str, scene: Scene, resources: Resources) -> None:
    events = agent_run(2)
    person = scene.person(owner)

    def run_with_grown_record(task_id: str) -> Iterator[dict[str, Any]]:
        link = f"s3://{resources.bucket}/{trace_object_key(person.user.sub, task_id)}"
        assert len("trace_s3_uri") + len(link) > ROOM_LEFT
        _grow_record(resources, task_id, ITEM_SIZE_LIMIT - ROOM_LEFT)
        yield from events

    scene.add_task(
        run_agent(resources, person, traced=True, events=run_with_grown_record, recorded=events)
    )


def _grow_record(resources: Resources, task_id: str, size: int) -> None:
    """The running task's record, grown (as the platform's own writes could grow it) to
    ``size`` bytes by DynamoDB's measure. A list of empty lists carries part of it:
    DynamoDB counts 4 bytes for each, moto nothing, so moto holds what DynamoDB measures
    near 400 KB under its own 405,000-byte limit. Few elements, as moto is slow to
    read each one back (a list of numbers would need twice as many)."""
    dynamodb = resources.aws.client("dynamodb")
    key = {"task_id": {"S": task_id}}
    item = dynamodb.get_item(TableName=resources.table, Key=key, ConsistentRead=True)["Item"]
    item["notes"] = {"L": [{"L": []}] * 1200}
    item["context"] = {"S": "c" * (size - item_size(item) - len("context"))}
    assert item_size(item) == size
    dynamodb.put_item(TableName=resources.table, Item=item)


class AgentCrash(RuntimeError):
    """What the agent's run raised."""


@given(parsers.parse("{owner} ran a task with trace on, whose agent crashed after {turns:d} turns"))
def crashed_task(owner: str, turns: int, scene: Scene, resources: Resources) -> None:
    events = agent_run(turns)[: 2 * turns]  # the turns, and no result

    def run_then_crash(_: str) -> Iterator[dict[str, Any]]:
        yield from events
        raise AgentCrash("model API went away")

    task_id = new_task_id()
    with pytest.raises(AgentCrash, match="model API went away"):  # the crash is not masked
        run_agent(
            resources,
            scene.person(owner),
            traced=True,
            events=run_then_crash,
            recorded=events,
            task_id=task_id,
        )
    scene.add_task(Task(task_id, scene.person(owner), True, events))


@given("the trace storage refuses the agent's uploads")
def storage_refuses_uploads(gate: S3GateHandle) -> None:
    gate.deny_uploads = True


# --- the outline's situations: what became of the task Alice asks about ------------------


@given("the task does not exist")
def task_does_not_exist(scene: Scene) -> None:
    scene.task = Task(new_task_id(), scene.current_task().owner, traced=True)


@given("the task id is blank")
def task_id_blank(scene: Scene) -> None:
    scene.task = Task("   ", scene.current_task().owner, traced=True)


@given(parsers.parse("the task belongs to {owner}"))
def task_belongs_to(owner: str, scene: Scene, resources: Resources) -> None:
    finished_task(owner, "on", 2, scene, resources)


@given("the task ran without trace")
def task_ran_without_trace(scene: Scene, resources: Resources) -> None:
    finished_task(scene.current_task().owner.name, "off", 2, scene, resources)


@given("the task's record holds a malformed trace location")
def record_malformed(scene: Scene, resources: Resources) -> None:
    task = scene.current_task()
    resources.relink_trace(
        task.task_id, f"https://{resources.bucket}/traces/{task.owner.user.sub}/x"
    )


@given("the task's record points at a bucket the platform does not own")
def record_foreign_bucket(scene: Scene, resources: Resources) -> None:
    task = scene.current_task()
    key = trace_object_key(task.owner.user.sub, task.task_id)
    resources.relink_trace(task.task_id, f"s3://someone-elses-bucket/{key}")


@given(parsers.parse("the task's record points at a trace under {other}'s prefix"))
def record_other_prefix(other: str, scene: Scene, resources: Resources) -> None:
    task = scene.current_task()
    key = trace_object_key(scene.person(other).user.sub, task.task_id)
    resources.relink_trace(task.task_id, f"s3://{resources.bucket}/{key}")


@given("the task's trace has since expired from storage")
def trace_expired(scene: Scene, resources: Resources) -> None:
    resources.delete_stored_trace(scene.current_task().task_id)


@given("the trace storage refuses to let the API check the trace")
def storage_refuses_checks(resources: Resources, request: pytest.FixtureRequest) -> None:
    request.addfinalizer(resources.deny_all_bucket_access())


@given("an older agent stored the task's trace marked with a gzip content encoding")
def legacy_content_encoding(scene: Scene, resources: Resources) -> None:
    resources.restore_with_content_encoding(scene.current_task().task_id, "gzip")


# --- a traced task without an owner --------------------------------------------------------


@when("a task with trace on but no owner is handed to the agent", target_fixture="refusal")
def task_without_owner(scene: Scene, resources: Resources) -> InvalidTaskConfig | None:
    scene.stored_before = resources.stored_keys()
    try:
        TaskConfig(task_id=new_task_id(), user_id="", trace=True)
    except InvalidTaskConfig as refused:
        return refused
    return None


@then("the agent refuses the task before doing any work")
def agent_refused(refusal: InvalidTaskConfig | None) -> None:
    assert refusal is not None
    assert "no user_id" in str(refusal)


# What others sharing the stack may store meanwhile: a trace of an owner the scenario
# does not know (a Cognito sub is a UUID), or a suite session's lease.
_OTHERS = re.compile(r"traces/[0-9a-f-]{36}/[^/]+\.jsonl\.gz|bgsuite-leases/[^/]+\.json")


@then("nothing is stored in the trace storage")
def nothing_stored(scene: Scene, resources: Resources) -> None:
    ours = tuple(caller_key_prefix(person.user.sub) for person in scene.people.values())
    added = sorted(set(resources.stored_keys()) - set(scene.stored_before))
    assert [key for key in added if not _OTHERS.fullmatch(key) or key.startswith(ours)] == []
    assert not [key for key in scene.stored_before if key.startswith("traces//")]


@then(parsers.parse("the task stays {status}"))
@then(parsers.parse("the task still ended as {status}"))
def task_status(status: str, scene: Scene, resources: Resources) -> None:
    record = resources.task_record(scene.current_task().task_id, "status")
    assert record["status"] == status.upper()


@given("the task id is longer than any task's id can be")
def task_id_too_long(scene: Scene) -> None:
    # DynamoDB holds a partition key of at most 2,048 bytes of UTF-8.
    task_id = new_task_id()
    scene.task = Task(
        task_id + "é" * ((2049 - len(task_id)) // 2 + 1), scene.current_task().owner, traced=True
    )


@given(parsers.parse('the task id is "{task_id}"'))
def task_id_given(task_id: str, scene: Scene) -> None:
    scene.task = Task(task_id, scene.current_task().owner, traced=True)
