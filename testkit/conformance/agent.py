"""Another team's agent, named by import path in a profile's ``[agent]``: its dump and
its upload, called as the agent runtime calls them, in a process of its own kept for
the session (the runtime role's credentials and the names its environment gives; each
task bounded in time; ended with all it started), then its task's terminal write,
which links the trace on the task record.

- ``dump(task_id=..., events=...)`` returns the trace's gzipped JSON Lines, or None;
- ``upload(body=..., task_id=..., user_id=...)`` stores it and returns its ``s3://`` URI,
  or None (fail-open);
- ``finish(task_id=..., status=..., trace_s3_uri=...)``, where the profile names one,
  is the agent's own terminal write; otherwise this project's stands in for it.

Arguments go by name: a function ``upload_trace_to_s3(body, task_id, user_id)`` and one
``upload_trace_to_s3(task_id, user_id, body)`` are both called right. What the agent's
code prints goes to the process's stderr; its answer comes back on a line of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from testkit.conformance.agent_process import ANSWER, COMPLETED
from testkit.conformance.profile import AgentProfile
from testkit.process_tree import end_tree, marked
from trace_agent.pipeline import TaskOutcome
from trace_agent.task_record import TaskRecords

AGENT_SECONDS = 60
_LOG_KEPT = 64 * 1024


class AgentCodeError(AssertionError):
    """The agent's code could not be loaded or run, or broke the contract (it raised, or
    answered with something else than it says it returns)."""


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
    request = {
        "agent": [agent.dump, agent.upload, agent.finish],
        "task_id": task_id,
        "user_id": user_id,
        "events": list(events) if trace else [],
        "trace": trace,
    }
    answer = _in_its_process(request, environment)
    uri = answer.get("uri")
    written = True if agent.finish else records.write_terminal(task_id, COMPLETED, uri)
    return TaskOutcome(COMPLETED, uri, status_written=written, trace_linked=bool(uri and written))


def check(agent: AgentProfile, environment: Mapping[str, str]) -> None:
    """Raises AgentCodeError, saying why in one line, unless every callable the profile
    names loads."""
    _in_its_process({"agent": [agent.dump, agent.upload, agent.finish], "check": True}, environment)


class _AgentProcess:
    """The agent's process, started on the first task and kept, as a warm runtime is:
    one request a line on its stdin, one answer a line on its stdout, each within
    AGENT_SECONDS; one that does not answer in time is ended with all it started, and
    the next task starts another."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        env, self.mark = marked(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                # This Python's path: the kit, and the agent's code as the profile finds it.
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
                **environment,
            }
        )
        # Where it runs: a folder of its own, removed with it, never the project's.
        self.folder = tempfile.mkdtemp(prefix="trace-suite-agent-")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testkit.conformance.agent_process"],
            env=env,
            cwd=self.folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.said = bytearray()  # the latest of its stderr: its log
        threading.Thread(target=self._keep_log, daemon=True).start()

    def _keep_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.said = (self.said + line)[-_LOG_KEPT:]

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            return self._broke("ended before it was asked")
        out = self.process.stdout.fileno()
        answer, deadline = bytearray(), time.monotonic() + AGENT_SECONDS
        with selectors.DefaultSelector() as watched:
            watched.register(out, selectors.EVENT_READ)
            while b"\n" not in answer:
                if not watched.select(timeout=max(0.0, deadline - time.monotonic())):
                    return self._broke(f"did not answer within {AGENT_SECONDS} s")
                chunk = os.read(out, 65536)
                if not chunk:
                    self.process.wait()
                    return self._broke(f"ended with status {self.process.returncode}")
                answer += chunk
        line = bytes(answer).decode("utf-8", "replace").splitlines()[0]
        if not line.startswith(ANSWER):
            return self._broke(f"answered {line[:200]!r}")
        told: dict[str, Any] = json.loads(line.removeprefix(ANSWER))
        if "error" in told:
            raise AgentCodeError(told["error"])
        return told

    def _broke(self, how: str) -> dict[str, Any]:
        self.stop()
        said = self.said.decode("utf-8", "replace").strip().splitlines()[-1:] or ["nothing"]
        raise AgentCodeError(f"the agent's process {how}; its log's last line: {said[0]}")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        end_tree(self.process.pid, self.mark)
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


_RUNNING: dict[tuple[tuple[str, str], ...], _AgentProcess] = {}


def _in_its_process(request: dict[str, Any], environment: Mapping[str, str]) -> dict[str, Any]:
    key = tuple(sorted(environment.items()))
    running = _RUNNING.get(key)
    if running is None or not running.alive:
        running = _RUNNING[key] = _AgentProcess(environment)
    return running.ask(request)


def stop_agents() -> None:
    """End every agent process this session started."""
    while _RUNNING:
        _RUNNING.popitem()[1].stop()
