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
    """Counts the bytes of ``track``'s chunks; ``close`` clears the bar, if one is shown."""

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
                self._bar.update(len(chunk))
            elif self._clock() - started >= SHOW_AFTER_SECONDS:
                self._bar = self._new_bar(seen)
            yield chunk

    def _new_bar(self, done: int) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=self._total,
            initial=done,
            file=self._terminal,
            desc="Downloading",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            leave=False,  # the line is cleared at the end: the terminal keeps only messages
            dynamic_ncols=True,
            mininterval=0.25,
        )

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
