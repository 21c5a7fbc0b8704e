"""The agent's side of another team's agent, in a process of its own
(``testkit.conformance.agent`` starts it): reads what to run, a line on stdin for each
task, calls the named callables, and answers on a line of its own. It imports only
what the agent's code imports.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

COMPLETED = "COMPLETED"
ANSWER = "trace-suite-agent-answer:"  # leads the line the process answers on


class Broke(Exception):
    """The agent's code could not be loaded, or broke the contract."""


def named_callable(named: str) -> Callable[..., Any]:
    """``module:attribute`` (the attribute may be dotted, as ``Class.method``)."""
    module, _, attribute = named.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as err:  # an import runs their code: any error is theirs
        raise Broke(f"the agent's {named} cannot be loaded: {err!r}") from None
    if not callable(found):
        raise Broke(f"the agent's {named} is not callable")
    return found


def _call(named: str, returns: tuple[type, ...], **arguments: Any) -> Any:
    function = named_callable(named)
    try:
        answer = function(**arguments)
    except Exception as err:  # the contract says the agent's side fails open
        raise Broke(f"the agent's {named} raised {err!r}") from None
    if not isinstance(answer, returns):
        raise Broke(f"the agent's {named} returned a {type(answer).__name__}")
    return answer


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    dump, upload, finish = request["agent"]
    if request.get("check"):
        for named in filter(None, (dump, upload, finish)):
            named_callable(named)
        return {}
    task_id, user_id = request["task_id"], request["user_id"]
    uri = None
    if request["trace"]:
        body = _call(dump, (bytes, type(None)), task_id=task_id, events=request["events"])
        if body:
            uri = _call(upload, (str, type(None)), body=body, task_id=task_id, user_id=user_id)
    if finish:
        _call(finish, (object,), task_id=task_id, status=COMPLETED, trace_s3_uri=uri)
    return {"uri": uri}


def main() -> None:
    """One request a line, one answer a line, until stdin ends."""
    answering = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the agent's code prints is its log, not its answer
    for line in sys.stdin:
        try:
            answer = _serve(json.loads(line))
        except Broke as broke:
            answer = {"error": str(broke)}
        answering.write(ANSWER + json.dumps(answer) + "\n")
        answering.flush()


if __name__ == "__main__":
    main()
