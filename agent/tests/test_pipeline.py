import dataclasses
import gzip
import json
import random
import re
import tracemalloc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from trace_agent import aws_clients
from trace_agent.pipeline import TRACE_TRUNCATED, TaskCancelled, TaskOutcome, run_task
from trace_agent.task_config import InvalidTaskConfig, TaskConfig
from trace_agent.task_record import RecordTooLarge, TaskRecords
from trace_agent.trajectory import MAX_TRACE_BYTES, TrajectoryAccumulator
from trace_agent.upload import TraceStorage

EVENTS = [
    {"event": "TRAJECTORY_TURN", "turn": 1},
    {"event": "TRAJECTORY_RESULT", "is_error": False},
]


def submit(aws: dict, task_id: str, status: str = "RUNNING", user_id: str = "user-a") -> None:
    aws["dynamodb"].put_item(
        TableName=aws["table"],
        Item={"task_id": {"S": task_id}, "user_id": {"S": user_id}, "status": {"S": status}},
    )


def record(aws: dict, task_id: str) -> dict[str, str]:
    item = aws["dynamodb"].get_item(TableName=aws["table"], Key={"task_id": {"S": task_id}})
    return {k: next(iter(v.values())) for k, v in item["Item"].items()}


def records(aws: dict) -> TaskRecords:
    return TaskRecords(aws["table"], aws["dynamodb"])


def storage(aws: dict) -> TraceStorage:
    return TraceStorage(aws["bucket"], aws["s3"])


def run_traced(aws: dict, events: Iterable[dict[str, Any]]) -> TaskOutcome:
    """Task t1 of user-a, with trace on, run to its end against the table and bucket."""
    return run_task(
        TaskConfig("t1", "user-a", trace=True), events, records=records(aws), traces=storage(aws)
    )


def test_a_traced_task_ends_with_its_trace_linked_in_the_terminal_write(aws: dict) -> None:
    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True), EVENTS, records=records(aws), traces=storage(aws)
    )

    stored = record(aws, "t1")
    assert stored["status"] == "COMPLETED"
    assert stored["trace_s3_uri"] == f"s3://{aws['bucket']}/traces/user-a/t1.jsonl.gz"
    assert stored["status_created_at"].startswith("COMPLETED#")
    assert stored["status_created_at"] == f"COMPLETED#{stored['completed_at']}"
    assert outcome.trace_linked


def test_the_terminal_time_sorts_as_text_utc_to_the_millisecond(aws: dict) -> None:
    """``status_created_at`` is the sort key of UserStatusIndex: the time must sort as
    text, so it is always UTC, zero-padded, with milliseconds and a Z."""
    submit(aws, "t1")
    before = datetime.now(UTC)
    run_task(TaskConfig("t1", "user-a"), EVENTS, records=records(aws), traces=storage(aws))
    completed = record(aws, "t1")["completed_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", completed), completed
    parsed = datetime.fromisoformat(completed.replace("Z", "+00:00"))
    # UTC, not local time: within minutes of now (a clock step cannot break it).
    assert before - timedelta(minutes=5) <= parsed <= datetime.now(UTC) + timedelta(minutes=5)


def test_an_untraced_task_uploads_nothing(aws: dict) -> None:
    submit(aws, "t1")
    run_task(
        TaskConfig("t1", "user-a", trace=False), EVENTS, records=records(aws), traces=storage(aws)
    )
    assert "trace_s3_uri" not in record(aws, "t1")
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"])["KeyCount"] == 0


def test_an_untraced_task_reports_no_trace_linked(aws: dict) -> None:
    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a"), EVENTS, records=records(aws), traces=storage(aws)
    )
    assert (outcome.status_written, outcome.trace_s3_uri, outcome.trace_linked) == (
        True,
        None,
        False,
    )


def test_a_task_is_untraced_unless_it_asks_and_its_configuration_cannot_change() -> None:
    config = TaskConfig("t1", "user-a")
    assert config.trace is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.user_id = ""  # type: ignore[misc]


