"""In-memory trajectory of a traced task, dumped as deterministic gzipped JSON Lines."""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

MAX_TRACE_BYTES = 50 * 1024 * 1024
HEADER_EVENT = "TRAJECTORY_ARTIFACT_HEADER"
_GZIP_LEVEL = 6
_BLOCK_BYTES = 1024 * 1024

# A value JSON cannot carry (NaN or an infinity, text that is not valid Unicode, an int
# past Python's 4,300-digit conversion limit, bytes, a datetime, a Decimal, a set, any
# other object) is kept in its event as {"__unserializable__": "<type>", "repr":
# "<how Python shows it>"}, and counted in the header's "unserializable_values": a
# reader can tell it from the run's own JSON. A key JSON cannot carry becomes
# "__unserializable_key__:<type>:<repr>". Reprs are cut to REPR_MAX_CHARS.
UNSERIALIZABLE = "__unserializable__"
UNSERIALIZABLE_KEY = "__unserializable_key__:"
REPR_MAX_CHARS = 200
_KIND_MAX_CHARS = 100
# Past this depth a value is marked whole: the walk must stay far from Python's
# recursion limit, whatever the agent's own stack holds.
_MAX_DEPTH = 100
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = REPR_MAX_CHARS


class TrajectoryAccumulator:
    """Keeps a traced task's events, serialized, up to ``max_bytes`` of JSON.

    Past the cap every further event is dropped and counted, so the trace stays
    a faithful prefix of the run; ``on_truncated`` fires once, at the first drop.
    An event holding a value JSON cannot carry is kept, that value marked (see
    ``UNSERIALIZABLE``). The header names the first dropped event (its ``event``
    type and its JSON bytes), and a trace whose every event was dropped (a first
    event larger than the cap) is still dumped, as its header alone: the owner
    reads what happened rather than finding no trace at all.
    The events are kept as the JSON Lines the dump compresses, in blocks of about a
    MiB: memory follows the JSON bytes (plus a newline per event), not the number of
    events, and a dump can let each block go once it is compressed.
    """

    def __init__(
        self,
        task_id: str,
        *,
        enabled: bool,
        max_bytes: int = MAX_TRACE_BYTES,
        on_truncated: Callable[[], None] | None = None,
    ) -> None:
        self.task_id = task_id
        self.enabled = enabled
        self.max_bytes = max_bytes
        self._on_truncated = on_truncated
        self._blocks: list[bytearray] = [bytearray()]
        self._events = 0
        self._bytes = 0
        self._dropped = 0
        self._unserializable = 0
        self._first_dropped: dict[str, Any] | None = None
        self._truncated = False

    @property
    def accumulated_events(self) -> int:
        return self._events

    @property
    def accumulated_bytes(self) -> int:
        return self._bytes

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def unserializable_values(self) -> int:
        """Values of the kept events that JSON could not carry, kept marked."""
        return self._unserializable

    def record(self, event: Mapping[str, Any]) -> None:
        """Keep one event; never raises."""
        if not self.enabled:
            return
        line, marked = _serialize(event)
        if line is None:
            self._dropped += 1
            return
        if self._truncated or self._bytes + len(line) > self.max_bytes:
            self._drop_for_cap(event, len(line))
            return
        block = self._blocks[-1]
        if len(block) >= _BLOCK_BYTES:
            block = bytearray()
            self._blocks.append(block)
        block += line + b"\n"  # one append: a line is kept whole or not at all
        self._events += 1
        self._bytes += len(line)
        self._unserializable += marked

    def _drop_for_cap(self, event: Any, size: int) -> None:
        self._dropped += 1
        if self._truncated:
            return
        self._truncated = True
        self._first_dropped = {"event": _event_type(event), "bytes": size}
        logger.warning("trajectory reached %d bytes; further events are dropped", self.max_bytes)
        if self._on_truncated is not None:
            try:
                self._on_truncated()
            except Exception:
                logger.exception("trace truncation callback failed; ignored")

    def header(self) -> dict[str, Any]:
        return {
            "event": HEADER_EVENT,
            "task_id": self.task_id,
            "accumulated_events": self.accumulated_events,
            "accumulated_bytes": self.accumulated_bytes,
            "dropped": self.dropped,
            "max_bytes": self.max_bytes,
            "unserializable_values": self.unserializable_values,
            "first_dropped": self._first_dropped,
        }

    def dump(self, *, consume: bool = False) -> bytes | None:
        """The gzipped JSONL artifact, or None when no event was recorded at all.

        ``consume``: each piece of the trace is let go once compressed, so that the trace
        and its artifact are never both whole in memory; the accumulator then records
        nothing more and dumps nothing again.
        """
        if not self.enabled or not (self._events or self._dropped):
            return None
        out = io.BytesIO()
        # mtime=0 and no file name: the same events always give the same bytes.
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=out, compresslevel=_GZIP_LEVEL, mtime=0
        ) as gz:
            gz.write(json.dumps(self.header(), separators=(",", ":")).encode() + b"\n")
            if consume:
                self.enabled = False
                self._blocks.reverse()
                while self._blocks:
                    gz.write(self._blocks.pop())
            for block in self._blocks:
                gz.write(block)
        return out.getvalue()


