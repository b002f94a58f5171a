"""The supervisor's inbox: signal handlers, the child's waiter thread and the health prober
put typed events (``decisions.Event``) here and do nothing else; the loop takes them."""
from __future__ import annotations

import queue
from typing import Optional

from .decisions import Event, StopSignal


class Inbox:
    """A FIFO of events; ``take`` blocks up to a timeout (None: for ever). ``wake`` ends a
    wait with no event (None in the queue), for work the loop does between events."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Optional[Event]] = queue.SimpleQueue()

    def put(self, event: Event) -> None:
        """Thread- and signal-handler-safe (SimpleQueue.put is reentrant)."""
        self._queue.put(event)

    def wake(self) -> None:
        """End the current (or next) ``take`` early, with no event; signal-handler-safe."""
        self._queue.put(None)

    def take(self, timeout_s: Optional[float] = 0.0) -> Optional[Event]:
        """The next event, waiting up to ``timeout_s`` (0: don't wait, None: for ever); None
        when the wait ran out or was woken."""
        try:
            if timeout_s is not None and timeout_s <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _waiting(self) -> list[Event]:
        """Every event waiting now (wake-ups dropped), oldest first."""
        found: list[Event] = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return found
            if event is not None:
                found.append(event)

    def take_stop(self) -> Optional[StopSignal]:
        """The first stop signal waiting, dropping whatever came before it (used while the
        tree is being stopped: exits and probes of a child we stop say nothing new); what
        came after it stays."""
        events = self._waiting()
        for index, event in enumerate(events):
            if isinstance(event, StopSignal):
                for later in events[index + 1:]:
                    self._queue.put(later)
                return event
        return None

    def clear(self) -> list[StopSignal]:
        """Drop every waiting event but the stop signals, which are returned."""
        return [e for e in self._waiting() if isinstance(e, StopSignal)]