class ExplodingUploads:
    def upload(self, task_id: str, user_id: str, body: bytes) -> str | None:
        raise RuntimeError("storage client bug")


def test_a_trace_store_that_raises_never_fails_the_task(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=records(aws),
        traces=ExplodingUploads(),
    )
    assert (outcome.status, outcome.trace_s3_uri, record(aws, "t1")["status"]) == (
        "COMPLETED",
        None,
        "COMPLETED",
    )
    assert "trace dump/upload failed for task t1" in caplog.text


class LinkFails(TaskRecords):
    def link_trace(self, task_id: str, trace_s3_uri: str) -> bool:
        raise ConnectionError("DynamoDB went away")


def test_a_link_that_raises_on_the_cancel_path_is_logged_not_raised(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    submit(aws, "t1", status="CANCELLED")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        cancelled_run(),
        records=LinkFails(aws["table"], aws["dynamodb"]),
        traces=storage(aws),
    )
    assert (outcome.status, outcome.trace_linked) == ("CANCELLED", False)
    assert outcome.trace_s3_uri is not None
    assert "could not link trace" in caplog.text


def test_an_error_result_ends_the_task_failed_with_its_trace(aws: dict) -> None:
    submit(aws, "t1")
    events = [{"event": "TRAJECTORY_RESULT", "is_error": True}]
    run_task(
        TaskConfig("t1", "user-a", trace=True), events, records=records(aws), traces=storage(aws)
    )
    assert record(aws, "t1")["status"] == "FAILED"
    assert "trace_s3_uri" in record(aws, "t1")


def test_losing_the_terminal_write_to_a_cancel_self_heals_the_link(aws: dict) -> None:
    submit(aws, "t1", status="CANCELLED")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True), EVENTS, records=records(aws), traces=storage(aws)
    )

    stored = record(aws, "t1")
    assert stored["status"] == "CANCELLED"  # the cancel stands
    assert stored["trace_s3_uri"].endswith("traces/user-a/t1.jsonl.gz")
    assert not outcome.status_written
    assert outcome.trace_linked


def test_self_heal_never_overwrites_an_existing_link(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    submit(aws, "t1", status="CANCELLED")
    aws["dynamodb"].update_item(
        TableName=aws["table"],
        Key={"task_id": {"S": "t1"}},
        UpdateExpression="SET trace_s3_uri = :u",
        ExpressionAttributeValues={":u": {"S": "s3://b/earlier"}},
    )
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True), EVENTS, records=records(aws), traces=storage(aws)
    )
    assert record(aws, "t1")["trace_s3_uri"] == "s3://b/earlier"
    assert not outcome.trace_linked
    assert "trace for task t1 not linked: record not terminal or already linked" in caplog.text


def crashing_run() -> Iterator[dict[str, Any]]:
    yield {"event": "TRAJECTORY_TURN", "turn": 1}
    raise RuntimeError("model API exploded")


def test_a_crash_writes_failed_with_the_trace_and_reraises_its_own_exception(aws: dict) -> None:
    submit(aws, "t1")
    with pytest.raises(RuntimeError, match="model API exploded"):
        run_traced(aws, crashing_run())
    stored = record(aws, "t1")
    assert stored["status"] == "FAILED"
    assert "trace_s3_uri" in stored


def test_a_crash_is_not_masked_when_the_terminal_write_fails_too(aws: dict) -> None:
    submit(aws, "t1")
    broken = TaskRecords("no-such-table", aws["dynamodb"])
    with pytest.raises(RuntimeError, match="model API exploded"):
        run_task(
            TaskConfig("t1", "user-a", trace=True),
            crashing_run(),
            records=broken,
            traces=storage(aws),
        )


def cancelled_run() -> Iterator[dict[str, Any]]:
    yield {"event": "TRAJECTORY_TURN", "turn": 1}
    raise TaskCancelled


