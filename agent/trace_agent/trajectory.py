"""In-memory trajectory of a traced task, dumped as deterministic gzipped JSON Lines."""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

MAX_TRACE_BYTES = 50 * 1024 * 1024
HEADER_EVENT = "TRAJECTORY_ARTIFACT_HEADER"
_GZIP_LEVEL = 6
_BLOCK_BYTES = 1024 * 1024


class TrajectoryAccumulator:
    """Keeps a traced task's events, serialized, up to ``max_bytes`` of JSON.

    Past the cap every further event is dropped and counted, so the trace stays
    a faithful prefix of the run; ``on_truncated`` fires once, at the first drop.
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

    def record(self, event: Mapping[str, Any]) -> None:
        """Keep one event; never raises."""
        if not self.enabled:
            return
        try:
            line = json.dumps(
                event, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        except Exception as err:
            # A trace must never crash the task it describes, whatever the event holds
            # (a cycle, ~1000 levels of nesting, a mapping whose items() raises).
            self._dropped += 1
            logger.warning("trajectory event dropped: not serializable (%s)", type(err).__name__)
            return
        if self._truncated or self._bytes + len(line) > self.max_bytes:
            self._drop_for_cap()
            return
        block = self._blocks[-1]
        if len(block) >= _BLOCK_BYTES:
            block = bytearray()
            self._blocks.append(block)
        block += line + b"\n"  # one append: a line is kept whole or not at all
        self._events += 1
        self._bytes += len(line)

    def _drop_for_cap(self) -> None:
        self._dropped += 1
        if self._truncated:
            return
        self._truncated = True
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
        }

    def dump(self, *, consume: bool = False) -> bytes | None:
        """The gzipped JSONL artifact, or None when there is nothing to keep.

        ``consume``: each piece of the trace is let go once compressed, so that the trace
        and its artifact are never both whole in memory; the accumulator then records
        nothing more and dumps nothing again.
        """
        if not self.enabled or not self._events:
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
