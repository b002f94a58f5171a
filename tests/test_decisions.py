"""The supervisor's decision table, without processes: every state against every event."""
from __future__ import annotations

import itertools
from typing import Optional

import pytest

from portctl.decisions import (DAEMONIZED, BackoffElapsed, ChildExited, Daemonized, Decision, Event, Facts,
                               FailStart, Finish, MarkServing, NoteExit, NoteHealth, NoteKilled, NoteListening,
                               PlanRestart,
                               ProbeResult, Ready, ReadyTimeout, Restarting, RestartVerdict, Spawn, State,
                               StopChild, Stopping, StopSignal, WaitBackoff, decide)

CHILD = 100
LIVE = [State.STARTING, State.RUNNING, State.UNHEALTHY, State.BACKOFF]
ENDED = [State.STOPPING, State.STOPPED, State.FATAL]
EVENTS: list[Event] = [
    ChildExited(CHILD, 0), ChildExited(CHILD, 3), ChildExited(99, 3), ProbeResult(True, 1.0, "200"),
    ProbeResult(False, 1.0, "TimeoutError"), Ready(0.1), ReadyTimeout(), StopSignal(15, "SIGTERM"),
    RestartVerdict("why", 0.0), RestartVerdict("why", 2.0), RestartVerdict("why", refused="busy", conflict=True),
    BackoffElapsed(),
]
POLICIES = ["no", "on-failure", "always"]


def facts(restart: str = "on-failure", served: bool = True, failures: int = 0, allowed: int = 3,
          daemonized: bool = False, child: Optional[int] = CHILD) -> Facts:
    return Facts(restart=restart, child_pid=child, served=served, failures=failures,
                 failures_allowed=allowed, daemonized=daemonized)


def kinds(decision: Decision) -> list[type]:
    return [type(a) for a in decision.actions]


# ------------------------------------------------------------------ invariants over the whole table
ALL = list(itertools.product(State, EVENTS, POLICIES, [False, True], [0, 2], [False, True]))


def test_invariants_over_every_combination() -> None:
    """One test, not 2,000 parametrized ones: the per-test process-leak check would dominate."""
    for case in ALL:
        check_invariants(*case)


def check_invariants(state: State, event: Event, restart: str, served: bool, failures: int,
                     daemonized: bool) -> None:
    d = decide(state, event, facts(restart, served, failures, daemonized=daemonized))
    actions = kinds(d)
    if not state.live:  # ended: nothing happens any more
        assert d == Decision(state)
        return
    if Finish in actions:  # leaving: the last action, and an ended state
        assert actions[-1] is Finish and not d.state.live
    if not d.state.live:  # every way out says why, and ends with a final event (or a failed start)
        assert d.reason and (Finish in actions or FailStart in actions)
    if PlanRestart in actions:
        assert d.state is State.BACKOFF and actions[-1] is PlanRestart
    if Spawn in actions:
        assert d.state is State.STARTING and actions[-1] is Spawn
    if WaitBackoff in actions:
        assert d.state is State.BACKOFF
    if d.state is not state:  # a state change is recorded with its reason
        assert d.reason is not None
    assert actions.count(StopChild) <= 1


@pytest.mark.parametrize("state", LIVE)
@pytest.mark.parametrize("restart", POLICIES)
def test_a_stale_exit_is_ignored_in_every_state(state: State, restart: str) -> None:
    """The exit of a child we already replaced (the waiter of a stopped child) changes nothing."""
    for served in (False, True):
        assert decide(state, ChildExited(99, 137), facts(restart, served)) == Decision(state)


@pytest.mark.parametrize("state", LIVE)
def test_a_stop_signal_stops_from_every_live_state(state: State) -> None:
    d = decide(state, StopSignal(2, "SIGINT"), facts())
    assert d.state is State.STOPPING and d.reason == "SIGINT"
    assert d.actions == (Stopping("SIGINT"), StopChild(), Finish("stopped", "SIGINT", 0))


@pytest.mark.parametrize("state", ENDED)
@pytest.mark.parametrize("event", EVENTS)
def test_nothing_happens_once_stopping_or_ended(state: State, event: Event) -> None:
    assert decide(state, event, facts()) == Decision(state)