def test_the_cancel_path_uploads_and_links_to_the_cancelled_record(aws: dict) -> None:
    submit(aws, "t1", status="CANCELLED")  # the API recorded the cancel
    outcome = run_traced(aws, cancelled_run())
    assert outcome.status == "CANCELLED"
    assert record(aws, "t1")["trace_s3_uri"].endswith("t1.jsonl.gz")
    assert outcome.trace_linked


def test_an_error_result_read_from_the_wire_ends_the_task_failed(aws: dict) -> None:
    """Events arrive deserialized: their strings are equal to the names, not the same
    objects."""
    submit(aws, "t1")
    events = json.loads('[{"event": "TRAJECTORY_RESULT", "is_error": true}]')
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True), events, records=records(aws), traces=storage(aws)
    )
    assert (outcome.status, record(aws, "t1")["status"]) == ("FAILED", "FAILED")


def test_a_failed_upload_still_reaches_a_terminal_status(aws: dict) -> None:
    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=records(aws),
        traces=TraceStorage("bucket-that-does-not-exist", aws["s3"]),
    )
    assert record(aws, "t1")["status"] == "COMPLETED"
    assert "trace_s3_uri" not in record(aws, "t1")
    assert outcome.trace_s3_uri is None


def test_a_failing_terminal_write_does_not_raise_out_of_the_pipeline(aws: dict) -> None:
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=TaskRecords("no-such-table", aws["dynamodb"]),
        traces=storage(aws),
    )
    assert not outcome.status_written
    assert not outcome.trace_linked  # uploaded, but linked nowhere
    assert outcome.trace_s3_uri is not None


def test_truncation_is_reported_once_as_a_milestone(aws: dict) -> None:
    submit(aws, "t1")
    event = {"event": "TRAJECTORY_TURN", "pad": "x" * 40}
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True, trace_max_bytes=100),
        [event] * 4,
        records=records(aws),
        traces=storage(aws),
    )
    assert outcome.milestones == [TRACE_TRUNCATED]
    stored = aws["s3"].get_object(Bucket=aws["bucket"], Key="traces/user-a/t1.jsonl.gz")
    header = json.loads(gzip.decompress(stored["Body"].read()).splitlines()[0])
    assert (header["max_bytes"], header["accumulated_events"], header["dropped"]) == (100, 1, 3)


def test_a_first_event_over_the_cap_still_uploads_and_links_a_trace(aws: dict) -> None:
    """Not "did not run with --trace": the owner gets a trace saying what was dropped."""
    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True, trace_max_bytes=10),
        EVENTS,
        records=records(aws),
        traces=storage(aws),
    )
    assert outcome.trace_linked
    assert outcome.milestones == [TRACE_TRUNCATED]
    assert record(aws, "t1")["trace_s3_uri"].endswith("traces/user-a/t1.jsonl.gz")
    stored = aws["s3"].get_object(Bucket=aws["bucket"], Key="traces/user-a/t1.jsonl.gz")
    (header,) = [json.loads(line) for line in gzip.decompress(stored["Body"].read()).splitlines()]
    assert (header["accumulated_events"], header["dropped"]) == (0, 2)
    first = json.dumps(EVENTS[0], separators=(",", ":"))
    assert header["first_dropped"] == {"event": "TRAJECTORY_TURN", "bytes": len(first)}


def test_an_untruncated_trace_reports_no_milestone(aws: dict) -> None:
    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True), EVENTS, records=records(aws), traces=storage(aws)
    )
    assert outcome.milestones == []


def test_a_trace_keeps_50_mib_unless_the_task_sets_a_lower_cap() -> None:
    assert MAX_TRACE_BYTES == 50 * 1024 * 1024
    assert TaskConfig("t1", "user-a", trace=True).trace_max_bytes == MAX_TRACE_BYTES
    assert TrajectoryAccumulator("t1", enabled=True).max_bytes == MAX_TRACE_BYTES
    assert TaskConfig("t1", "user-a", trace=True, trace_max_bytes=1).trace_max_bytes == 1


