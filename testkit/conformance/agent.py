"""Another team's agent, named by import path in a profile's ``[agent]``: its dump and
its upload, called as the agent runtime calls them (with the runtime role's credentials
and the names its environment gives), then its task's terminal write, which links the
trace on the task record.

- ``dump(task_id=..., events=...)`` returns the trace's gzipped JSON Lines, or None;
- ``upload(body=..., task_id=..., user_id=...)`` stores it and returns its ``s3://`` URI,
  or None (fail-open);
- ``finish(task_id=..., status=..., trace_s3_uri=...)``, where the profile names one,
  is the agent's own terminal write; otherwise this project's stands in for it.

Arguments go by name: a function ``upload_trace_to_s3(body, task_id, user_id)`` and one
``upload_trace_to_s3(task_id, user_id, body)`` are both called right.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3

from testkit.conformance.profile import AgentProfile
from trace_agent.pipeline import TaskOutcome
from trace_agent.task_record import TaskRecords

COMPLETED = "COMPLETED"


class AgentCodeError(AssertionError):
    """The agent's code could not be loaded, or raised where the contract says it may not."""


def named_callable(named: str) -> Callable[..., Any]:
    """``module:attribute`` (the attribute may be dotted, as ``Class.method``)."""
    module, _, attribute = named.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as err:  # an import runs their code: any error is theirs
        raise AgentCodeError(f"the agent's {named} cannot be loaded: {err!r}") from None
    if not callable(found):
        raise AgentCodeError(f"the agent's {named} is not callable")
    return found


@contextmanager
def agent_runtime(environment: Mapping[str, str]) -> Iterator[None]:
    """The agent runtime's process environment for the length of a call, and a fresh
    default boto3 session, which reads its credentials from it (a session made earlier
    keeps the credentials it found then)."""
    before = dict(os.environ)
    default = boto3.DEFAULT_SESSION
    os.environ.update(environment)
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)
        boto3.DEFAULT_SESSION = default


def run_other_agent(
    agent: AgentProfile,
    task_id: str,
    user_id: str,
    events: Iterable[Mapping[str, Any]],
    *,
    trace: bool,
    environment: Mapping[str, str],
    records: TaskRecords,
) -> TaskOutcome:
    """A finished task of the other agent: its trace dumped and uploaded when the task
    is traced, then its terminal write with the trace's link."""
    uri: str | None = None
    with agent_runtime(environment):
        if trace:
            body = _call(agent.dump, task_id=task_id, events=list(events))
            if body is not None and not isinstance(body, bytes):
                raise AgentCodeError(f"the agent's {agent.dump} returned {type(body).__name__}")
            if body:
                uri = _call(agent.upload, body=body, task_id=task_id, user_id=user_id)
        if agent.finish:
            _call(agent.finish, task_id=task_id, status=COMPLETED, trace_s3_uri=uri)
            written = True
        else:
            written = records.write_terminal(task_id, COMPLETED, uri)
    return TaskOutcome(COMPLETED, uri, status_written=written, trace_linked=bool(uri and written))


def _call(named: str, **arguments: Any) -> Any:
    function = named_callable(named)
    try:
        return function(**arguments)
    except Exception as err:  # the contract says the agent's side fails open
        raise AgentCodeError(f"the agent's {named} raised {err!r}") from None
