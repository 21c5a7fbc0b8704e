import gzip
import json
import random
import tracemalloc
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
        "unserializable_values": 0,
        "first_dropped": None,
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


def test_an_event_nested_past_the_walks_depth_is_kept_marked_there() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record(_deeply_nested(5000))  # past what json itself can write
    trajectory.record({"event": "TRAJECTORY_RESULT"})
    header, nested, result = _strict_lines(trajectory.dump())
    assert (trajectory.accumulated_events, trajectory.dropped) == (2, 0)
    for _ in range(100):
        nested = nested["inner"]
    assert nested == {"__unserializable__": "dict", "repr": "<nested deeper than 100 levels>"}
    assert header["unserializable_values"] == 1
    assert result == {"event": "TRAJECTORY_RESULT"}


def test_an_event_whose_items_raise_is_kept_as_one_marked_value() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record(_ItemsRaise(event="TRAJECTORY_TURN"))
    _header, line = _strict_lines(trajectory.dump())
    assert line["__unserializable__"].endswith("_ItemsRaise")
    assert line["repr"] == "{'event': 'TRAJECTORY_TURN'}"
    assert trajectory.unserializable_values == 1


def test_a_cycle_is_marked_where_it_comes_back() -> None:
    event: dict = {"event": "TRAJECTORY_TURN", "items": []}
    event["items"].append(event)
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record(event)
    _header, line = _strict_lines(trajectory.dump())
    assert line == {
        "event": "TRAJECTORY_TURN",
        "items": [{"__unserializable__": "dict", "repr": "<circular reference>"}],
    }


def test_the_same_value_twice_is_no_cycle() -> None:
    shared = {"k": float("nan")}
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"a": shared, "b": shared})
    _header, line = _strict_lines(trajectory.dump())
    assert line["a"] == line["b"] == {"k": {"__unserializable__": "float", "repr": "nan"}}
    assert trajectory.unserializable_values == 2


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
    event beyond that (a Python object per line would be about 40 bytes more: five times
    the JSON of a 10-byte event)."""
    cap = 512 * 1024
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
    assert held <= cap * (1 + 1 / line) * 1.5  # room for the buffer's growth margin


def test_the_dump_compresses_the_trace_a_mebibyte_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never a copy of the whole trace (it would double the memory at the cap), nor pieces
    so small that the dump crawls: the header, then one write per block of about a MiB
    (a block ends with the first line that takes it past a MiB)."""
    trajectory = TrajectoryAccumulator("t", enabled=True)
    while trajectory.accumulated_bytes + trajectory.accumulated_events < 8 * 1024 * 1024:
        trajectory.record({"text": "y" * 1000})
    trajectory.record({"t": "z" * 90})  # 8 MiB and a little more, newlines included
    writes: list[int] = []
    write = gzip.GzipFile.write

    def counted(self: gzip.GzipFile, data: bytes) -> int:
        writes.append(len(data))
        return write(self, data)

    monkeypatch.setattr(gzip.GzipFile, "write", counted)
    trajectory.dump()
    _header, *blocks, last = writes
    assert len(blocks) == 7
    assert all(1024 * 1024 <= size < 1024 * 1024 + 1012 for size in blocks)
    assert 0 < last < 1024 * 1024 + 1012


def _hex_trace(megabytes: int) -> TrajectoryAccumulator:
    """A trace that compresses only about 2:1, so that its artifact weighs."""
    rng = random.Random(3)
    trajectory = TrajectoryAccumulator("t", enabled=True)
    while trajectory.accumulated_bytes < megabytes * 1024 * 1024:
        trajectory.record({"text": rng.randbytes(500).hex()})
    return trajectory


def test_a_consuming_dump_gives_the_same_artifact_and_ends_the_trace() -> None:
    kept, consumed = _hex_trace(3), _hex_trace(3)
    artifact = kept.dump()
    assert consumed.dump(consume=True) == artifact
    assert kept.dump() == artifact  # a plain dump can be repeated
    consumed.record({"late": True})
    assert consumed.dump() is None  # nothing is recorded or dumped after it
    assert consumed.accumulated_events == kept.accumulated_events  # the counts remain