@pytest.mark.parametrize("cap", [0, -1, True, 1.5, "1024", None])
def test_a_trace_cap_that_is_not_a_positive_number_of_bytes_is_refused(cap: Any) -> None:
    with pytest.raises(InvalidTaskConfig) as refused:
        TaskConfig("t1", "user-a", trace=True, trace_max_bytes=cap)
    assert str(refused.value) == (
        f"task t1: trace_max_bytes must be a positive number of bytes, not {cap!r}"
    )


@pytest.mark.parametrize("user_id", ["", "   "])
def test_a_traced_task_without_an_owner_is_rejected_when_configured(user_id: str) -> None:
    with pytest.raises(InvalidTaskConfig, match="no user_id"):
        TaskConfig("t1", user_id, trace=True)
    TaskConfig("t1", user_id, trace=False)  # untraced tasks do not need one here


def test_records_from_environment_reads_the_table_name(
    aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASK_TABLE_NAME", aws["table"])
    assert TaskRecords.from_environment().table_name == aws["table"]


class ThrottledDynamoDB:
    """Every write fails with ``code``; throttled, as DynamoDB answers past its retries."""

    def __init__(self, code: str = "ProvisionedThroughputExceededException") -> None:
        self.calls = 0
        self.code = code
        self.message = "no"

    def update_item(self, **_: object) -> None:
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": self.message}}, "UpdateItem")


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "ProvisionedThroughputExceededException", ""]
)
def test_only_a_failed_condition_means_the_task_had_left_the_active_states(code: str) -> None:
    """Any other error is an error, whatever its name: never read as "a cancel won"."""
    with pytest.raises(ClientError):
        TaskRecords("tasks", ThrottledDynamoDB(code)).write_terminal("t1", "COMPLETED", None)
    conditional = ThrottledDynamoDB("ConditionalCheckFailedException")
    assert TaskRecords("tasks", conditional).write_terminal("t1", "COMPLETED", None) is False


def test_a_throttled_terminal_write_is_logged_not_raised(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    throttled = ThrottledDynamoDB()
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=TaskRecords("tasks", throttled),
        traces=storage(aws),
    )
    assert throttled.calls == 1
    assert not outcome.status_written
    assert outcome.trace_s3_uri is not None  # the trace itself was stored
    assert "terminal write failed for task t1" in caplog.text


def test_a_crash_with_a_throttled_terminal_write_still_raises_the_crash(aws: dict) -> None:
    with pytest.raises(RuntimeError, match="model API exploded"):
        run_task(
            TaskConfig("t1", "user-a", trace=True),
            crashing_run(),
            records=TaskRecords("tasks", ThrottledDynamoDB()),
            traces=storage(aws),
        )


class NoRoomForTheLink:
    """The table as DynamoDB answers for a record near its 400 KB item limit: a write
    that adds the trace link is too large, one without it fits."""

    def __init__(self, dynamodb: Any) -> None:
        self._ddb = dynamodb
        self.updates: list[str] = []

    def update_item(self, **kwargs: Any) -> Any:
        self.updates.append(kwargs["UpdateExpression"])
        if "trace_s3_uri" in kwargs["UpdateExpression"]:
            message = "Item size to update has exceeded the maximum allowed size"
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": message}}, "UpdateItem"
            )
        return self._ddb.update_item(**kwargs)


def test_a_record_with_no_room_for_the_link_still_reaches_its_terminal_status(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    submit(aws, "t1")
    table = NoRoomForTheLink(aws["dynamodb"])
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=TaskRecords(aws["table"], table),
        traces=storage(aws),
    )
    stored = record(aws, "t1")
    assert stored["status"] == "COMPLETED"
    assert stored["status_created_at"] == f"COMPLETED#{stored['completed_at']}"
    assert "trace_s3_uri" not in stored
    assert (outcome.status_written, outcome.trace_linked) == (True, False)
    assert outcome.trace_s3_uri == f"s3://{aws['bucket']}/traces/user-a/t1.jsonl.gz"
    assert len(table.updates) == 2  # with the link, then without it
    assert (
        "task t1: its record has no room for the trace link (DynamoDB's 400 KB item limit); "
        f"writing its terminal status without it, the trace stays at {outcome.trace_s3_uri}"
    ) in caplog.text