# ------------------------------------------------------------------ exits
@pytest.mark.parametrize("state", [State.STARTING, State.RUNNING, State.UNHEALTHY])
@pytest.mark.parametrize("restart,code,wanted", [
    ("no", 0, False), ("no", 3, False), ("on-failure", 0, False), ("on-failure", 3, True),
    ("always", 0, True), ("always", 3, True),
])
def test_exit_after_serving_follows_the_restart_policy(state: State, restart: str, code: int, wanted: bool) -> None:
    d = decide(state, ChildExited(CHILD, code), facts(restart))
    reason = f"exited with code {code}"
    if wanted:
        assert d == Decision(State.BACKOFF, (NoteExit(code), PlanRestart(reason)), reason)
    else:
        assert d == Decision(State.STOPPED, (NoteExit(code), Finish("stopped", reason, code, warn=True)), reason)


@pytest.mark.parametrize("restart", POLICIES)
@pytest.mark.parametrize("code", [0, 1, 137])
def test_exit_before_first_serving_fails_the_start(restart: str, code: int) -> None:
    d = decide(State.STARTING, ChildExited(CHILD, code), facts(restart, served=False))
    assert d.state is State.FATAL and d.actions == (NoteExit(code), FailStart(code))


@pytest.mark.parametrize("state", [State.STARTING, State.RUNNING, State.UNHEALTHY])
@pytest.mark.parametrize("restart", POLICIES)
@pytest.mark.parametrize("served", [False, True])
def test_a_daemonized_child_is_named_then_fatal(state: State, restart: str, served: bool) -> None:
    d = decide(state, ChildExited(CHILD, 0), facts(restart, served, daemonized=True))
    assert d == Decision(State.FATAL, (NoteExit(0), Daemonized(), StopChild(),
                                       Finish("fatal", DAEMONIZED, 1, warn=True)), DAEMONIZED)


def test_an_exit_while_backing_off_has_no_child_to_be_about() -> None:
    assert decide(State.BACKOFF, ChildExited(CHILD, 1), facts(child=None)) == Decision(State.BACKOFF)


# ------------------------------------------------------------------ probes
@pytest.mark.parametrize("state", [State.STARTING, State.BACKOFF])
@pytest.mark.parametrize("ok", [True, False])
def test_probes_are_ignored_while_starting_or_backing_off(state: State, ok: bool) -> None:
    assert decide(state, ProbeResult(ok), facts(failures=2)) == Decision(state)


def test_a_healthy_probe_is_only_noted() -> None:
    probe = ProbeResult(True, 2.0, "200")
    assert decide(State.RUNNING, probe, facts()) == Decision(State.RUNNING, (NoteHealth(probe, 0),))


@pytest.mark.parametrize("state", [State.RUNNING, State.UNHEALTHY])
def test_recovery_resets_the_count_and_says_so(state: State) -> None:
    probe = ProbeResult(True, 2.0, "200")
    d = decide(state, probe, facts(failures=2))
    assert d == Decision(State.RUNNING, (NoteHealth(probe, 0, "health_ok"),), "")


def test_failures_below_the_threshold_are_counted() -> None:
    probe = ProbeResult(False, 1.0, "500")
    d = decide(State.RUNNING, probe, facts(failures=1, allowed=3))
    assert d == Decision(State.RUNNING, (NoteHealth(probe, 2, "health_failed"),))


@pytest.mark.parametrize("restart", ["on-failure", "always"])
def test_the_last_allowed_failure_restarts(restart: str) -> None:
    probe = ProbeResult(False, 1.0, "500")
    d = decide(State.RUNNING, probe, facts(restart, failures=2, allowed=3))
    reason = "3 failed health checks (500)"
    assert d == Decision(State.BACKOFF, (NoteHealth(probe, 3, "health_failed"), StopChild(), NoteKilled(reason),
                                         PlanRestart(reason)), reason)


@pytest.mark.parametrize("state", [State.RUNNING, State.UNHEALTHY])
def test_without_restarts_a_sick_child_is_marked_unhealthy(state: State) -> None:
    probe = ProbeResult(False, 1.0, "500")
    d = decide(state, probe, facts("no", failures=5, allowed=3))
    assert d == Decision(State.UNHEALTHY, (NoteHealth(probe, 6, "health_failed"),), "6 failed health checks (500)")


