"""What one scenario has seen so far, shared between its steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from trace_agent.pipeline import TaskOutcome
from trace_harness.identities import User


@dataclass
class Person:
    name: str
    user: User
    config_dir: Path
    id_token: str = ""
    refresh_token: str = ""


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


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Scene(workdir=workdir)