def _dumps(value: Any) -> bytes:
    # Strict JSON in UTF-8: no NaN tokens, and text that is not valid Unicode raises here.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _serialize(event: Any) -> tuple[bytes | None, int]:
    """The event's JSON line and how many of its values had to be marked; (None, 0) only
    if even the marked event cannot be written. Never raises."""
    try:
        return _dumps(event), 0
    except Exception:
        pass  # the slower walk below marks what JSON cannot carry
    walk = _JsonSafe()
    try:
        return _dumps(walk.value(event, 0)), walk.marked
    except Exception as err:
        # A trace must never crash the task it describes, whatever the event holds.
        logger.warning("trajectory event dropped: not serializable (%s)", type(err).__name__)
        return None, 0


class _JsonSafe:
    """A copy of a value that JSON can carry, each value it cannot marked and counted."""

    def __init__(self) -> None:
        self.marked = 0
        self._open: set[int] = set()  # the containers being walked: a cycle comes back

    def value(self, value: Any, depth: int) -> Any:
        before = self.marked
        try:
            return self._value(value, depth)
        except Exception:
            # A mapping whose items() raises, an isinstance check that raises...
            self.marked = before
            return self._mark(value)

    def _value(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value if _is_unicode(value) else self._mark(value)
        if isinstance(value, int):
            return value if _has_decimal_text(value) else self._mark(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else self._mark(value)
        if not isinstance(value, Mapping | list | tuple):
            return self._mark(value)
        if depth >= _MAX_DEPTH:
            return self._mark(value, f"<nested deeper than {_MAX_DEPTH} levels>")
        if id(value) in self._open:
            return self._mark(value, "<circular reference>")
        self._open.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self._object(value, depth)
            return [self.value(item, depth + 1) for item in value]
        finally:
            self._open.discard(id(value))

    def _object(self, mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        copy: dict[str, Any] = {}
        for key, item in list(mapping.items()):
            name = self._key(key)
            unique, n = name, 1
            while unique in copy:  # two keys marked alike must not overwrite each other
                n += 1
                unique = f"{name} #{n}"
            copy[unique] = self.value(item, depth + 1)
        return copy

    def _key(self, key: Any) -> str:
        # The keys json itself turns into text keep that text.
        if isinstance(key, str) and _is_unicode(key):
            return key
        if key is None or isinstance(key, bool):
            return json.dumps(key)
        if isinstance(key, int) and _has_decimal_text(key):
            return int.__repr__(key)
        if isinstance(key, float) and math.isfinite(key):
            return float.__repr__(key)
        self.marked += 1
        return f"{UNSERIALIZABLE_KEY}{_kind(key)}:{_bounded_repr(key)}"

    def _mark(self, value: Any, description: str | None = None) -> dict[str, str]:
        self.marked += 1
        return {UNSERIALIZABLE: _kind(value), "repr": description or _bounded_repr(value)}


def _is_unicode(text: str) -> bool:
    try:
        str.encode(text, "utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _has_decimal_text(number: int) -> bool:
    try:
        int.__repr__(number)
    except ValueError:  # past sys.get_int_max_str_digits()
        return False
    return True


def _event_type(event: Any) -> str | None:
    """An event's ``event`` field, as bounded valid text; None if it has none in text."""
    try:
        kind = event.get("event") if isinstance(event, Mapping) else None
    except Exception:
        return None
    return _safe_text(kind, _KIND_MAX_CHARS) if isinstance(kind, str) else None


def _kind(value: Any) -> str:
    """``value``'s type, as ``module.Name`` (builtins without their module)."""
    kind = type(value)
    try:
        # A metaclass can make even these raise: the value alone is then marked.
        module = getattr(kind, "__module__", None)
        name = kind.__qualname__
    except Exception:
        return "<type unknown>"
    qualified = name if module == "builtins" or not isinstance(module, str) else f"{module}.{name}"
    return _safe_text(qualified, _KIND_MAX_CHARS)


def _bounded_repr(value: Any) -> str:
    """How Python shows ``value``, cut to REPR_MAX_CHARS, as valid UTF-8; never raises."""
    try:
        if isinstance(value, int) and not _has_decimal_text(value):
            # Its decimal text is what Python refuses to make; hex has no such limit.
            text = f"<int of {value.bit_length()} bits> {hex(value)[: REPR_MAX_CHARS // 2]}"
        else:
            text = _REPR.repr(value)
        return _safe_text(text, REPR_MAX_CHARS)
    except Exception as err:
        return f"<repr failed: {type(err).__name__}>"


def _safe_text(text: Any, limit: int) -> str:
    if not isinstance(text, str):
        return "<not text>"
    text = str.__getitem__(text, slice(0, limit + 1))  # a plain str, whatever the subclass
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    # Lone surrogates become \udXXX escapes: the line must be valid UTF-8.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