def test_a_crash_with_no_room_for_the_link_still_ends_failed(aws: dict) -> None:
    submit(aws, "t1")
    with pytest.raises(RuntimeError, match="model API exploded"):
        run_task(
            TaskConfig("t1", "user-a", trace=True),
            crashing_run(),
            records=TaskRecords(aws["table"], NoRoomForTheLink(aws["dynamodb"])),
            traces=storage(aws),
        )
    assert record(aws, "t1")["status"] == "FAILED"


@pytest.mark.parametrize(
    "message",
    ["One or more parameter values were invalid: Type mismatch", ""],
)
def test_only_a_record_too_large_drops_the_link(message: str) -> None:
    """Any other refusal is an error: the write is not retried without the link."""
    refused = ThrottledDynamoDB("ValidationException")
    refused.message = message
    with pytest.raises(ClientError):
        TaskRecords("tasks", refused).write_terminal("t1", "COMPLETED", "s3://b/k")
    assert refused.calls == 1


@pytest.mark.parametrize(
    "message",
    [
        "Item size has exceeded the maximum allowed size",
        "Item size to update has exceeded the maximum allowed size",
    ],
)
def test_dynamodbs_item_size_refusals_read_as_a_record_too_large(message: str) -> None:
    refused = ThrottledDynamoDB("ValidationException")
    refused.message = message
    with pytest.raises(RecordTooLarge, match=f"task t1: {message}"):
        TaskRecords("tasks", refused).write_terminal("t1", "COMPLETED", "s3://b/k")


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationExceptionX", "Zzz"])
def test_only_a_validation_exception_reads_as_a_record_too_large(code: str) -> None:
    refused = ThrottledDynamoDB(code)
    refused.message = "Item size has exceeded the maximum allowed size"
    with pytest.raises(ClientError) as raised:
        TaskRecords("tasks", refused).write_terminal("t1", "COMPLETED", "s3://b/k")
    assert not isinstance(raised.value, RecordTooLarge)


def test_a_record_too_large_even_without_the_link_is_logged_not_raised(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    refused = ThrottledDynamoDB("ValidationException")
    refused.message = "Item size to update has exceeded the maximum allowed size"
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=TaskRecords("tasks", refused),
        traces=storage(aws),
    )
    assert refused.calls == 2  # with the link, then without
    assert (outcome.status_written, outcome.trace_linked) == (False, False)
    assert "terminal write failed for task t1" in caplog.text


def test_an_untraced_record_too_large_is_not_retried(
    aws: dict, caplog: pytest.LogCaptureFixture
) -> None:
    refused = ThrottledDynamoDB("ValidationException")
    refused.message = "Item size to update has exceeded the maximum allowed size"
    outcome = run_task(
        TaskConfig("t1", "user-a"),
        EVENTS,
        records=TaskRecords("tasks", refused),
        traces=storage(aws),
    )
    assert refused.calls == 1
    assert not outcome.status_written
    assert "no room for the trace link" not in caplog.text


def test_no_room_for_the_link_after_a_cancel_leaves_the_cancel_standing(aws: dict) -> None:
    submit(aws, "t1", status="CANCELLED")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=TaskRecords(aws["table"], NoRoomForTheLink(aws["dynamodb"])),
        traces=storage(aws),
    )
    assert record(aws, "t1")["status"] == "CANCELLED"
    assert (outcome.status_written, outcome.trace_linked) == (False, False)


