"""A task's configuration, checked when it is built, before any work is paid for."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidTaskConfig(ValueError):
    """The task cannot run as configured."""


@dataclass(frozen=True)
class TaskConfig:
    task_id: str
    user_id: str
    trace: bool = False

    def __post_init__(self) -> None:
        if not self.task_id:
            raise InvalidTaskConfig("a task needs a task_id")
        if self.trace and not self.user_id.strip():
            # Its trace would land under traces//, a prefix no caller owns.
            raise InvalidTaskConfig(
                f"task {self.task_id} asks for a trace but has no user_id to own it"
            )
