"""When to restart a crashed child: immediately after a healthy run, then exponential backoff
with jitter, and never more than ``max_restarts`` within ``window_s`` (then: fatal)."""
from __future__ import annotations

from collections import deque

from ..base.frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Deque, Optional


class BackoffPolicy(Frozen):
    """Defaults: 1 s, x2, capped at 30 s, reset after 30 s healthy, at most 10 restarts a minute."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    reset_after_s: float = 30.0
    max_restarts: int = 10
    window_s: float = 60.0
    jitter: float = 0.1  # +/- 10 % of each delay, so a fleet does not restart in lockstep


def _uniform() -> float:
    """A float in [0, 1) for the jitter, from the kernel's random bytes: the ``random`` module
    (~2 ms to import) would be imported by every supervisor only for this."""
    import os

    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


class RestartTracker:
    """Feeds on crashes, answers with the delay before the next start (None: give up)."""

    def __init__(self, policy: BackoffPolicy, rng: Optional[Callable[[], float]] = None) -> None:
        self.policy = policy
        self._rng = rng or _uniform
        self._streak = 0  # crashes since the last healthy run
        self._recent: Deque[float] = deque()
        self.restarts = 0

    def next_delay(self, now: float, uptime_s: float) -> Optional[float]:
        """A crash at monotonic time ``now`` after ``uptime_s`` of running: seconds to wait
        before restarting, or None when the restart budget of the window is spent."""
        policy = self.policy
        if uptime_s >= policy.reset_after_s:
            self._streak = 0
        while self._recent and now - self._recent[0] >= policy.window_s:
            self._recent.popleft()
        if len(self._recent) >= policy.max_restarts:
            return None
        self._recent.append(now)
        self.restarts += 1
        delay = self.base_delay(self._streak)
        self._streak += 1
        return delay * (1 + policy.jitter * (2 * self._rng() - 1))

    def base_delay(self, streak: int) -> float:
        """0 for the first crash after a healthy run, then initial, x factor, capped."""
        if streak == 0:
            return 0.0
        return float(min(self.policy.max_s, self.policy.initial_s * self.policy.factor ** (streak - 1)))
