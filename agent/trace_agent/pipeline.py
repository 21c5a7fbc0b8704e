"""The pipeline's terminal step for a task: from its trajectory events to its task record.

Running the model is not here: the pipeline receives the run's events. At every
terminal outcome (success, failure, crash, cancel) a traced task's trajectory is
dumped, uploaded and linked on the task record. Nothing in this step raises out
of the pipeline, and on the crash path the run's own exception is re-raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trace_agent.task_config import TaskConfig
from trace_agent.task_record import RecordTooLarge, TaskRecords
from trace_agent.trajectory import TrajectoryAccumulator

logger = logging.getLogger(__name__)

TRACE_TRUNCATED = "trace_truncated"


class TraceUploads(Protocol):
    """Where a traced task's trajectory goes (``trace_agent.upload.TraceStorage``)."""

    def upload(self, task_id: str, user_id: str, body: bytes) -> str | None: ...


class TaskCancelled(Exception):
    """Raised by the event source when the task was cancelled while it ran."""


@dataclass
class TaskOutcome:
    status: str
    trace_s3_uri: str | None = None
    status_written: bool = False
    trace_linked: bool = False
    milestones: list[str] = field(default_factory=list)


def run_task(
    config: TaskConfig,
    events: Iterable[Mapping[str, Any]],
    *,
    records: TaskRecords,
    traces: TraceUploads,
) -> TaskOutcome:
    """Consume the run's events and bring the task record to its terminal state.

    The runtime passes ``TaskRecords.from_environment()`` and
    ``TraceStorage.from_environment()``.
    """
    milestones: list[str] = []

    def milestone(name: str) -> None:
        milestones.append(name)
        logger.info("task %s milestone: %s", config.task_id, name)

    trajectory = TrajectoryAccumulator(
        config.task_id,
        enabled=config.trace,
        max_bytes=config.trace_max_bytes,
        on_truncated=lambda: milestone(TRACE_TRUNCATED),
    )
    status = "COMPLETED"
    try:
        for event in events:
            trajectory.record(event)
            if event.get("event") == "TRAJECTORY_RESULT" and event.get("is_error"):
                status = "FAILED"
    except TaskCancelled:
        outcome = _finish_cancelled(config, trajectory, records, traces)
    except BaseException:
        # A crash, and also SystemExit or Ctrl-C: the record reaches a terminal status
        # (never left RUNNING), then the run's own exception goes on, never masked.
        _finish(config, trajectory, "FAILED", records, traces)
        raise
    else:
        outcome = _finish(config, trajectory, status, records, traces)
    outcome.milestones = milestones
    return outcome


def _finish(
    config: TaskConfig,
    trajectory: TrajectoryAccumulator,
    status: str,
    records: TaskRecords,
    traces: TraceUploads,
) -> TaskOutcome:
    outcome = TaskOutcome(status=status, trace_s3_uri=_store_trace(config, trajectory, traces))
    try:
        outcome.status_written, outcome.trace_linked = _write_terminal(
            config.task_id, status, outcome.trace_s3_uri, records
        )
    except Exception:
        logger.exception("terminal write failed for task %s", config.task_id)
        return outcome
    if not outcome.status_written and outcome.trace_s3_uri:
        # A cancel or the reconciler finished the task first: the upload is
        # orphaned unless it is linked to the record as it now stands.
        logger.warning(
            "task %s left the active states before its terminal write; linking orphaned trace",
            config.task_id,
        )
        outcome.trace_linked = _link(config.task_id, outcome.trace_s3_uri, records)
    return outcome


def _write_terminal(
    task_id: str, status: str, uri: str | None, records: TaskRecords
) -> tuple[bool, bool]:
    """The terminal write, with the trace's link when there is one: (written, linked)."""
    try:
        written = records.write_terminal(task_id, status, uri)
    except RecordTooLarge:
        if uri is None:
            raise
        # The status matters more than the link: a task left RUNNING is never finished
        # for its owner. The trace itself stays stored.
        logger.warning(
            "task %s: its record has no room for the trace link (DynamoDB's 400 KB item "
            "limit); writing its terminal status without it, the trace stays at %s",
            task_id,
            uri,
        )
        return records.write_terminal(task_id, status, None), False
    return written, written and uri is not None


def _finish_cancelled(
    config: TaskConfig,
    trajectory: TrajectoryAccumulator,
    records: TaskRecords,
    traces: TraceUploads,
) -> TaskOutcome:
    outcome = TaskOutcome(status="CANCELLED", trace_s3_uri=_store_trace(config, trajectory, traces))
    if outcome.trace_s3_uri:
        outcome.trace_linked = _link(config.task_id, outcome.trace_s3_uri, records)
    return outcome


def _store_trace(
    config: TaskConfig, trajectory: TrajectoryAccumulator, traces: TraceUploads
) -> str | None:
    if not config.trace or not config.user_id:
        return None
    try:
        body = trajectory.dump(consume=True)  # the trace is not needed once compressed
        return traces.upload(config.task_id, config.user_id, body) if body else None
    except Exception:
        logger.exception("trace dump/upload failed for task %s", config.task_id)
        return None


def _link(task_id: str, uri: str, records: TaskRecords) -> bool:
    try:
        linked = records.link_trace(task_id, uri)
    except Exception:
        logger.exception("could not link trace %s to task %s", uri, task_id)
        return False
    if not linked:
        logger.warning(
            "trace for task %s not linked: record not terminal or already linked", task_id
        )
    return linked