def test_an_upload_that_times_out_still_ends_the_task(aws: dict) -> None:
    class SlowS3:
        def put_object(self, **_: object) -> None:
            raise ReadTimeoutError(endpoint_url="https://s3")

    submit(aws, "t1")
    outcome = run_task(
        TaskConfig("t1", "user-a", trace=True),
        EVENTS,
        records=records(aws),
        traces=TraceStorage(aws["bucket"], SlowS3()),
    )
    assert record(aws, "t1")["status"] == "COMPLETED"
    assert outcome.trace_s3_uri is None


def test_a_trace_never_changes_the_outcome_of_a_run(aws: dict) -> None:
    """An event that breaks serialization is kept marked in the trace; the task ends as
    it would have untraced."""
    nested: dict = {"event": "TRAJECTORY_TURN"}
    for _ in range(5000):
        nested = {"inner": nested}
    outcomes = []
    for task_id, traced in (("plain", False), ("traced", True)):
        submit(aws, task_id)
        run_task(
            TaskConfig(task_id, "user-a", trace=traced),
            [nested, *EVENTS],
            records=records(aws),
            traces=storage(aws),
        )
        outcomes.append(record(aws, task_id)["status"])
    assert outcomes == ["COMPLETED", "COMPLETED"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), SystemExit(3)], ids=["ctrl-c", "exit"])
def test_an_interrupted_run_reaches_a_terminal_status_then_reraises(
    aws: dict, stop: BaseException
) -> None:
    def interrupted() -> Iterator[dict[str, Any]]:
        yield {"event": "TRAJECTORY_TURN", "turn": 1}
        raise stop

    submit(aws, "t1")
    with pytest.raises(type(stop)):
        run_traced(aws, interrupted())
    stored = record(aws, "t1")
    assert stored["status"] == "FAILED"
    assert stored["trace_s3_uri"].endswith("t1.jsonl.gz")


def test_each_aws_client_is_built_once_per_process() -> None:
    assert aws_clients.client("s3") is aws_clients.client("s3")
    assert aws_clients.client("dynamodb") is not aws_clients.client("s3")


def test_the_runtimes_aws_calls_give_up_promptly() -> None:
    """Bounded connect and read waits and few attempts: a task ends even when S3 or
    DynamoDB accepts connections and never answers."""
    for service in ("s3", "dynamodb"):
        config = aws_clients.client(service).meta.config
        assert (config.connect_timeout, config.read_timeout) == (5, 20)
        assert config.retries["total_max_attempts"] == 3  # the first try and 2 retries


class AcceptingDynamoDB:
    """A task table that takes every write."""

    def update_item(self, **_: object) -> None:
        return None


class SizedUploads:
    """Takes the artifact and keeps only its size."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def upload(self, task_id: str, user_id: str, body: bytes) -> str | None:
        self.sizes.append(len(body))
        return f"s3://bucket/traces/{user_id}/{task_id}.jsonl.gz"


def test_the_terminal_step_never_holds_the_trace_and_its_artifact_whole() -> None:
    """The trace is let go as it is compressed: a task near its cap must not need the
    memory of its trace and its artifact both."""
    rng = random.Random(5)
    # Hex text compresses only about 2:1, so that the artifact weighs.
    events = [{"event": "TRAJECTORY_TURN", "text": rng.randbytes(500).hex()} for _ in range(8192)]
    uploads = SizedUploads()
    tracemalloc.start()
    try:
        held = tracemalloc.get_traced_memory()[0]
        outcome = run_task(
            TaskConfig("t1", "user-a", trace=True),
            events,
            records=TaskRecords("tasks", AcceptingDynamoDB()),
            traces=uploads,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.trace_linked
    trace = sum(len(json.dumps(event, separators=(",", ":"))) + 1 for event in events)
    [artifact] = uploads.sizes
    assert artifact > 4 * 1024 * 1024  # what holding the trace too would add to the peak
    # Consuming, the peak is the trace and about 2.5 MiB more (the blocks' growth margin,
    # a block being compressed, the artifact buffer's margin); holding the trace, the
    # whole artifact and its copy come on top of it.
    assert peak - held < trace + 4 * 1024 * 1024
