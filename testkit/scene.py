"""What one scenario has seen so far, shared between its steps."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from testkit.stack.users import User
from trace_agent.pipeline import TaskOutcome


@dataclass
class Person:
    """Someone with a ``bgagent`` of their own. ``signed_in_from``: the settings of the
    session's sign-in, copied to ``home`` only when the scenario first uses them (a
    Background signs in people many scenarios never call on)."""

    name: str
    user: User
    home: Path
    id_token: str = ""
    refresh_token: str = ""
    signed_in_from: Path | None = None

    @property
    def config_dir(self) -> Path:
        if self.signed_in_from is not None:
            shutil.copytree(self.signed_in_from, self.home)  # modes too: 0700, 0600
            self.signed_in_from = None
        return self.home


@dataclass(frozen=True)
class Task:
    task_id: str
    owner: Person
    traced: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: TaskOutcome | None = None


@dataclass(frozen=True)
class CliRun:
    argv: list[str]
    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


@dataclass
class Scene:
    workdir: Path
    people: dict[str, Person] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)  # each person's latest task
    task: Task | None = None  # the task the scenario is about
    cli_env: dict[str, str] = field(default_factory=dict)  # the user's own settings
    cli: CliRun | None = None
    output: Path | None = None
    earlier_file: bytes | None = None
    stored_before: list[str] = field(default_factory=list)
    http_response: requests.Response | None = None
    trace_max_bytes: int | None = None  # the agent's cap, when the scenario sets one

    def add_task(self, task: Task) -> Task:
        self.tasks[task.owner.name] = task
        self.task = task
        return task

    def person(self, name: str) -> Person:
        return self.people[name]

    def current_task(self) -> Task:
        assert self.task is not None, "no task has run in this scenario"
        return self.task

    def last_run(self) -> CliRun:
        assert self.cli is not None, "the CLI has not run in this scenario"
        return self.cli
