"""The foreground supervisor: lock, check, launch, wait until ready, supervise, stop.

Signal handlers only queue what happened; the loop acts. A second stop signal skips the
grace period. The pid file, record and lock are kept true for the supervisor's whole life.
"""
from __future__ import annotations

import queue
import signal
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Optional

import psutil

from . import _platform, instances, output, ports
from .errors import AlreadyRunning, BadInput, ChildExited, NotReady, PortctlError, PortInUse
from .identity import ProcRef
from .lock import PortLock, is_held
from .runfiles import Record, RunDir
from .spec import ServerSpec
from .terminate import stop_tree

VERIFY_FREE_S = 5.0
PORT_ATTEMPTS = 3  # dynamic ports: candidates tried when the child loses the bind race
Event = tuple[str, int]  # ("signal", signum) | ("exit", returncode)


class Supervisor:
    """Runs one instance in the foreground; ``run()`` returns the exit code."""

    def __init__(self, spec: ServerSpec, run_dir: RunDir, *, force: bool = False,
                 notify: Callable[[str], None] = output.say,
                 warn: Callable[[str], None] = output.warn) -> None:
        self.spec, self.run_dir, self.force = spec, run_dir, force
        self.notify, self.warn = notify, warn
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._pending: list[Event] = []
        self._record: Optional[Record] = None

    # ------------------------------------------------------------ lifecycle
    def run(self) -> int:
        try:
            ports.resolve_host(self.spec.host)
        except ValueError as exc:
            raise BadInput(*output.bad_host(self.spec.host, str(exc))) from None
        if not self.spec.dynamic:
            return self._run_on_port()
        return self._run_on_dynamic_port()

    def _run_on_dynamic_port(self) -> int:
        """Preferred port, then the range, then an OS-assigned one; a lost bind race moves on."""
        tried: set[int] = set()
        preferred = None if self.spec.auto_port and not self.spec.port_range else self.spec.port
        for _ in range(PORT_ATTEMPTS):
            port = ports.find_free_port(preferred, self.spec.port_range, self.spec.host,
                                        skip=lambda p: p in tried or self._locked(p))
            tried.add(port)
            self.spec = self.spec.with_port(port)
            try:
                return self._run_on_port()
            except (AlreadyRunning, PortInUse) as lost:
                self.warn(output.port_race(port, lost.message))
        raise PortInUse(*output.no_port_found(sorted(tried)))

    def _locked(self, port: int) -> bool:
        return is_held(self.run_dir.lock_file(port))

    def _run_on_port(self) -> int:
        port = self.spec.port
        lock = PortLock(self.run_dir.lock_file(port))
        if not lock.acquire():
            raise AlreadyRunning(*output.already_running(port, self.run_dir.read_pid(port)))
        try:
            self._reclaim_stale()
            self._check_port()
            _platform.become_subreaper()
            with self._signals():
                return self._launch_and_supervise()
        finally:
            self._remove_own_files()
            lock.release()

    def _reclaim_stale(self) -> None:
        """We hold the lock, so any pid file or record here is stale: never signal its pid."""
        instances.drop_stale(self.run_dir, self.spec.port, notify=self.warn)

    def _check_port(self) -> None:
        spec = self.spec
        if not ports.is_busy(spec.host, spec.port):
            return
        if not self.force or spec.dynamic:  # a dynamic port moves on rather than evict
            holders = ports.holders(spec.port)
            raise PortInUse(*output.port_in_use(spec.port, holders), holders=tuple(holders))
        instances.free_port(spec.port, spec.host, spec.grace_s,
                            tokens=instances.tokens(self.run_dir), notify=self.warn)

    def _launch_and_supervise(self) -> int:
        began = time.monotonic()
        me = psutil.Process()
        self._record = Record(self.spec, ProcRef.of(me), None, _now_iso(), str(self.run_dir.path),
                              uuid.uuid4().hex, "starting")
        self.run_dir.write_record(self._record)
        self.run_dir.write_pid(self.spec.port, me.pid)
        try:
            env = self.spec.child_env(self._record.token, str(self.run_dir.path))
            child = _platform.spawn(self.spec.argv(), env, self.run_dir.path)
        except OSError as exc:
            raise PortctlError(*output.spawn_failed(self.spec.argv(), exc.strerror or str(exc)))
        threading.Thread(target=self._wait_child, args=(child,), daemon=True).start()
        try:
            self._set_state("starting", ProcRef.of_pid(child.pid))
            code = self._wait_ready(child, began)
            if code is None:
                code = self._supervise()
            return code
        finally:
            self._stop_children(child.pid)

    def _wait_child(self, child: Any) -> None:
        self._events.put(("exit", child.wait()))

    def _wait_ready(self, child: Any, began: float) -> Optional[int]:
        """None once ready; an exit code if a stop signal came first."""
        spec = self.spec
        deadline = began + spec.ready_timeout_s
        if not ports.wait_accepting(spec.host, spec.port, deadline, abort=self._has_event):
            event = self._take_event(block=False)
            if event is None:
                raise NotReady(*output.not_ready(spec.port, spec.ready_timeout_s))
            if event[0] == "exit":
                self._diagnose_bind_failure()
                code = _exit_code(event[1])
                raise ChildExited(*output.exited_early(code), code=code) if code else \
                    ChildExited(*output.exited_zero_early(), code=1)
            self.notify(output.stopping(spec.port, signal.Signals(event[1]).name))
            return 0
        self._set_state("running")
        url = f"http://{_url_host(spec.host)}:{spec.port}"
        self.notify(output.ready(url, psutil.Process().pid, child.pid, time.monotonic() - began))
        return None

    def _diagnose_bind_failure(self) -> None:
        """The child died before listening: if another process took the port meanwhile, say so."""
        spec = self.spec
        mine = {p.pid for p in psutil.Process().children(recursive=True)}
        holders = [h for h in ports.holders(spec.port) if h.pid not in mine]
        if holders:
            raise PortInUse(*output.port_in_use(spec.port, holders), holders=tuple(holders))

    def _supervise(self) -> int:
        while True:
            kind, value = self._take_event(block=True)  # type: ignore[misc]
            if kind == "exit":
                code = _exit_code(value)
                self.warn(output.exited(code)[0])
                return code
            self.notify(output.stopping(self.spec.port, signal.Signals(value).name))
            return 0

    def _stop_children(self, leader: int) -> None:
        """Stop the child's whole tree (group, left-the-group descendants, adopted orphans)."""
        roots = psutil.Process().children()
        stop_tree(roots, self.spec.grace_s, group_leader=leader, hurry=self._second_signal)
        _platform.reap_adopted(exclude=leader)
        ports.wait_refusing(self.spec.host, self.spec.port, time.monotonic() + VERIFY_FREE_S)

    # ------------------------------------------------------------ events
    @contextmanager
    def _signals(self) -> Iterator[None]:
        def record(signum: int, _frame: object) -> None:
            self._events.put(("signal", signum))

        previous = {sig: signal.signal(sig, record) for sig in _platform.STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _take_event(self, block: bool) -> Optional[Event]:
        if self._pending:
            return self._pending.pop(0)
        while True:
            try:
                return self._events.get(block=block, timeout=_platform.WAKE_INTERVAL_S if block else None)
            except queue.Empty:
                if _platform.stop_requested(self.run_dir.path, self.spec.port):
                    return ("signal", int(signal.SIGTERM))
                if not block:
                    return None

    def _has_event(self) -> bool:
        event = self._take_event(block=False)
        if event is not None:
            self._pending.append(event)
        return event is not None

    def _second_signal(self) -> bool:
        """During a stop: has another stop signal arrived? (The child's exit is not one.)"""
        while True:
            event = self._take_event(block=False)
            if event is None:
                return False
            if event[0] == "signal":
                return True

    # ------------------------------------------------------------ run files
    def _set_state(self, state: str, child: Optional[ProcRef] = None) -> None:
        assert self._record is not None
        self._record = self._record.with_child(child, state) if child else self._record.with_state(state)
        self.run_dir.write_record(self._record)

    def _remove_own_files(self) -> None:
        """We still hold the lock, so this port's pid file and record are ours to remove."""
        if self._record is not None:
            self.run_dir.remove(self.spec.port)


def _exit_code(returncode: int) -> int:
    """A child killed by signal N exits 128+N, as a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _url_host(host: str) -> str:
    host = ports.connect_host(host)
    return f"[{host}]" if ":" in host else host
