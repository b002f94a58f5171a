"""Backoff arithmetic (pure logic, a fixed random source)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portctl.core.backoff import BackoffPolicy, RestartTracker

NO_JITTER = BackoffPolicy(jitter=0.0)


def crash_loop(tracker: RestartTracker, times: int, every_s: float = 0.1) -> list:  # type: ignore[type-arg]
    return [tracker.next_delay(now=i * every_s, uptime_s=0.05) for i in range(times)]


def test_first_restart_immediate_then_doubling_capped() -> None:
    tracker = RestartTracker(BackoffPolicy(jitter=0.0, max_restarts=100))
    assert crash_loop(tracker, 8) == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_healthy_run_resets_the_streak() -> None:
    tracker = RestartTracker(NO_JITTER)
    assert [tracker.next_delay(t, 1.0) for t in (0, 1, 2)] == [0.0, 1.0, 2.0]
    assert tracker.next_delay(now=40, uptime_s=30.0) == 0.0
    assert tracker.next_delay(now=41, uptime_s=1.0) == 1.0


def test_fatal_after_max_restarts_within_window() -> None:
    tracker = RestartTracker(BackoffPolicy(jitter=0.0, max_restarts=10, window_s=60))
    delays = crash_loop(tracker, 11)
    assert None not in delays[:10] and delays[10] is None
    assert tracker.restarts == 10


def test_window_slides() -> None:
    tracker = RestartTracker(BackoffPolicy(jitter=0.0, max_restarts=2, window_s=10))
    assert tracker.next_delay(0, 0) is not None
    assert tracker.next_delay(1, 0) is not None
    assert tracker.next_delay(2, 0) is None
    assert tracker.next_delay(11, 0) is not None  # the first restart left the window


@given(rng=st.floats(0, 1), streak=st.integers(0, 40), jitter=st.floats(0, 0.5))
def test_jitter_stays_within_bounds(rng: float, streak: int, jitter: float) -> None:
    policy = BackoffPolicy(jitter=jitter, max_restarts=1000)
    tracker = RestartTracker(policy, rng=lambda: rng)
    base = tracker.base_delay(streak)
    for i in range(streak):
        tracker.next_delay(i * 0.01, 0)
    delay = tracker.next_delay(streak * 0.01, 0)
    assert delay is not None
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9
    assert delay <= policy.max_s * (1 + jitter)