def test_a_consuming_dump_never_holds_the_trace_and_its_artifact_whole() -> None:
    tracemalloc.start()
    try:
        trajectory = _hex_trace(8)
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        artifact = trajectory.dump(consume=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert artifact is not None
    assert len(artifact) > 4 * 1024 * 1024  # what a plain dump would add to the trace
    # A plain dump adds the whole artifact and its copy (over 6 MiB here); consuming, at
    # most a block, its compressed output and the artifact buffer's margin.
    assert peak - held < 3 * 1024 * 1024


def _strict_lines(artifact: bytes) -> list[dict]:
    """The artifact's lines as a strict reader takes them: UTF-8 only, no NaN or
    Infinity tokens."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    text = gzip.decompress(artifact).decode("utf-8", errors="strict")
    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (float("nan"), "float"),
        (float("inf"), "float"),
        (float("-inf"), "float"),
        ("caf\udce9", "str"),
        (10**5000, "int"),
        (b"\x00\xff", "bytes"),
        (datetime(2026, 12, 3, 11, 0, tzinfo=UTC), "datetime.datetime"),
        (Decimal("1.10"), "decimal.Decimal"),
        ({1, 2}, "set"),
        (object(), "object"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_an_event_with_a_value_json_cannot_carry_is_kept_with_the_value_marked(
    value: object, kind: str
) -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"event": "TRAJECTORY_TURN", "turn": 1, "x": value})
    trajectory.record({"event": "TRAJECTORY_RESULT"})

    header, turn, result = _strict_lines(trajectory.dump())
    assert (trajectory.accumulated_events, trajectory.dropped) == (2, 0)
    assert header["unserializable_values"] == 1
    assert turn["event"] == "TRAJECTORY_TURN"
    assert turn["turn"] == 1
    assert turn["x"]["__unserializable__"] == kind
    assert isinstance(turn["x"]["repr"], str)
    assert set(turn["x"]) == {"__unserializable__", "repr"}
    assert result == {"event": "TRAJECTORY_RESULT"}


def test_a_marked_value_says_how_python_showed_it() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    when = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    trajectory.record({"at": when, "price": Decimal("1.10"), "n": float("nan")})
    _header, line = _strict_lines(trajectory.dump())
    assert line == {
        "at": {"__unserializable__": "datetime.datetime", "repr": repr(when)},
        "price": {"__unserializable__": "decimal.Decimal", "repr": "Decimal('1.10')"},
        "n": {"__unserializable__": "float", "repr": "nan"},
    }
    assert lines_of(trajectory.dump())[0]["unserializable_values"] == 3


def test_a_type_from_builtins_is_named_alone_however_its_module_name_was_made() -> None:
    # A module name built at run time: equal to "builtins", not the same string object.
    module = "".join(["built", "ins"])
    made = type("Made", (), {"__module__": module, "__repr__": lambda self: "made"})
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"value": made()})
    _header, line = _strict_lines(trajectory.dump())
    assert line == {"value": {"__unserializable__": "Made", "repr": "made"}}


class _Shown:
    def __init__(self, shown: object) -> None:
        self.shown = shown

    def __repr__(self) -> str:
        if isinstance(self.shown, BaseException):
            raise self.shown
        return self.shown  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("x" * 10_000, "x" * 98 + "..." + "x" * 99),  # reprlib keeps both ends
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        (RuntimeError("repr exploded"), None),
        (42, None),  # a __repr__ that returns no text
    ],
    ids=["huge", "surrogate", "raises", "not-text"],
)
def test_a_repr_is_bounded_valid_text_whatever_the_object_does(shown: object, expected) -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"x": _Shown(shown)})
    _header, line = _strict_lines(trajectory.dump())
    marked = line["x"]
    assert marked["__unserializable__"].endswith("_Shown")
    assert len(marked["repr"]) <= 200
    if expected is not None:
        assert marked["repr"] == expected
    else:
        assert marked["repr"].startswith("<")
        assert "_Shown" in marked["repr"]


def test_a_huge_int_is_shown_by_its_size_and_leading_hex_digits() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"n": 2**20_000, "small": 2**64})
    _header, line = _strict_lines(trajectory.dump())
    assert line["n"] == {
        "__unserializable__": "int",
        "repr": "<int of 20001 bits> 0x1" + "0" * 97,
    }
    assert line["small"] == 2**64  # an int json can write stays a number


def test_keys_json_turns_into_text_keep_that_text_and_others_are_marked() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record(
        {
            7: "int",
            2.5: "float",
            True: "bool",
            None: "none",
            "ok": float("nan"),
            ("a", 1): "tuple",
            "bad \udcff": "surrogate",
        }
    )
    _header, line = _strict_lines(trajectory.dump())
    assert line == {
        "7": "int",
        "2.5": "float",
        "true": "bool",
        "null": "none",
        "ok": {"__unserializable__": "float", "repr": "nan"},
        "__unserializable_key__:tuple:('a', 1)": "tuple",
        "__unserializable_key__:str:'bad \\udcff'": "surrogate",
    }
    assert trajectory.unserializable_values == 3


def test_keys_marked_alike_are_all_kept() -> None:
    class Same:
        def __repr__(self) -> str:
            return "same"

    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({Same(): 1, Same(): 2, Same(): 3, "n": float("inf")})
    _header, line = _strict_lines(trajectory.dump())
    name = f"__unserializable_key__:{Same.__module__}.{Same.__qualname__}:same"
    assert line == {
        name: 1,
        f"{name} #2": 2,
        f"{name} #3": 3,
        "n": {"__unserializable__": "float", "repr": "inf"},
    }


def test_tuples_and_read_only_mappings_are_written_as_json_writes_them() -> None:
    from types import MappingProxyType

    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"t": (1, float("nan")), "m": MappingProxyType({"a": 1})})
    _header, line = _strict_lines(trajectory.dump())
    assert line == {"t": [1, {"__unserializable__": "float", "repr": "nan"}], "m": {"a": 1}}
    assert trajectory.unserializable_values == 1


def test_only_the_values_of_kept_events_are_counted() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=80)
    trajectory.record({"n": float("nan")})
    trajectory.record({"n": float("nan"), "pad": "x" * 100})  # past the cap: dropped
    assert (trajectory.unserializable_values, trajectory.dropped) == (1, 1)
    assert lines_of(trajectory.dump())[0]["unserializable_values"] == 1


def test_a_marked_value_counts_against_the_cap_as_written() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"n": float("nan")})
    written = b'{"n":{"__unserializable__":"float","repr":"nan"}}'
    assert trajectory.accumulated_bytes == len(written)
    assert gzip.decompress(trajectory.dump()).splitlines()[1] == written


def test_a_first_event_over_the_cap_still_leaves_a_trace_that_says_so() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=100)
    big = {"event": "TRAJECTORY_TURN", "text": "x" * 500}
    trajectory.record(big)
    trajectory.record({"event": "TRAJECTORY_RESULT"})  # fits, but after a drop: dropped

    artifact = trajectory.dump()
    assert artifact is not None
    (header,) = lines_of(artifact)
    assert header == {
        "event": HEADER_EVENT,
        "task_id": "t",
        "accumulated_events": 0,
        "accumulated_bytes": 0,
        "dropped": 2,
        "max_bytes": 100,
        "unserializable_values": 0,
        "first_dropped": {
            "event": "TRAJECTORY_TURN",
            "bytes": len(json.dumps(big, separators=(",", ":"))),
        },
    }


def test_the_first_dropped_event_is_named_in_a_truncated_trace_too() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=60)
    trajectory.record({"event": "TRAJECTORY_TURN", "turn": 1})
    dropped = {"event": "POLICY_DECISION", "pad": "y" * 50}
    trajectory.record(dropped)
    trajectory.record({"event": "TRAJECTORY_RESULT"})
    header, kept = lines_of(trajectory.dump())
    assert kept == {"event": "TRAJECTORY_TURN", "turn": 1}
    size = len(json.dumps(dropped, separators=(",", ":")))
    assert header["first_dropped"] == {"event": "POLICY_DECISION", "bytes": size}
    assert header["dropped"] == 2


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"pad": "x" * 200}, None),  # no type
        ({"event": 7, "pad": "x" * 200}, None),  # a type that is no text
        ({"event": "E" * 1000}, "E" * 99 + "\u2026"),  # the type is what is too large
        ({"event": "bad \udc80", "pad": "x" * 200}, "bad \\udc80"),
    ],
    ids=["untyped", "not-text", "huge-type", "surrogate"],
)
def test_the_first_dropped_event_is_named_by_bounded_valid_text(event: dict, named) -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=100)
    trajectory.record(event)
    (header,) = _strict_lines(trajectory.dump())
    assert header["first_dropped"]["event"] == named
    assert header["first_dropped"]["bytes"] > 100


def test_an_untruncated_trace_names_no_dropped_event() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"event": "TRAJECTORY_TURN"})
    assert lines_of(trajectory.dump())[0]["first_dropped"] is None


class _HidesItsName(type):
    def __getattribute__(cls, name: str) -> Any:
        if name in ("__module__", "__qualname__"):
            raise RuntimeError(name)
        return super().__getattribute__(name)


class _Nameless(metaclass=_HidesItsName):
    pass


def test_a_value_whose_type_hides_its_name_is_marked_alone() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"event": "TRAJECTORY_TURN", "o": _Nameless()})
    _header, line = _strict_lines(trajectory.dump())
    assert line["event"] == "TRAJECTORY_TURN"
    assert line["o"]["__unserializable__"] == "<type unknown>"


def test_json_values_beside_a_marked_one_stay_as_they_are() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"none": None, "yes": True, "no": False, "n": float("nan"), "f": 1.5})
    _header, line = _strict_lines(trajectory.dump())
    assert line == {
        "none": None,
        "yes": True,
        "no": False,
        "n": {"__unserializable__": "float", "repr": "nan"},
        "f": 1.5,
    }
    assert trajectory.unserializable_values == 1


def test_nested_lists_are_walked_to_the_same_depth_as_mappings() -> None:
    nested: list = ["leaf"]
    for _ in range(5000):
        nested = [nested]
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"l": nested})
    _header, line = _strict_lines(trajectory.dump())
    inner = line["l"]
    for _ in range(99):  # the event is level 0, its list level 1
        inner = inner[0]
    assert inner == {"__unserializable__": "list", "repr": "<nested deeper than 100 levels>"}


def test_a_repr_shows_three_levels_of_a_nested_value() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"s": {frozenset({frozenset({frozenset({1})})})}})
    _header, line = _strict_lines(trajectory.dump())
    assert line["s"] == {
        "__unserializable__": "set",
        "repr": "{frozenset({frozenset({frozenset({...})})})}",
    }


def test_a_repr_that_fails_inside_a_container_says_so() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"s": {10**5000}})  # reprlib asks for the int's decimal text
    _header, line = _strict_lines(trajectory.dump())
    assert line["s"] == {"__unserializable__": "set", "repr": "<repr failed: ValueError>"}


class _GetRaises(dict):
    def get(self, *_: Any) -> Any:  # type: ignore[override]
        raise RuntimeError("get exploded")


def test_a_dropped_event_that_cannot_say_its_type_is_named_by_none() -> None:
    trajectory = TrajectoryAccumulator("t", enabled=True, max_bytes=10)
    trajectory.record(_GetRaises(event="TRAJECTORY_TURN", pad="x" * 50))
    (header,) = _strict_lines(trajectory.dump())
    assert header["first_dropped"]["event"] is None
    assert header["dropped"] == 1


def test_an_event_even_the_walk_cannot_write_is_dropped_counted_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from trace_agent import trajectory as module

    def broken(self: object, value: object, depth: int) -> object:
        raise RuntimeError("walk exploded")

    monkeypatch.setattr(module._JsonSafe, "value", broken)
    trajectory = TrajectoryAccumulator("t", enabled=True)
    trajectory.record({"n": float("nan")})
    trajectory.record({"ok": True})
    assert (trajectory.accumulated_events, trajectory.dropped) == (1, 1)
    assert trajectory.unserializable_values == 0
    assert "trajectory event dropped: not serializable (RuntimeError)" in caplog.text
