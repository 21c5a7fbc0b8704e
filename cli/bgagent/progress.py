"""A download's progress, as people watch it: on the terminal the caller gives (stderr,
when it is one and the trace goes to a file: see ``trace_command``), once the
download has taken about a second; never in the data stream.

The bar is tqdm's (bytes, rate, and the share done when the size is known). It is
imported only once a bar is due: a quick download, or one nobody watches, pays
nothing for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

SHOW_AFTER_SECONDS = 1.0


class Progress:
    """Counts the bytes of ``track``'s chunks; ``close`` clears the bar, if one is shown.

    A bar that cannot be drawn (a terminal that refuses a write, tqdm missing from a
    stale install) is given up, silently: progress never fails a download.
    """

    def __init__(
        self,
        terminal: TextIO | None,
        total_bytes: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._terminal = terminal
        self._total = total_bytes
        self._clock = clock
        self._bar: Any = None

    def track(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The same chunks; when nobody can watch, the very same iterable, untouched."""
        return chunks if self._terminal is None else self._tracked(chunks)

    def _tracked(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        started, seen = self._clock(), 0
        for chunk in chunks:
            seen += len(chunk)
            if self._bar is not None:
                self._draw("update", len(chunk))
            elif self._terminal is not None and self._clock() - started >= SHOW_AFTER_SECONDS:
                self._bar = self._new_bar(seen)
            yield chunk

    def _new_bar(self, done: int) -> Any:
        try:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no thread of its own drawing over our messages
            return tqdm(
                total=self._total,
                initial=done,
                file=self._terminal,
                desc="Downloading",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                leave=False,  # the line is cleared at the end: the terminal keeps messages
            )
        except Exception:
            self._terminal = None  # given up for this download
            return None

    def _draw(self, method: str, *args: int) -> None:
        try:
            getattr(self._bar, method)(*args)
        except Exception:
            self._bar, self._terminal = None, None

    def close(self) -> None:
        if self._bar is not None:
            self._draw("close")
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
