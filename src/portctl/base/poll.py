"""Waiting for a condition with a deadline: the one poller of the library (ports, locks, stops)."""
from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.01  # short waits (ready, stop): latency matters more than a few wake-ups


def until(predicate: Callable[[], bool], deadline: float,
          abort: Callable[[], bool] = lambda: False) -> bool:
    """Poll ``predicate`` (5 ms, backing off to 10 ms) until it holds, ``abort`` holds, or the
    monotonic ``deadline`` passes. True only when the predicate held."""
    delay = _POLL_FIRST_S
    while True:
        if predicate():
            return True
        if abort() or time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _POLL_MAX_S)
