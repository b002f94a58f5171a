"""The supervisor: lock, check, launch, wait until ready, supervise, restart, stop.

Signal handlers, the child's waiter thread and the health prober only put events in the
inbox; the loop takes them, asks ``decisions.decide`` what they mean in the current state,
and carries out the actions. A second stop signal skips the grace period. The pid file,
record, events and lock are kept true for the supervisor's whole life; every run that took
the lock ends with a final "stopped" or "fatal" event naming its reason.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import threading
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import psutil

from . import freeing, owners, ports, stale
from ..base import messages, safefile
from ..platform.current import platform
from ..base.frozen import replace
from .backoff import RestartTracker
from .decisions import (DAEMONIZED, Action, BackoffElapsed, ChildExited, Daemonized, Event, FailStart, Facts,
                        Finish, MarkServing, NoteExit, NoteHealth, NoteKilled, NoteListening, PlanRestart,
                        ProbeResult, Ready, ReadyTimeout, Restarting, RestartVerdict, Spawn, State, StopChild,
                        Stopping, StopSignal, WaitBackoff, decide)
from ..base.errors import AlreadyRunning, BadInput, NameTaken, NotReady, PortctlError, PortInUse
from ..base.errors import ChildExited as ChildExitedEarly
from .events import EventLog
from .identity import ProcRef, is_alive
from .inbox import Inbox
from .lock import PortLock, is_held
from .policy import remedy
from .runfiles import Record, RunDir
from .spec import ServerSpec
from .status import find_live
from .terminate import child_processes, descendants, stop_tree

VERIFY_FREE_S = 5.0
PORT_ATTEMPTS = 3  # dynamic ports: candidates tried when the child loses the bind race
READY_POLL_FIRST_S = 0.001  # readiness checks: 1 ms, then every 2 ms (a refused connect is ~50 us)
READY_POLL_MAX_S = 0.002
HEALTH_REFRESH_S = 60.0  # an unchanged health verdict is rewritten into the record this seldom


class Supervisor:
    """Runs one instance until it is stopped; ``run()`` returns the exit code.

    ``on_ready`` is called once, when the instance first serves (detached mode's handshake,
    the CLI's ready lines); without it, ``notify`` says the ready line. ``notify`` (progress
    lines) and ``warn`` go to the ``portctl`` logger unless given (the CLI passes its own
    printers).
    """

    def __init__(self, spec: ServerSpec, run_dir: RunDir, *, force: bool = False,
                 notify: Callable[[str], None] = logging.getLogger("portctl").info,
                 warn: Callable[[str], None] = logging.getLogger("portctl").warning,
                 on_ready: Optional[Callable[[Record], None]] = None) -> None:
        self.spec, self.run_dir, self.force = spec, run_dir, force
        self.notify, self.warn, self.on_ready = notify, warn, on_ready
        self._inbox = Inbox()
        self._early: list[StopSignal] = []  # stop signals that came before the child started
        self._state = State.STARTING
        self._served = False
        self._exit: Optional[int] = None
        self._final_sent = False
        self._record: Optional[Record] = None
        self._changes: dict[str, Any] = {}  # staged record changes (see _flush)
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._child_began = 0.0
        self.spawned = False  # a child was started: its log is worth showing on failure
        self._listening_elsewhere: list[int] = []  # not ready: the ports the tree listens on instead
        self._ready_deadline = self._backoff_until = 0.0
        self._poll_s = READY_POLL_FIRST_S
        self._tree_stopped = True  # nothing spawned yet
        self._reap_due = True  # SIGCHLD came since the last reaping (Windows has none, nor zombies)
        self._deferred: Optional[list[tuple[str, dict[str, Any]]]] = None  # events of a crash, until the fork
        self._port_free = True  # the port refused connections once the child's tree stopped
        self._farewell = ""  # said once the lock is released, after a stop signal
        self._health_failures = 0
        self._health_written_at = 0.0
        self._prober: Any = None  # health.Prober, only with --health
        self._tracker = RestartTracker(spec.backoff)
        self._events = EventLog(run_dir.path, spec.log_max_bytes, spec.log_backups)
        self._log: Any = None  # logs.RotatingLog for detached instances
        self._output: Any = None  # where the child's captured stdout and stderr go (logs.Sink)

    # ------------------------------------------------------------ choosing the port
    def run(self) -> int:
        try:
            ports.resolve_host(self.spec.host)
        except ValueError as exc:
            raise BadInput.for_host(self.spec.host, str(exc)) from None
        # Handlers stay installed until the files are gone and the lock released: a storm of
        # stop signals must never cut the clean-up short.
        with self._signals():
            try:
                if not self.spec.dynamic:
                    return self._run_on_port()
                return self._run_on_dynamic_port()
            except PortctlError as exc:
                self._final("fatal", exc.message)
                raise
            except BaseException as exc:
                self._final("fatal", f"supervisor failed: {exc!r}")
                raise

    def _run_on_dynamic_port(self) -> int:
        """Preferred port, then the range, then an OS-assigned one; a lost bind race moves on."""
        tried: set[int] = set()
        preferred = None if self.spec.auto_port and not self.spec.port_range else self.spec.port
        previous, why = preferred, messages.preferred_taken(preferred)
        for _ in range(PORT_ATTEMPTS):
            port = ports.unused_port(preferred, self.spec.port_range, self.spec.host,
                                     skip=lambda p: p in tried or self._locked(p))
            if not tried and preferred is not None and port != preferred:
                self.warn(messages.port_moved(preferred, port, ports.first_holder(preferred)))
            tried.add(port)
            self.spec = self.spec.with_port(port)
            if previous is not None and port != previous:
                self._event("port_changed", previous=previous, reason=why)
            try:
                return self._run_on_port()
            except (AlreadyRunning, PortInUse) as lost:
                self.warn(messages.port_race(port, lost.message))
                previous, why = port, lost.message
        raise PortInUse.none_found(sorted(tried))

    def _locked(self, port: int) -> bool:
        return is_held(self.run_dir.lock_file(port))

    def _run_on_port(self) -> int:
        port = self.spec.port
        lock = PortLock(self.run_dir.lock_file(port))
        if not lock.acquire():
            raise owners.lock_taken(self.run_dir, port, force=self.force)
        self._early += self._inbox.clear()  # a retry: forget the exit of the child that lost the race
        self._state, self._exit, self._changes = State.STARTING, None, {}
        name_lock: Optional[PortLock] = None
        try:
            name_lock = self._claim_name()
            stale.drop_stale(self.run_dir, port, notify=self.warn)  # we hold the lock: stale
            self._write_files()  # from here on `stop` can find us, even while we evict
            self._check_port()
            stop = self._stop_signal()
            if stop is not None:  # told to stop before the child ever started
                return self._dispatch(self._early.pop(0)) or 0
            platform.become_subreaper()
            return self._serve()
        finally:
            aside = self._remove_own_files()
            if name_lock is not None:  # released before the port's lock: a stop waits for that one
                name_lock.release()
            lock.release()
            if self._farewell:
                self.notify(self._farewell)
            self.run_dir.discard(aside)

    def _claim_name(self) -> PortLock:
        """Lock the instance's name for its life: names are unique among the live instances of
        the run dir. A name derived from the command that another one has becomes NAME-PORT."""
        taken = self.spec.name
        for name in self.spec.names():
            lock = PortLock(self.run_dir.name_lock_file(name))
            safefile.ensure_dir(lock.path.parent, 2)  # .portctl/names, never through a link
            if lock.acquire():
                if name != self.spec.name:
                    self.warn(messages.name_suffixed(taken, name))
                    self.spec = replace(self.spec, name=name)
                return lock
        raise NameTaken.by(taken, find_live(self.run_dir, taken))

    def _check_port(self) -> None:
        spec = self.spec
        if not ports.is_busy(spec.host, spec.port):
            return
        # The busy path is the slow one anyway: the spec is saved now, not once the child
        # runs, so the hint `restart --port P --force` has something to restart
        self.run_dir.write_spec(spec)
        if not self.force or spec.dynamic:  # a dynamic port moves on rather than evict
            holders = ports.holders(spec.port)
            raise PortInUse.held_by(spec.port, holders, remedy(holders), run_dir=str(self.run_dir.path))
        freeing.evict_holders(spec.port, spec.host, spec.grace_s, tokens=owners.tokens(self.run_dir),
                              run_dir=self.run_dir, notify=self.warn)

    # ------------------------------------------------------------ serving
    def _write_files(self) -> None:
        me = psutil.Process()
        log = str(self.run_dir.log_file(self.spec.name)) if self.spec.detached else None
        self._record = Record(spec=self.spec, supervisor=ProcRef.of(me), child=None, started_at=_now_iso(),
                              run_dir=str(self.run_dir.path), token=os.urandom(16).hex(), state="starting",
                              log=log)
        self._write_record()
        self.run_dir.write_pid(self.spec.port, me.pid)

    def _serve(self) -> int:
        try:
            self._open_log()
            self._spawn()
            self.run_dir.write_spec(self.spec)  # once the child runs: its fsync delays no start
            self._flush()
            return self._loop()
        finally:
            self._stop_child()
            self._close_log()

    def _loop(self) -> int:
        """Take each event, let ``decide`` say what it means, carry that out."""
        while True:
            code = self._dispatch(self._next_event())
            if code is not None:
                return code

    def _dispatch(self, event: Event) -> Optional[int]:
        """Carry out the decision for ``event``; an action may answer with a follow-up event
        (a restart verdict), decided at once. The record is written once, at the end, so a
        restart forks before it touches the record; so are the events of a crash (exited,
        restarting), when a restart follows at once."""
        pending: Optional[Event] = event
        while pending is not None:
            decision = decide(self._state, pending, self._facts(pending))
            if isinstance(pending, ChildExited) and any(isinstance(a, PlanRestart) for a in decision.actions):
                self._deferred = []
            self._state, pending = decision.state, None
            if decision.reason is not None:
                self._change(state=decision.state.value, reason=decision.reason)
            for action in decision.actions:
                pending = self._do(action) or pending
        self._write_deferred()
        self._flush()
        return self._exit

    def _facts(self, event: Event) -> Facts:
        child = self._child.pid if self._child is not None else None
        daemonized = (isinstance(event, ChildExited) and event.code == 0 and event.pid == child
                      and self._descendants_live_on())
        return Facts(restart=self.spec.restart, child_pid=child, served=self._served,
                     failures=self._health_failures, failures_allowed=self.spec.health_failures,
                     daemonized=daemonized)

    def _descendants_live_on(self) -> bool:
        """After the child's exit: does a process it started still run (adopted by us)?"""
        return any(is_alive(proc) for proc in child_processes(os.getpid()))

    def _do(self, action: Action) -> Optional[Event]:  # one branch per action
        if isinstance(action, Spawn):
            self._spawn()
        elif isinstance(action, StopChild):
            self._write_deferred()  # not held for a grace period
            self._stop_child()
        elif isinstance(action, Stopping):
            self.notify(messages.stopping())
            self._flush()  # `status` shows "stopping" for the whole grace period
            self._event("stopping", reason=action.reason)
        elif isinstance(action, NoteExit):
            self._event("exited", code=action.code)
            self._child = None
            self._change(last_exit={"code": action.code, "at": _now_iso(), "reason": "exited"})
        elif isinstance(action, NoteKilled):
            self._change(last_exit={"code": None, "at": _now_iso(), "reason": action.reason})
        elif isinstance(action, NoteHealth):
            self._note_health(action)
        elif isinstance(action, Daemonized):
            self._event("daemonized", reason=DAEMONIZED)
        elif isinstance(action, PlanRestart):
            return self._verdict(action.reason)
        elif isinstance(action, Restarting):
            self._event("restarting", reason=action.reason, delay_s=round(action.delay_s, 3),
                        restarts=self._tracker.restarts)
            self._change(restarts=self._tracker.restarts)
        elif isinstance(action, WaitBackoff):
            self._backoff_until = time.monotonic() + action.delay_s
        elif isinstance(action, MarkServing):
            self._serving(action.elapsed_s)
        elif isinstance(action, NoteListening):
            tree = (p.pid for p in descendants(os.getpid()))
            self._listening_elsewhere = sorted(ports.listening_ports(tree) - {self.spec.port})
        elif isinstance(action, FailStart):
            self._fail_start(action.code)
        elif isinstance(action, Finish):
            self._finish(action)
        return None

    def _spawn(self) -> None:
        assert self._record is not None
        env = self.spec.child_env(self._record.token, str(self.run_dir.path))
        try:
            cwd = Path(self.spec.cwd) if self.spec.cwd else self.run_dir.path  # where `start` ran
            child = platform.spawn(self.spec.argv(), env, cwd, capture=self._output is not None)
        except OSError as exc:
            raise PortctlError.spawn_failed(self.spec.argv(), exc.strerror or str(exc))
        finally:
            self._write_deferred()
        now = time.monotonic()
        self._child, self._child_began, self._health_failures = child, now, 0
        self._ready_deadline, self._poll_s = now + self.spec.ready_timeout_s, READY_POLL_FIRST_S
        self.spawned = True
        self._tree_stopped = False
        threading.Thread(target=lambda: self._inbox.put(ChildExited(child.pid, _exit_code(child.wait()))),
                         daemon=True).start()
        self._change(child=ProcRef.of_pid(child.pid), state="starting", restarts=self._tracker.restarts)
        self._event("started")
        if self._output is not None:  # read only now: the child's first lines come after "started"
            from .logs import pump

            threading.Thread(target=pump, args=(child.stdout, self._output), daemon=True).start()

    def _ready(self) -> bool:
        """One readiness check: TCP accept by our own tree, or HTTP 2xx with --health."""
        spec = self.spec
        if spec.health:
            from .health import health_url, probe

            return probe(health_url(spec.health, spec.host, spec.port), spec.health_timeout_s).ok
        return ports.accepts(spec.host, spec.port, 0.25) and self._ours_listen()

    def _ours_listen(self) -> bool:
        """Whoever accepted must be our child's tree, not a process that took the port first."""
        mine = {p.pid for p in descendants(os.getpid())}
        return any(pid in mine for pid, _, _ in platform.listeners(self.spec.port, among=mine))

    def _fail_start(self, code: Optional[int]) -> None:
        """Before it ever served, the child exited (``code``) or was not ready in time."""
        if code is None:
            raise NotReady.on_port(self.spec.port, self.spec.host, self.spec.ready_timeout_s,
                                   self._listening_elsewhere)
        self._diagnose_bind_failure()
        raise ChildExitedEarly.early(code)

    def _serving(self, elapsed_s: float) -> None:
        assert self._record is not None and self._child is not None
        self._event("ready", elapsed_ms=round(elapsed_s * 1000, 1))
        if self._served:
            return
        self._served = True
        self._flush()  # the handshake hands out the record: it names the child
        if self.on_ready is not None:
            self.on_ready(self._record)
        else:
            url = ports.instance_url(self.spec.host, self.spec.port)
            self.notify(messages.ready(url, self._record.supervisor.pid, self._child.pid, elapsed_s))
        if self.spec.health:
            from .health import Prober, health_url

            self._prober = Prober(health_url(self.spec.health, self.spec.host, self.spec.port),
                                  self.spec.health_interval_s, self.spec.health_timeout_s,
                                  lambda result: self._inbox.put(ProbeResult(result.ok, result.latency_ms,
                                                                             result.detail)))
            self._prober.start()

    def _note_health(self, noted: NoteHealth) -> None:
        """Count the probe; rewrite the record only when the verdict changed (or, at most
        every HEALTH_REFRESH_S, to refresh the latency): probes may come every 0.1 s."""
        result, self._health_failures = noted.result, noted.failures
        if noted.event == "health_failed":
            self._event("health_failed", failures=noted.failures, detail=result.detail)
        elif noted.event == "health_ok":
            self._event("health_ok", latency_ms=result.latency_ms)
        assert self._record is not None
        last = self._changes.get("last_health", self._record.last_health) or {}
        now = time.monotonic()
        if (last.get("ok"), last.get("detail")) != (result.ok, result.detail) \
                or now - self._health_written_at >= HEALTH_REFRESH_S:
            self._health_written_at = now
            self._change(last_health={"ok": result.ok, "latency_ms": result.latency_ms,
                                      "detail": result.detail, "at": _now_iso()})

    def _verdict(self, reason: str) -> RestartVerdict:
        """May the child restart, and when? A stranger on the port or a spent budget refuse."""
        conflict = self._port_conflict()
        if conflict:
            return RestartVerdict(reason, refused=conflict, conflict=True)
        now = time.monotonic()
        delay = self._tracker.next_delay(now, now - self._child_began)
        if delay is None:
            policy = self.spec.backoff
            return RestartVerdict(reason, refused=messages.too_many_restarts(policy.max_restarts, policy.window_s))
        return RestartVerdict(reason, delay_s=delay)

    def _port_conflict(self) -> str:
        """If a process outside our tree holds the port, the child cannot bind: name it.
        Our own verified orphans are reclaimed instead (the port comes back). A port that can
        be bound needs no look at its holders (the fast path after a crash)."""
        if platform.can_bind(self.spec.host, self.spec.port):
            return ""
        holders = self._foreign_holders()
        if not holders:
            return ""
        assert self._record is not None
        if stale.reclaim_orphans(self._record, notify=self.warn) and not self._foreign_holders():
            return ""
        return messages.port_in_use(self.spec.port, holders)[0]

    def _foreign_holders(self) -> list[ports.Holder]:
        mine = {p.pid for p in descendants(os.getpid())}
        return [h for h in ports.holders(self.spec.port) if h.pid not in mine]

    def _diagnose_bind_failure(self) -> None:
        """The child died before listening: if another process holds the port, say so (exit 4)."""
        holders = self._foreign_holders()
        if holders:
            self._event("port_conflict", holders=[h.pid for h in holders])
            raise PortInUse.held_by(self.spec.port, holders, remedy(holders), run_dir=str(self.run_dir.path))

    def _finish(self, finish: Finish) -> None:
        """Leave the loop with ``finish.code``, after the final event."""
        if finish.event:
            self._event(finish.event, reason=finish.reason)
        self._final(finish.kind, finish.reason)
        if finish.kind == "stopped" and not finish.warn:  # a stop signal
            self._farewell = messages.stopped_free(self.spec.port, self._port_free)
        if finish.warn:
            self.warn(messages.fatal(self.spec.port, finish.reason) if finish.kind == "fatal"
                      else messages.exited(finish.code)[0])
        self._exit = finish.code

    def _final(self, kind: str, reason: str) -> None:
        """The last event of every run that took the lock: "stopped" or "fatal", and why."""
        if self._record is None or self._final_sent:
            return
        self._final_sent = True
        self._write_deferred()
        self._event(kind, reason=reason)

    def _stop_child(self) -> None:
        """Stop the child's whole tree (group, left-the-group descendants, adopted orphans);
        once it is stopped, nothing is left to do until the next spawn."""
        if self._tree_stopped:
            return
        leader = self._child.pid if self._child is not None else None
        self._child = None
        began = time.monotonic()
        if stop_tree(child_processes(os.getpid()), self.spec.grace_s, group_leader=leader,
                     hurry=self._second_signal, signame=self.spec.stop_signal):
            self.notify(messages.killed_after(self.spec.grace_s, time.monotonic() - began < self.spec.grace_s))
        platform.reap_adopted(exclude=-1)
        self._port_free = ports.wait_refusing(self.spec.host, self.spec.port, time.monotonic() + VERIFY_FREE_S)
        self._tree_stopped = True

    # ------------------------------------------------------------ events
    @contextmanager
    def _signals(self) -> Iterator[None]:
        def record(signum: int, _frame: object) -> None:
            self._inbox.put(StopSignal(signum, signal.Signals(signum).name))

        previous = {sig: signal.signal(sig, record) for sig in platform.STOP_SIGNALS}
        child_signal = getattr(signal, "SIGCHLD", None)  # an adopted orphan exited: reap it
        if child_signal is not None:
            previous[child_signal] = signal.signal(child_signal, self._child_signal)
        try:
            yield
        finally:
            if self._prober is not None:
                self._prober.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _child_signal(self, _signum: int, _frame: object) -> None:
        self._reap_due = True
        self._inbox.wake()

    def _next_event(self) -> Event:
        """The next event: from the inbox, else the state's own clock (readiness checks while
        starting, the end of a backoff delay), waiting on the inbox in between."""
        while True:
            if self._early:
                return self._early.pop(0)
            event = self._inbox.take()
            if event is not None:
                return event
            if self._stop_requested():
                return StopSignal(int(signal.SIGTERM), "SIGTERM")
            due = self._due()
            if due is not None:
                return due
            # adopted orphans (we are a subreaper, or a container's PID 1) that exited are ours
            # to reap, while the child runs too: never a pile of zombies. Only after a SIGCHLD:
            # not on each readiness check while a child starts.
            if self._reap_due:
                self._reap_due = False
                platform.reap_adopted(exclude=self._child.pid if self._child is not None else -1)
            event = self._inbox.take(self._wait_s())
            if event is not None:
                return event

    def _due(self) -> Optional[Event]:
        now = time.monotonic()
        if self._state is State.STARTING:
            if self._ready():
                return Ready(time.monotonic() - self._child_began)
            if time.monotonic() >= self._ready_deadline:
                return ReadyTimeout()
        elif self._state is State.BACKOFF and now >= self._backoff_until:
            return BackoffElapsed()
        return None

    def _wait_s(self) -> Optional[float]:
        """How long the inbox may keep us waiting: the state's own clock, else until the
        platform's wake-up (None: until an event, or SIGCHLD, comes)."""
        if self._state is State.STARTING:
            wait: Optional[float] = max(0.0, min(self._poll_s, self._ready_deadline - time.monotonic()))
            self._poll_s = min(self._poll_s * 2, READY_POLL_MAX_S)
        elif self._state is State.BACKOFF:
            wait = max(0.0, self._backoff_until - time.monotonic())
        else:
            wait = None
        wake = platform.WAKE_INTERVAL_S
        return wake if wait is None else (wait if wake is None else min(wait, wake))

    def _stop_requested(self) -> bool:
        """A stop request that came by file, not by signal (Windows)."""
        token = self._record.token if self._record is not None else ""
        return bool(platform.stop_requested(self.run_dir.path, self.spec.port, token))

    def _stop_signal(self) -> Optional[StopSignal]:
        """A stop signal that has arrived before the child started (kept for the loop)."""
        self._early += self._inbox.clear()
        if not self._early and self._stop_requested():
            self._early.append(StopSignal(int(signal.SIGTERM), "SIGTERM"))
        return self._early[0] if self._early else None

    def _second_signal(self) -> bool:
        """During a stop: has another stop signal arrived? (Exits and probes are not one.)"""
        return self._inbox.take_stop() is not None or self._stop_requested()

    def _event(self, kind: str, **fields: Any) -> None:
        """Emit an event (and its line in the log); a failing write (full disk) is dropped:
        telling must never stop supervising."""
        if self._deferred is not None:  # a crash's, written once the restart has forked
            fields.setdefault("child_pid", self._child.pid if self._child is not None else None)
            self._deferred.append((kind, fields))
            return
        child = fields.pop("child_pid", self._child.pid if self._child is not None else None)
        try:
            self._events.emit(kind, name=self.spec.name, port=self.spec.port, pid=os.getpid(),
                              child_pid=child, **fields)
        except OSError:
            pass
        if self._log is not None:
            details = " ".join(f"{k}={v}" for k, v in fields.items())
            self._log.lifecycle(f"{kind} {details}".strip())

    def _write_deferred(self) -> None:
        deferred, self._deferred = self._deferred or [], None
        for kind, fields in deferred:
            self._event(kind, **fields)

    # ------------------------------------------------------------ run files and logs
    def _change(self, **changes: Any) -> None:
        """Stage changes to the record; ``_flush`` writes them."""
        self._changes.update(changes)

    def _flush(self) -> None:
        """Write the staged changes, if they change anything; a failing write (full disk) is
        tolerated: the record catches up on the next one."""
        assert self._record is not None
        if not self._changes:
            return
        record = self._record.updated(**self._changes)
        self._changes = {}
        if record == self._record:
            return
        self._record = record
        try:
            self._write_record()
        except OSError:
            pass

    def _write_record(self) -> None:
        assert self._record is not None
        self.run_dir.write_record(self._record)

    def _remove_own_files(self) -> list[Path]:
        """We still hold the lock, so this port's files are ours. A fatal record stays, so
        `status` can say why; the next start or `clean` removes it. So does the record of a
        tree we could not stop: `stop`, `start` and `clean` find its leftovers by its token.
        Returns what was set aside, to be deleted once the lock is released."""
        if self._record is None:
            return []
        if self._record.state == "fatal" or not self._tree_stopped:
            self.run_dir.pid_file(self.spec.port).unlink(missing_ok=True)
            return []
        return self.run_dir.set_aside(self.spec.port)

    def _open_log(self) -> None:
        if self.spec.detached:
            from .logs import RotatingLog

            self._log = self._output = RotatingLog(self.run_dir.log_file(self.spec.name), self.spec.log_max_bytes,
                                                   self.spec.log_backups, timestamps=self.spec.timestamps)
        elif self.spec.timestamps:  # the foreground's child writes through us, each line stamped
            from .logs import StampedEcho

            self._output = StampedEcho()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()


def run_as_process(supervisor: Supervisor, *, exiting: bool) -> int:
    """Run ``supervisor`` as this process's whole job (the CLI's foreground `start`, the
    daemon). Stop signals are ignored outside ``run()`` — inside it they are recorded — so a
    storm of them (Ctrl+C held down) cannot kill the process after it has stopped cleanly.
    With ``exiting`` the process ends right after, so they stay ignored on the way out;
    otherwise (portctl called in-process, as click's CliRunner does) the caller gets its
    dispositions back: every process it starts later would inherit SIG_IGN."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in platform.STOP_SIGNALS}
    try:
        return supervisor.run()
    finally:
        if not exiting:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _exit_code(returncode: int) -> int:
    """A child killed by signal N exits 128+N, as a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
