"""Time limits that judge the network, never the reader of the output.

``within`` bounds a whole call (connecting and receiving the response headers, or an
API request) however the server trickles its bytes; ``NetworkClock`` counts only the
time a download spends waiting for the network, so a slow consumer of stdout (a
pipe not drained, ``| less`` left open) never makes a healthy download time out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Expired(Exception):
    """The call did not finish within its limit."""


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``'s result, or Expired once ``seconds`` have passed.

    The call runs in a daemon thread: one that is still waiting when the limit
    passes is abandoned, and ends with the process.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as err:
            outcome["error"] = err
        finally:
            done.set()

    threading.Thread(target=work, daemon=True).start()
    if not done.wait(seconds):
        raise Expired
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class NetworkClock:
    """Spends ``budget`` seconds only while ``waiting()``; calls ``on_expiry`` (from its
    own thread) once the budget is spent, unless ``stop()`` came first."""

    def __init__(self, budget: float, on_expiry: Callable[[], None]) -> None:
        self._budget = budget
        self._on_expiry = on_expiry
        self._used = 0.0
        self._since: float | None = None
        self._stopped = False
        self._changed = threading.Condition()
        self.expired = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def waiting(self) -> None:
        with self._changed:
            if self._since is None:
                self._since = time.monotonic()
                self._changed.notify()

    def paused(self) -> None:
        with self._changed:
            if self._since is not None:
                self._used += time.monotonic() - self._since
                self._since = None
                self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while not self._stopped:
                if self._since is None:
                    self._changed.wait()
                    continue
                left = self._budget - self._used - (time.monotonic() - self._since)
                if left <= 0:
                    # Under the lock: a stop() cannot slip in between the check and the act.
                    self.expired.set()
                    self._stopped = True
                    self._on_expiry()
                    return
                self._changed.wait(left)
