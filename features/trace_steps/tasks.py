"""Tasks run by the agent: submitted, run to a terminal state, traced or not."""

from __future__ import annotations

import uuid

from pytest_bdd import given, parsers

from trace_agent.pipeline import run_task
from trace_agent.task_config import TaskConfig
from trace_agent.task_record import TaskRecords
from trace_harness.stack import TraceStack
from trace_harness.trajectories import agent_run
from trace_steps.scene import Scene, Task


@given(
    parsers.parse(
        "{owner} ran a task with trace {switch}, which finished after {turns:d} turns of agent work"
    )
)
def finished_task(owner: str, switch: str, turns: int, scene: Scene, stack: TraceStack) -> None:
    assert switch in ("on", "off"), f"trace is 'on' or 'off', not {switch!r}"
    person = scene.person(owner)
    task_id = f"task-{uuid.uuid4().hex[:16]}"
    traced = switch == "on"
    stack.submit_task(task_id, person.user.sub, trace=traced)
    events = agent_run(turns)
    outcome = run_task(
        TaskConfig(task_id=task_id, user_id=person.user.sub, trace=traced),
        events,
        records=TaskRecords.from_environment(),
    )
    scene.task = Task(task_id, person, traced, events, outcome)
