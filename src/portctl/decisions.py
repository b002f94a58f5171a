"""What the supervisor does, as data: its states, the events it reacts to, and one pure
function, ``decide``, that maps (state, event, facts) to the next state and the actions the
loop must carry out. Nothing here touches a process, a file or a clock, so every transition
is unit-tested without processes (tests/test_decisions.py).

The life of an instance::

    STARTING --Ready--> RUNNING --probe fails N times--> UNHEALTHY (restart "no")
        |                  |  \\--exit / N failed probes (restart wanted)--> BACKOFF
        |                  |                                                   |
        |                  \\--exit (no restart)--> STOPPED                     |
        \\<------------------------- BackoffElapsed / verdict "now" -----------/

A stop signal in any live state leads to STOPPING (shown while the tree stops, then the
supervisor exits); an exit the policy does not restart leads to STOPPED; a refused restart (port taken by a
stranger, too many restarts) or a child that daemonized leads to FATAL. Before the instance
first served, a child's exit or a readiness timeout ends the start (the caller gets the
child's code, or "not ready in time"), whatever the restart policy.
"""
from __future__ import annotations

import enum
from typing import Optional, Union

from ._record import Frozen


class State(enum.Enum):
    """The instance's state; the value is what the record and `status` show."""

    STARTING = "starting"  # the child runs, not ready yet
    RUNNING = "running"
    UNHEALTHY = "unhealthy"  # failed its health checks, restart policy "no": left as is
    BACKOFF = "backoff"  # the child is gone; the next one starts after a delay
    STOPPING = "stopping"
    STOPPED = "stopped"
    FATAL = "fatal"

    @property
    def live(self) -> bool:
        return self in _LIVE


_LIVE = frozenset({State.STARTING, State.RUNNING, State.UNHEALTHY, State.BACKOFF})


# ---------------------------------------------------------------- events (what happened)
class ChildExited(Frozen):
    """A child we spawned exited (``code``: 128+N when killed by signal N)."""

    pid: int
    code: int


class ProbeResult(Frozen):
    """One periodic health probe of the serving child."""

    ok: bool
    latency_ms: float = 0.0
    detail: str = ""


class Ready(Frozen):
    """The child accepts connections (or passes its health check) ``elapsed_s`` after spawn."""

    elapsed_s: float


class ReadyTimeout(Frozen):
    """The readiness deadline passed while the child still was not ready."""


class StopSignal(Frozen):
    """We were told to stop (a signal, or a stop request file on Windows)."""

    signum: int
    name: str = "SIGTERM"


class RestartVerdict(Frozen):
    """The loop's answer to ``PlanRestart``: wait ``delay_s`` then spawn, or ``refused``
    (a reason) when the restart must not happen; ``conflict``: refused because a process
    outside our tree holds the port."""

    reason: str
    delay_s: float = 0.0
    refused: str = ""
    conflict: bool = False


class BackoffElapsed(Frozen):
    """The backoff delay is over."""


Event = Union[ChildExited, ProbeResult, Ready, ReadyTimeout, StopSignal, RestartVerdict, BackoffElapsed]


class Facts(Frozen):
    """What ``decide`` needs to know beyond the state and the event."""

    restart: str = "no"  # the restart policy: "no", "on-failure", "always"
    child_pid: Optional[int] = None  # the current child (None: none runs)
    served: bool = False  # the instance has been ready at least once
    failures: int = 0  # consecutive failed probes before this event
    failures_allowed: int = 3  # failed probes that make the child unhealthy
    daemonized: bool = False  # the current child exited 0 while its descendants serve the port


# ---------------------------------------------------------------- actions (what to do)
class Stopping(Frozen):
    """Say we stop, and record state "stopping" (before the child is stopped)."""

    reason: str


class StopChild(Frozen):
    """Stop the child's whole tree and wait until the port refuses."""


class NoteExit(Frozen):
    """Record the current child's exit (event "exited", the record's last exit)."""

    code: int


class NoteKilled(Frozen):
    """Record that we stopped the child ourselves (the record's last exit, no code)."""

    reason: str


class NoteHealth(Frozen):
    """Keep a probe's result; ``failures`` is the new count of consecutive failures;
    ``event``: "health_failed", "health_ok" (recovered) or "" (nothing new)."""

    result: ProbeResult
    failures: int
    event: str = ""


class Daemonized(Frozen):
    """The child exited 0 but left a descendant serving the port: say so."""


class PlanRestart(Frozen):
    """Ask for a ``RestartVerdict`` (port conflict? backoff delay? budget left?)."""

    reason: str


class Restarting(Frozen):
    """Announce a restart (event "restarting")."""

    reason: str
    delay_s: float


class WaitBackoff(Frozen):
    """Arm the timer that delivers ``BackoffElapsed`` after ``delay_s``."""

    delay_s: float


class Spawn(Frozen):
    """Start a new child and arm its readiness deadline."""


class MarkServing(Frozen):
    """The child serves: record it, event "ready" (and, the first time, the handshake)."""

    elapsed_s: float


class NoteListening(Frozen):
    """Look where the child's tree listens instead of its port (for the not-ready message),
    before the tree is stopped."""


