import gzip
import json
import tracemalloc
import zlib

import pytest

from trace_agent.trajectory import HEADER_EVENT, TrajectoryAccumulator


def lines_of(artifact: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(artifact).splitlines()]


def test_dump_is_a_header_then_every_event_in_capture_order() -> None:
    trajectory = TrajectoryAccumulator("t-1", enabled=True, max_bytes=10_000)
    events = [{"event": "TRAJECTORY_TURN", "turn": i, "text": "été ✓"} for i in range(3)]
    for event in events:
        trajectory.record(event)

    header, *rest = lines_of(trajectory.dump())

    assert header == {
        "event": HEADER_EVENT,
        "task_id": "t-1",
        "accumulated_events": 3,
        "accumulated_bytes": trajectory.accumulated_bytes,
        "dropped": 0,
        "max_bytes": 10_000,
    }
    assert rest == events


def test_dump_is_deterministic_gzip_with_mtime_zero() -> None:
    def dump() -> bytes:
        trajectory = TrajectoryAccumulator("t", enabled=True)
        trajectory.record({"event": "TRAJECTORY_TURN"})
        return trajectory.dump()

    first = dump()
    assert first == dump()
    assert first[:2] == b"\x1f\x8b"
    assert first[4:8] == b"\x00\x00\x00\x00"  # MTIME field


def test_the_artifact_is_deflate_level_6_behind_a_fixed_gzip_header() -> None:
    """Anyone can rebuild a trace's exact bytes from its lines (zlib, level 6, as
    ``gzip -6``): no name, no time, OS "unknown"."""
    trajectory = TrajectoryAccumulator("t", enabled=True)
    for turn in range(200):
        trajectory.record({"event": "TRAJECTORY_TURN", "turn": turn, "text": f"step {turn} ✓"})
    artifact = trajectory.dump()
    assert artifact is not None
    lines = gzip.decompress(artifact)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert artifact[:10] == bytes.fromhex("1f8b08000000000000ff")
    assert artifact[10:-8] == deflate.compress(lines) + deflate.flush()


def test_events_past_the_cap_are_dropped_counted_and_reported_once() -> None:
    fired: list[int] = []
    event = {"event": "TRAJECTORY_TURN", "pad": "x" * 50}
    size = len(json.dumps(event, separators=(",", ":")))
    trajectory = TrajectoryAccumulator(
        "t", enabled=True, max_bytes=size * 2, on_truncated=lambda: fired.append(1)
    )
    for _ in range(5):
        trajectory.record(event)

    assert trajectory.accumulated_events == 2
    assert trajectory.dropped == 3
    assert fired == [1]
    assert lines_of(trajectory.dump())[0]["dropped"] == 3


def test_after_the_first_drop_smaller_events_are_dropped_too() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=40)
    trajectory.record({"big": "x" * 100})
    trajectory.record({"s": 1})
    assert (trajectory.accumulated_events, trajectory.dropped) == (0, 2)


def test_a_raising_truncation_callback_is_swallowed() -> None:
    def boom() -> None:
        raise RuntimeError("milestone sink down")

    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=1, on_truncated=boom)
    trajectory.record({"event": "TRAJECTORY_TURN"})
    assert trajectory.dropped == 1


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": float("nan")}, {"x": {1, 2}}])
def test_an_unserializable_event_is_dropped_not_raised(bad: dict) -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record(bad)
    trajectory.record({"ok": True})
    assert trajectory.dropped == 1
    assert lines_of(trajectory.dump())[1:] == [{"ok": True}]


def test_dump_is_none_when_not_accumulating_or_empty() -> None:
    disabled = TrajectoryAccumulator("t", enabled=False)
    disabled.record({"event": "TRAJECTORY_TURN"})
    assert (disabled.accumulated_events, disabled.accumulated_bytes) == (0, 0)  # kept nothing
    assert disabled.dump() is None
    assert TrajectoryAccumulator("t", enabled=True).dump() is None


class _ItemsRaise(dict):
    def items(self):  # type: ignore[override]
        raise RuntimeError("items() exploded")

    def __iter__(self):
        raise RuntimeError("iteration exploded")


def _deeply_nested(levels: int) -> dict:
    event: dict = {"event": "TRAJECTORY_TURN"}
    for _ in range(levels):
        event = {"inner": event}
    return event


@pytest.mark.parametrize(
    "event",
    [_deeply_nested(5000), _ItemsRaise(event="TRAJECTORY_TURN")],
    ids=["recursion", "items-raises"],
)
def test_an_event_that_breaks_serialization_is_dropped_never_raised(event) -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record(event)
    trajectory.record({"event": "TRAJECTORY_RESULT"})
    assert (trajectory.accumulated_events, trajectory.dropped) == (1, 1)


def test_a_trace_of_many_dump_pieces_is_the_same_deflate_stream() -> None:
    """Past the dump's 1 MiB pieces the artifact is still the one stream of all lines."""
    trajectory = TrajectoryAccumulator("t", enabled=True)
    for turn in range(30_000):
        trajectory.record({"event": "TRAJECTORY_TURN", "turn": turn, "text": f"step {turn} ✓" * 4})
    artifact = trajectory.dump()
    assert artifact is not None
    lines = gzip.decompress(artifact)
    assert len(lines) > 3 * 1024 * 1024
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert artifact[10:-8] == deflate.compress(lines) + deflate.flush()
    assert (
        lines.splitlines()[-1]
        == json.dumps(
            {"event": "TRAJECTORY_TURN", "turn": 29_999, "text": "step 29999 ✓" * 4},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
    )


@pytest.mark.parametrize("event", [{"e": "x" * 2}, {"e": "x" * 100_000}], ids=["10 B", "100 KB"])
def test_memory_held_follows_the_json_bytes_not_the_number_of_events(event: dict) -> None:
    """At its cap the accumulator holds the JSON and a newline per event; nothing per
    event beyond that (a Python object per line would be about 40 bytes more)."""
    cap = 2 * 1024 * 1024
    tracemalloc.start()
    try:
        trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=cap)
        while not trajectory.dropped:
            trajectory.record(event)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    line = len(json.dumps(event, separators=(",", ":")))
    assert trajectory.accumulated_bytes > cap - line
    assert held <= cap * (1 + 1 / line) * 1.13  # bytearray's growth margin: an eighth
