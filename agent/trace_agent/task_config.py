"""A task's configuration, checked when it is built, before any work is paid for."""

from __future__ import annotations

from dataclasses import dataclass

from trace_agent.trajectory import MAX_TRACE_BYTES


class InvalidTaskConfig(ValueError):
    """The task cannot run as configured."""


@dataclass(frozen=True)
class TaskConfig:
    task_id: str
    user_id: str
    trace: bool = False
    # JSON bytes of events a trace keeps; later events are dropped and counted.
    trace_max_bytes: int = MAX_TRACE_BYTES

    def __post_init__(self) -> None:
        if not self.task_id:
            raise InvalidTaskConfig("a task needs a task_id")
        if isinstance(self.trace_max_bytes, bool) or not (
            isinstance(self.trace_max_bytes, int) and self.trace_max_bytes > 0
        ):
            raise InvalidTaskConfig(
                f"task {self.task_id}: trace_max_bytes must be a positive number of bytes, "
                f"not {self.trace_max_bytes!r}"
            )
        if self.trace and not self.user_id.strip():
            # Its trace would land under traces//, a prefix no caller owns.
            raise InvalidTaskConfig(
                f"task {self.task_id} asks for a trace but has no user_id to own it"
            )