class FailStart(Frozen):
    """The first start failed: ``code`` is the child's exit code, None: not ready in time."""

    code: Optional[int] = None


class Finish(Frozen):
    """Leave the loop: final event ``kind`` ("stopped" or "fatal") with ``reason``;
    ``code`` is the supervisor's exit code; ``warn``: tell the user the reason."""

    kind: str
    reason: str
    code: int
    warn: bool = False
    event: str = ""  # an event emitted just before the final one (e.g. "port_conflict")


Action = Union[Stopping, StopChild, NoteExit, NoteKilled, NoteHealth, Daemonized, PlanRestart,
               Restarting, WaitBackoff, Spawn, MarkServing, NoteListening, FailStart, Finish]


class Decision(Frozen):
    """The next state, its reason (None: keep the current one) and the actions, in order."""

    state: State
    actions: tuple[Action, ...] = ()
    reason: Optional[str] = None


# ---------------------------------------------------------------- the table
DAEMONIZED = "the child daemonized (exited 0 and left a descendant holding the port); " \
             "run the server in the foreground"


def decide(state: State, event: Event, facts: Facts) -> Decision:
    """What ``event`` means in ``state``: the next state and the actions, in order."""
    if not state.live:
        return Decision(state)  # stopping or ended: nothing more happens
    if isinstance(event, StopSignal):
        why = event.name
        return Decision(State.STOPPING, (Stopping(why), StopChild(), Finish("stopped", why, 0)), why)
    handler = _HANDLERS.get(type(event))
    return handler(state, event, facts) if handler else Decision(state)  # type: ignore[operator]


def _on_exit(state: State, event: ChildExited, facts: Facts) -> Decision:
    if event.pid != facts.child_pid:
        return Decision(state)  # the exit of a child we already replaced
    if facts.daemonized:
        return Decision(State.FATAL, (NoteExit(event.code), Daemonized(), StopChild(),
                                      Finish("fatal", DAEMONIZED, 1, warn=True)), DAEMONIZED)
    if not facts.served:
        reason = f"exited with code {event.code} before it served"
        return Decision(State.FATAL, (NoteExit(event.code), FailStart(event.code)), reason)
    reason = f"exited with code {event.code}"
    wanted = facts.restart == "always" or (facts.restart == "on-failure" and event.code != 0)
    if not wanted:
        return Decision(State.STOPPED, (NoteExit(event.code), Finish("stopped", reason, event.code, warn=True)),
                        reason)
    return Decision(State.BACKOFF, (NoteExit(event.code), PlanRestart(reason)), reason)


def _on_probe(state: State, event: ProbeResult, facts: Facts) -> Decision:
    if state not in (State.RUNNING, State.UNHEALTHY):
        return Decision(state)  # readiness decides while starting; no child while backing off
    if event.ok:
        if facts.failures:
            return Decision(State.RUNNING, (NoteHealth(event, 0, "health_ok"),), "")
        return Decision(state, (NoteHealth(event, 0),))
    failures = facts.failures + 1
    noted = NoteHealth(event, failures, "health_failed")
    if failures < facts.failures_allowed:
        return Decision(state, (noted,))
    reason = f"{failures} failed health checks ({event.detail})"
    if facts.restart == "no":
        return Decision(State.UNHEALTHY, (noted,), reason)
    return Decision(State.BACKOFF, (noted, StopChild(), NoteKilled(reason), PlanRestart(reason)), reason)


def _on_ready(state: State, event: Ready, facts: Facts) -> Decision:
    if state is not State.STARTING:
        return Decision(state)
    return Decision(State.RUNNING, (MarkServing(event.elapsed_s),), "")


def _on_ready_timeout(state: State, event: ReadyTimeout, facts: Facts) -> Decision:
    if state is not State.STARTING:
        return Decision(state)
    reason = "not ready in time"
    if not facts.served:
        return Decision(State.FATAL, (NoteListening(), StopChild(), FailStart(None)), reason)
    return Decision(State.BACKOFF, (StopChild(), NoteKilled(reason), PlanRestart(reason)), reason)


def _on_verdict(state: State, event: RestartVerdict, facts: Facts) -> Decision:
    if state is not State.BACKOFF:
        return Decision(state)
    if event.refused:
        before = "port_conflict" if event.conflict else ""
        return Decision(State.FATAL, (StopChild(), Finish("fatal", event.refused, 1, warn=True, event=before)),
                        event.refused)
    announce = Restarting(event.reason, event.delay_s)
    if event.delay_s > 0:
        return Decision(State.BACKOFF, (announce, WaitBackoff(event.delay_s)), event.reason)
    return Decision(State.STARTING, (announce, Spawn()), "")


def _on_backoff_elapsed(state: State, event: BackoffElapsed, facts: Facts) -> Decision:
    if state is not State.BACKOFF:
        return Decision(state)
    return Decision(State.STARTING, (Spawn(),), "")


_HANDLERS = {
    ChildExited: _on_exit,
    ProbeResult: _on_probe,
    Ready: _on_ready,
    ReadyTimeout: _on_ready_timeout,
    RestartVerdict: _on_verdict,
    BackoffElapsed: _on_backoff_elapsed,
}
