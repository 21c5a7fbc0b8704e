"""What one scenario has seen so far, shared between its steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from trace_agent.pipeline import TaskOutcome
from trace_harness.identities import User


@dataclass(frozen=True)
class Person:
    name: str
    user: User
    config_dir: Path


@dataclass(frozen=True)
class Task:
    task_id: str
    owner: Person
    traced: bool
    events: list[dict[str, Any]]
    outcome: TaskOutcome


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
    task: Task | None = None
    cli: CliRun | None = None
    output: Path | None = None
    http_response: requests.Response | None = None

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
