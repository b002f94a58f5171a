"""The supervisor's inbox: signal handlers, the child's waiter thread and the health prober
put typed events (``decisions.Event``) here and do nothing else; the loop takes them."""
from __future__ import annotations

import queue
from typing import Optional

from .decisions import Event, StopSignal


class Inbox:
    """A FIFO of events; ``take`` blocks up to a timeout (None: for ever)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def put(self, event: Event) -> None:
        """Thread- and signal-handler-safe (SimpleQueue.put is reentrant)."""
        self._queue.put(event)

    def take(self, timeout_s: Optional[float] = 0.0) -> Optional[Event]:
        """The next event, waiting up to ``timeout_s`` (0: don't wait, None: for ever)."""
        try:
            if timeout_s is not None and timeout_s <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def take_stop(self) -> Optional[StopSignal]:
        """The first stop signal waiting, dropping whatever came before it (used while the
        tree is being stopped: exits and probes of a child we stop say nothing new)."""
        while True:
            event = self.take()
            if event is None or isinstance(event, StopSignal):
                return event

    def clear(self) -> list[StopSignal]:
        """Drop every waiting event but the stop signals, which are returned."""
        kept: list[StopSignal] = []
        while True:
            event = self.take()
            if event is None:
                return kept
            if isinstance(event, StopSignal):
                kept.append(event)