# ------------------------------------------------------------------ readiness
@pytest.mark.parametrize("served", [False, True])
def test_ready_means_running(served: bool) -> None:
    d = decide(State.STARTING, Ready(0.25), facts(served=served))
    assert d == Decision(State.RUNNING, (MarkServing(0.25),), "")


@pytest.mark.parametrize("state", [State.RUNNING, State.UNHEALTHY, State.BACKOFF])
def test_ready_and_timeout_only_matter_while_starting(state: State) -> None:
    assert decide(state, Ready(0.1), facts()) == Decision(state)
    assert decide(state, ReadyTimeout(), facts()) == Decision(state)


def test_not_ready_in_time_fails_a_first_start() -> None:
    d = decide(State.STARTING, ReadyTimeout(), facts(served=False))
    assert d == Decision(State.FATAL, (NoteListening(), StopChild(), FailStart(None)), "not ready in time")


def test_not_ready_in_time_after_serving_restarts() -> None:
    d = decide(State.STARTING, ReadyTimeout(), facts(served=True))
    reason = "not ready in time"
    assert d == Decision(State.BACKOFF, (StopChild(), NoteKilled(reason), PlanRestart(reason)), reason)


# ------------------------------------------------------------------ restart verdicts and backoff
def test_an_immediate_restart_spawns_now() -> None:
    d = decide(State.BACKOFF, RestartVerdict("exited with code 3", 0.0), facts(child=None))
    assert d == Decision(State.STARTING, (Restarting("exited with code 3", 0.0), Spawn()), "")


def test_a_delayed_restart_waits_in_backoff() -> None:
    d = decide(State.BACKOFF, RestartVerdict("exited with code 3", 1.5), facts(child=None))
    assert d == Decision(State.BACKOFF, (Restarting("exited with code 3", 1.5), WaitBackoff(1.5)),
                         "exited with code 3")


@pytest.mark.parametrize("conflict,before", [(True, "port_conflict"), (False, "")])
def test_a_refused_restart_is_fatal(conflict: bool, before: str) -> None:
    d = decide(State.BACKOFF, RestartVerdict("x", refused="no more", conflict=conflict), facts(child=None))
    assert d == Decision(State.FATAL, (StopChild(), Finish("fatal", "no more", 1, warn=True, event=before)),
                         "no more")


def test_backoff_elapsed_spawns() -> None:
    assert decide(State.BACKOFF, BackoffElapsed(), facts(child=None)) == Decision(State.STARTING, (Spawn(),), "")


@pytest.mark.parametrize("state", [State.STARTING, State.RUNNING, State.UNHEALTHY])
def test_verdicts_and_timers_only_matter_while_backing_off(state: State) -> None:
    assert decide(state, BackoffElapsed(), facts()) == Decision(state)
    assert decide(state, RestartVerdict("x", 0.0), facts()) == Decision(state)


# ------------------------------------------------------------------ a whole story, as the loop runs it
def test_two_illnesses_two_restarts() -> None:
    """After a health restart the new child is readied and watched, and a second illness
    restarts it again; the stopped child's late exit interrupts nothing."""
    state, served, failures = State.STARTING, False, 0
    child: Optional[int] = 1
    story: list[Event] = [Ready(0.1)]
    illness = [ProbeResult(False, 1.0, "timeout")] * 2
    for old in (1, 2):
        story += illness + [ChildExited(old, 143), Ready(0.1), ProbeResult(True, 1.0, "200")]
    seen: list[State] = []
    restarts = 0
    while story:
        event = story.pop(0)
        d = decide(state, event, Facts(restart="on-failure", child_pid=child, served=served,
                                       failures=failures, failures_allowed=2))
        state = d.state
        for action in d.actions:
            if isinstance(action, NoteHealth):
                failures = action.failures
            elif isinstance(action, MarkServing):
                served = True
            elif isinstance(action, StopChild):
                child = None
            elif isinstance(action, PlanRestart):
                story.insert(0, RestartVerdict(action.reason, 0.0))
            elif isinstance(action, Spawn):
                restarts, child, failures = restarts + 1, restarts + 2, 0
        seen.append(state)
    assert restarts == 2 and state is State.RUNNING and child == 3
    assert seen.count(State.RUNNING) >= 4
