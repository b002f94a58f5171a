"""The supervisor: lock, check, launch, wait until ready, supervise, restart, stop.

Signal handlers, the child's waiter thread and the health prober only queue what happened;
the loop acts. A second stop signal skips the grace period. The pid file, record, events and
lock are kept true for the supervisor's whole life.
"""
from __future__ import annotations

import queue
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

from . import instances, output, ports, safefile
from ._platform import platform
from ._record import replace
from .backoff import RestartTracker
from .errors import AlreadyRunning, BadInput, ChildExited, NameTaken, NotReady, PortctlError, PortInUse
from .events import EventLog
from .identity import ProcRef
from .lock import PortLock, is_held
from .runfiles import Record, RunDir
from .spec import ServerSpec
from .status import find_live
from .terminate import child_processes, descendants, stop_tree

VERIFY_FREE_S = 5.0
PORT_ATTEMPTS = 3  # dynamic ports: candidates tried when the child loses the bind race
Event = tuple[str, Any]  # ("signal", signum) | ("exit", (pid, rc)) | ("health", HealthResult)


class Supervisor:
    """Runs one instance until it is stopped; ``run()`` returns the exit code.

    ``on_ready`` is called once, when the instance first serves (detached mode's handshake).
    """

    def __init__(self, spec: ServerSpec, run_dir: RunDir, *, force: bool = False,
                 notify: Callable[[str], None] = output.say,
                 warn: Callable[[str], None] = output.warn,
                 on_ready: Callable[[Record], None] = lambda record: None) -> None:
        self.spec, self.run_dir, self.force = spec, run_dir, force
        self.notify, self.warn, self.on_ready = notify, warn, on_ready
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._pending: list[Event] = []
        self._record: Optional[Record] = None
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._child_began = 0.0
        self.spawned = False  # a child was started: its log is worth showing on failure
        self._tree_stopped = True  # nothing spawned yet
        self._health_failures = 0
        self._prober: Any = None  # health.Prober, only with --health
        self._tracker = RestartTracker(spec.backoff)
        self._events = EventLog(run_dir.path)
        self._log: Any = None  # logs.RotatingLog for detached instances

    # ------------------------------------------------------------ choosing the port
    def run(self) -> int:
        try:
            ports.resolve_host(self.spec.host)
        except ValueError as exc:
            raise BadInput(*output.bad_host(self.spec.host, str(exc))) from None
        # Handlers stay installed until the files are gone and the lock released: a storm of
        # stop signals must never cut the clean-up short.
        with self._signals():
            if not self.spec.dynamic:
                return self._run_on_port()
            return self._run_on_dynamic_port()

    def _run_on_dynamic_port(self) -> int:
        """Preferred port, then the range, then an OS-assigned one; a lost bind race moves on."""
        tried: set[int] = set()
        preferred = None if self.spec.auto_port and not self.spec.port_range else self.spec.port
        previous, why = preferred, output.preferred_taken(preferred)
        for _ in range(PORT_ATTEMPTS):
            port = ports.find_free_port(preferred, self.spec.port_range, self.spec.host,
                                        skip=lambda p: p in tried or self._locked(p))
            tried.add(port)
            self.spec = self.spec.with_port(port)
            if previous is not None and port != previous:
                self._event("port_changed", previous=previous, reason=why)
            try:
                return self._run_on_port()
            except (AlreadyRunning, PortInUse) as lost:
                self.warn(output.port_race(port, lost.message))
                previous, why = port, lost.message
        raise PortInUse(*output.no_port_found(sorted(tried)))

    def _locked(self, port: int) -> bool:
        return is_held(self.run_dir.lock_file(port))

    def _run_on_port(self) -> int:
        port = self.spec.port
        lock = PortLock(self.run_dir.lock_file(port))
        if not lock.acquire():
            raise instances.lock_taken(self.run_dir, port, force=self.force)
        self._has_event()  # a retry: forget the exit of the child that lost the race
        self._pending = [event for event in self._pending if event[0] == "signal"]
        name_lock: Optional[PortLock] = None
        try:
            name_lock = self._claim_name()
            instances.drop_stale(self.run_dir, port, notify=self.warn)  # we hold the lock: stale
            self._write_files()  # from here on `stop` can find us, even while we evict
            self._check_port()
            stop = self._stop_signal()
            if stop is not None:  # told to stop before the child ever started
                return self._shutdown(signal.Signals(stop).name)
            platform.become_subreaper()
            return self._serve()
        finally:
            self._remove_own_files()
            if name_lock is not None:  # released before the port's lock: a stop waits for that one
                name_lock.release()
            lock.release()

    def _claim_name(self) -> PortLock:
        """Lock the instance's name for its life: names are unique among the live instances of
        the run dir. A name derived from the command that another one has becomes NAME-PORT."""
        taken = self.spec.name
        for name in self.spec.names():
            lock = PortLock(self.run_dir.name_lock_file(name))
            safefile.ensure_dir(lock.path.parent, 2)  # .portctl/names, never through a link
            if lock.acquire():
                if name != self.spec.name:
                    self.warn(output.name_suffixed(taken, name))
                    self.spec = replace(self.spec, name=name)
                return lock
        raise NameTaken(*output.name_taken(taken, find_live(self.run_dir, taken)))

    def _check_port(self) -> None:
        spec = self.spec
        if not ports.is_busy(spec.host, spec.port):
            return
        if not self.force or spec.dynamic:  # a dynamic port moves on rather than evict
            holders = ports.holders(spec.port)
            raise PortInUse(*output.port_in_use(spec.port, holders, run_dir=str(self.run_dir.path)),
                            holders=tuple(holders))
        instances.free_port(spec.port, spec.host, spec.grace_s, tokens=instances.tokens(self.run_dir),
                            run_dir=self.run_dir, notify=self.warn)

    # ------------------------------------------------------------ serving
    def _write_files(self) -> None:
        me = psutil.Process()
        log = str(self.run_dir.log_file(self.spec.name)) if self.spec.detached else None
        self._record = Record(self.spec, ProcRef.of(me), None, _now_iso(), str(self.run_dir.path),
                              os.urandom(16).hex(), "starting", log=log)
        self._write_record()
        self.run_dir.write_pid(self.spec.port, me.pid)
        self.run_dir.write_spec(self.spec)

    def _serve(self) -> int:
        began = time.monotonic()
        try:
            self._open_log()
            self._spawn()
            outcome = self._wait_ready(began)
            if outcome == "timeout":
                self._event("fatal", reason="not ready in time")
                elsewhere = ports.listening_ports(p.pid for p in descendants(os.getpid())) - {self.spec.port}
                raise NotReady(*output.not_ready(self.spec.port, self.spec.host, self.spec.ready_timeout_s,
                                                 sorted(elsewhere)))
            if outcome == "event":
                return self._first_start_failed()
            self._serving(time.monotonic() - began)
            return self._loop()
        finally:
            self._stop_child()
            self._close_log()

    def _spawn(self) -> None:
        assert self._record is not None
        env = self.spec.child_env(self._record.token, str(self.run_dir.path))
        try:
            cwd = Path(self.spec.cwd) if self.spec.cwd else self.run_dir.path  # where `start` ran
            child = platform.spawn(self.spec.argv(), env, cwd, capture=self._log is not None)
        except OSError as exc:
            raise PortctlError(*output.spawn_failed(self.spec.argv(), exc.strerror or str(exc)))
        self._child, self._child_began, self._health_failures = child, time.monotonic(), 0
        self.spawned = True
        self._tree_stopped = False
        if self._log is not None:
            from .logs import pump

            for stream in (child.stdout, child.stderr):
                threading.Thread(target=pump, args=(stream, self._log), daemon=True).start()
        threading.Thread(target=lambda: self._queue.put(("exit", (child.pid, child.wait()))),
                         daemon=True).start()
        self._update(child=ProcRef.of_pid(child.pid), state="starting", restarts=self._tracker.restarts)
        self._event("started")

    def _wait_ready(self, began: float) -> str:
        """"ready" once the child serves (TCP accept, or HTTP 2xx with --health), "event" when
        an exit or a stop signal came first, "timeout" at the deadline."""
        spec = self.spec
        deadline = began + spec.ready_timeout_s
        if spec.health:
            from .health import health_url, probe

            url = health_url(spec.health, spec.host, spec.port)
            ready = ports.wait_until(lambda: probe(url, spec.health_timeout_s).ok, deadline,
                                     abort=self._has_event)
        else:
            ready = ports.wait_until(lambda: ports.accepts(spec.host, spec.port, 0.25) and self._ours_listen(),
                                     deadline, abort=self._has_event)
        if ready:
            return "ready"
        return "event" if self._has_event() else "timeout"

    def _ours_listen(self) -> bool:
        """Whoever accepted must be our child's tree, not a process that took the port first."""
        mine = {p.pid for p in descendants(os.getpid())}
        return any(pid in mine for pid, _, _ in platform.listeners(self.spec.port, among=mine))

    def _first_start_failed(self) -> int:
        """Before it ever served, the child exited or we were told to stop."""
        kind, value = next(e for e in self._pending if e[0] != "health")
        if kind == "signal":
            return self._shutdown(signal.Signals(value).name)
        code = _exit_code(value[1])
        self._event("exited", code=code)
        self._diagnose_bind_failure()
        if code:
            raise ChildExited(*output.exited_early(code), code=code)
        raise ChildExited(*output.exited_zero_early(), code=1)

    def _serving(self, elapsed_s: float) -> None:
        assert self._record is not None and self._child is not None
        self._update(state="running", reason="")
        self._event("ready", elapsed_ms=round(elapsed_s * 1000, 1))
        url = output.instance_url(self.spec.host, self.spec.port)
        self.notify(output.ready(url, self._record.supervisor.pid, self._child.pid, elapsed_s))
        self.on_ready(self._record)
        if self.spec.health and self._prober is None:
            from .health import Prober, health_url

            self._prober = Prober(health_url(self.spec.health, self.spec.host, self.spec.port),
                                  self.spec.health_interval_s, self.spec.health_timeout_s,
                                  lambda result: self._queue.put(("health", result)))
            self._prober.start()

    # ------------------------------------------------------------ the loop
    def _loop(self) -> int:
        while True:
            kind, value = self._take_event(block=True)  # type: ignore[misc]
            if kind == "signal":
                return self._shutdown(signal.Signals(value).name)
            if kind == "health":
                code = self._on_health(value)
            elif self._child is not None and value[0] == self._child.pid:
                code = self._on_exit(_exit_code(value[1]))
            else:
                code = None  # the exit of a child we already replaced
            if code is not None:
                return code

    def _on_exit(self, code: int) -> Optional[int]:
        self._event("exited", code=code)
        self._child = None
        self._update(last_exit={"code": code, "at": _now_iso(), "reason": "exited"})
        wanted = self.spec.restart == "always" or (self.spec.restart == "on-failure" and code != 0)
        if not wanted:
            self.warn(output.exited(code)[0])
            return code
        return self._restart(f"exited with code {code}")

    def _on_health(self, result: Any) -> Optional[int]:  # a health.HealthResult
        assert self._record is not None
        if self._record.state not in ("running", "unhealthy"):
            return None  # a probe of a child that is restarting says nothing new
        health = {"ok": result.ok, "latency_ms": result.latency_ms, "detail": result.detail, "at": _now_iso()}
        self._update(last_health=health)
        if result.ok:
            if self._health_failures:
                self._health_failures = 0
                self._update(state="running", reason="")
                self._event("health_ok", latency_ms=result.latency_ms)
            return None
        self._health_failures += 1
        self._event("health_failed", failures=self._health_failures, detail=result.detail)
        if self._health_failures < self.spec.health_failures:
            return None
        reason = f"{self._health_failures} failed health checks ({result.detail})"
        if self.spec.restart == "no":
            self._update(state="unhealthy", reason=reason)
            return None
        self._stop_child()
        self._update(last_exit={"code": None, "at": _now_iso(), "reason": reason})
        return self._restart(reason)

    def _restart(self, reason: str) -> Optional[int]:
        """Back off, then start the child again; an exit code when we must give up instead."""
        conflict = self._port_conflict()
        if conflict:
            return self._fatal(conflict, event="port_conflict")
        uptime = time.monotonic() - self._child_began
        delay = self._tracker.next_delay(time.monotonic(), uptime)
        if delay is None:
            policy = self.spec.backoff
            return self._fatal(output.too_many_restarts(policy.max_restarts, policy.window_s))
        if delay > 0:  # an immediate restart goes straight to "starting": nothing to show meanwhile
            self._update(state="backoff", reason=reason, restarts=self._tracker.restarts)
        self._event("restarting", reason=reason, delay_s=round(delay, 3), restarts=self._tracker.restarts)
        stop = self._sleep(delay)
        if stop is not None:
            return self._shutdown(signal.Signals(stop[1]).name)
        began = time.monotonic()
        self._spawn()
        outcome = self._wait_ready(began)
        if outcome == "timeout":
            self._stop_child()
            return self._restart("not ready in time")
        if outcome == "ready":
            self._update(state="running", reason="")
            self._event("ready", elapsed_ms=round((time.monotonic() - began) * 1000, 1))
        return None  # on "event", an exit or a signal is pending: the loop handles it

    def _port_conflict(self) -> str:
        """If a process outside our tree holds the port, the child cannot bind: name it.
        Our own verified orphans are reclaimed instead (the port comes back)."""
        if not ports.is_busy(self.spec.host, self.spec.port):
            return ""
        holders = self._foreign_holders()
        if not holders:
            return ""
        assert self._record is not None
        if instances.reclaim_orphans(self._record, notify=self.warn) and not self._foreign_holders():
            return ""
        return output.port_in_use(self.spec.port, holders)[0]

    def _foreign_holders(self) -> list[ports.Holder]:
        mine = {p.pid for p in descendants(os.getpid())}
        return [h for h in ports.holders(self.spec.port) if h.pid not in mine]

    def _diagnose_bind_failure(self) -> None:
        """The child died before listening: if another process holds the port, say so (exit 4)."""
        holders = self._foreign_holders()
        if holders:
            self._event("port_conflict", holders=[h.pid for h in holders])
            raise PortInUse(*output.port_in_use(self.spec.port, holders, run_dir=str(self.run_dir.path)),
                            holders=tuple(holders))

    def _fatal(self, reason: str, event: str = "fatal") -> int:
        self._update(state="fatal", reason=reason)
        if event != "fatal":
            self._event(event, reason=reason)
        self._event("fatal", reason=reason)
        self.warn(output.fatal(self.spec.port, reason))
        return 1

    def _shutdown(self, why: str) -> int:
        self.notify(output.stopping(self.spec.port, why))
        self._update(state="stopping", reason=why)
        self._event("stopping", reason=why)
        self._stop_child()
        self._event("stopped")
        return 0

    def _stop_child(self) -> None:
        """Stop the child's whole tree (group, left-the-group descendants, adopted orphans);
        once it is stopped, nothing is left to do until the next spawn."""
        if self._tree_stopped:
            return
        leader = self._child.pid if self._child is not None else None
        self._child = None
        stop_tree(child_processes(os.getpid()), self.spec.grace_s, group_leader=leader,
                  hurry=self._second_signal)
        platform.reap_adopted(exclude=-1)
        ports.wait_refusing(self.spec.host, self.spec.port, time.monotonic() + VERIFY_FREE_S)
        self._tree_stopped = True

    # ------------------------------------------------------------ events
    @contextmanager
    def _signals(self) -> Iterator[None]:
        def record(signum: int, _frame: object) -> None:
            self._queue.put(("signal", signum))

        previous = {sig: signal.signal(sig, record) for sig in platform.STOP_SIGNALS}
        try:
            yield
        finally:
            if self._prober is not None:
                self._prober.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _take_event(self, block: bool, timeout_s: Optional[float] = None) -> Optional[Event]:
        """The next event; with ``block``, wait (up to ``timeout_s``, None = for ever)."""
        if self._pending:
            return self._pending.pop(0)
        wake = platform.WAKE_INTERVAL_S
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = left if wake is None else (wake if left is None else min(wake, left))
            try:
                return self._queue.get(block=block, timeout=step if block else None)
            except queue.Empty:
                if self._stop_requested():
                    return ("signal", int(signal.SIGTERM))
                if not block or (deadline is not None and time.monotonic() >= deadline):
                    return None

    def _sleep(self, seconds: float) -> Optional[Event]:
        """Wait out a backoff delay; only a stop signal (returned) cuts it short. Other
        events are kept, in order, for the loop."""
        deadline = time.monotonic() + seconds
        kept: list[Event] = []
        try:
            while time.monotonic() < deadline:
                event = self._take_event(block=True, timeout_s=deadline - time.monotonic())
                if event is None:
                    return None
                if event[0] == "signal":
                    return event
                kept.append(event)
            return None
        finally:
            self._pending[:0] = kept

    def _has_event(self) -> bool:
        """Moves whatever has happened into the pending list; True if it holds an exit or a
        stop request (health results do not count)."""
        while True:
            try:
                self._pending.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if self._stop_requested():
            self._pending.append(("signal", int(signal.SIGTERM)))
        return any(kind != "health" for kind, _ in self._pending)

    def _stop_requested(self) -> bool:
        """A stop request that came by file, not by signal (Windows)."""
        token = self._record.token if self._record is not None else ""
        return bool(platform.stop_requested(self.run_dir.path, self.spec.port, token))

    def _stop_signal(self) -> Optional[int]:
        """A stop signal that has arrived (kept pending), or None."""
        self._has_event()
        return next((value for kind, value in self._pending if kind == "signal"), None)

    def _second_signal(self) -> bool:
        """During a stop: has another stop signal arrived? (Exits and probes are not one.)"""
        while True:
            event = self._take_event(block=False)
            if event is None:
                return False
            if event[0] == "signal":
                return True

    def _event(self, kind: str, **fields: Any) -> None:
        child = self._child.pid if self._child is not None else None
        self._events.emit(kind, name=self.spec.name, port=self.spec.port, pid=os.getpid(),
                          child_pid=child, **fields)
        if self._log is not None:
            details = " ".join(f"{k}={v}" for k, v in fields.items())
            self._log.lifecycle(f"{kind} {details}".strip())

    # ------------------------------------------------------------ run files and logs
    def _update(self, **changes: Any) -> None:
        assert self._record is not None
        self._record = self._record.updated(**changes)
        self._write_record()

    def _write_record(self) -> None:
        assert self._record is not None
        self.run_dir.write_record(self._record)

    def _remove_own_files(self) -> None:
        """We still hold the lock, so this port's files are ours. A fatal record stays, so
        `status` can say why; the next start or `clean` removes it. So does the record of a
        tree we could not stop: `stop`, `start` and `clean` find its leftovers by its token."""
        if self._record is None:
            return
        if self._record.state == "fatal" or not self._tree_stopped:
            self.run_dir.pid_file(self.spec.port).unlink(missing_ok=True)
        else:
            self.run_dir.remove(self.spec.port)

    def _open_log(self) -> None:
        if self.spec.detached:
            from .logs import RotatingLog

            self._log = RotatingLog(self.run_dir.log_file(self.spec.name), self.spec.log_max_bytes,
                                    self.spec.log_backups)

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
