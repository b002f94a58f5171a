"""The supervisor's inbox, without processes: wake-ups end a wait with no event and never
count as one; a stop signal is found behind other events."""
from __future__ import annotations

import threading

from portctl.decisions import ChildExited, ProbeResult, StopSignal
from portctl.inbox import Inbox


def test_a_wake_up_ends_a_blocking_take_with_no_event() -> None:
    inbox = Inbox()
    timer = threading.Timer(0.05, inbox.wake)
    timer.start()
    try:
        assert inbox.take(timeout_s=None) is None  # woken: without the wake this never returns
    finally:
        timer.cancel()


def test_events_keep_their_order_around_wake_ups() -> None:
    inbox = Inbox()
    exited = ChildExited(pid=1, code=0)
    inbox.wake()
    inbox.put(exited)
    assert inbox.take() is None and inbox.take() == exited and inbox.take() is None


def test_clear_keeps_only_stop_signals_and_drops_wake_ups() -> None:
    inbox = Inbox()
    stop = StopSignal(15, "SIGTERM")
    inbox.put(ChildExited(pid=1, code=0))
    inbox.wake()
    inbox.put(stop)
    inbox.put(ProbeResult(ok=True))
    assert inbox.clear() == [stop] and inbox.take() is None


def test_take_stop_finds_a_stop_behind_a_wake_up_and_keeps_what_came_after() -> None:
    inbox = Inbox()
    stop, later = StopSignal(2, "SIGINT"), ProbeResult(ok=False)
    inbox.put(ChildExited(pid=1, code=0))
    inbox.wake()
    inbox.put(stop)
    inbox.put(later)
    assert inbox.take_stop() == stop and inbox.take() == later and inbox.take_stop() is None
