"""Driving a project by name: start, stop, restart, status and logs of its services.

Each service runs under its own detached supervisor (as `start -d` runs one; forked by one
server where the platform forks, ``forkserver``), in the run dir, so each keeps its
``.server_<port>.pid`` naming that supervisor. Every
``"auto"`` port is chosen before anything starts, so every service gets every
``PORTCTL_<NAME>_PORT|URL`` and placeholder. A service is launched, on its own thread, once
each of its dependencies reached its condition; services that do not wait on each other start
together. Stopping goes the other way: dependents first, a level at a time.
"""
from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence

from ..base import messages
from ..base.frozen import replace
from ..base.errors import PortctlError
from ..core.runfiles import RunDir
from ..core.status import LIVE_STATES, Status, collect as instance_status
from .model import AUTO_FIRST_PORT, Project

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..core.forkserver import Supervisors

STARTED_POLL_S = 0.02  # how often a `started` gate reads the dependency's record
QUEUE_POLL_S = 0.1  # how often a wait for log lines looks at its stop condition


def project_for(words: Sequence[str], cwd: Optional[Path] = None, *,
                commands: bool = False) -> Optional[Project]:
    """The project found from ``cwd`` (default: here) upward when ``words`` (a command's NAME
    arguments) are empty or all name its services; else None: the command means single
    instances, as it does without a project file. ``commands``: the words could also be a
    command to run (`start`); a first word that is neither a service nor a program is taken
    for a mistyped service (BadInput, with the closest names)."""
    from ..core.spec import resolve_executable
    from .config import find_project

    project = find_project(Path.cwd() if cwd is None else cwd)
    if project is None or all(word in project.names() for word in words):
        return project
    if commands and not resolve_executable(words[0], os.environ):
        project.service(words[0])  # raises: no such service, did you mean ...
    return None


def live_services(project: Project, run_dir: RunDir) -> dict[str, Status]:
    """The services of ``project`` that run in ``run_dir`` (any live state), by name."""
    names = set(project.names())
    return {s.record.spec.name: s for s in instance_status(run_dir)
            if s.record is not None and s.record.spec.name in names and s.state in LIVE_STATES}


def resolve_ports(project: Project, running: Mapping[str, int], wanted: Iterable[str],
                  previous: Mapping[str, int] = {},
                  notify: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """The port of every running service (``running``) and of every service in ``wanted``:
    fixed ones as written, ``"auto"`` ones the first free port from their previous one
    (``previous``, a restart), else their range, else 8000, then any; never one already
    given to another service. A first choice held by some other process is ``notify``-ed."""
    from ..core.ports import first_holder, is_busy, unused_port

    ports = dict(running)
    taken = set(ports.values()) | {s.port for s in project.services if not s.auto}
    for service in project.services:
        if service.name in ports or service.name not in wanted:
            continue
        if not service.auto:
            ports[service.name] = service.port
            continue
        first = previous.get(service.name) or (service.port_range[0] if service.port_range
                                               else AUTO_FIRST_PORT)
        port = unused_port(first, service.port_range, service.host, skip=taken.__contains__)
        if port != first and first not in taken and is_busy(service.host, first):
            notify(f"{service.name}: " + messages.port_moved(first, port, first_holder(first)))
        taken.add(port)
        ports[service.name] = port
    return ports


class Failure(NamedTuple):
    """A service that did not start: why (``code`` its exit code), and its log if it ran."""

    name: str
    code: int
    message: str
    hint: str = ""
    log: Optional[str] = None


class Started(NamedTuple):
    """What a project start did: the services it launched (in the order they became ready),
    those already running, those that failed, and those never launched (a dependency failed,
    or the start was given up)."""

    launched: list[str]
    running: list[str]
    failed: list[Failure]
    skipped: list[str]


class _Launcher:
    """One start: a thread per service, each waiting on its dependencies' gates."""

    def __init__(self, project: Project, run_dir: RunDir, ports: Mapping[str, int], *,
                 force: bool, keep_going: bool, foreground: bool,
                 waiting: Callable[[Sequence[str]], None] = lambda _: None) -> None:
        self.project, self.run_dir, self.ports = project, run_dir, ports
        self.force, self.keep_going, self.foreground = force, keep_going, foreground
        self.waiting = waiting
        self.pending: list[str] = []  # the services not launched, nor given up, yet
        self.started: dict[str, threading.Event] = {}
        self.done: dict[str, threading.Event] = {}
        self.bad: set[str] = set()
        self.abort = threading.Event()
        self.result = Started([], [], [], [])
        self._lock = threading.Lock()
        self._supervisors: Optional[Supervisors] = None  # at the first launch; closed by run()

    def run(self, order: Sequence[Sequence[str]], running: Iterable[str],
            interrupted: Callable[[], bool]) -> Started:
        names = [n for level in order for n in level]
        for name in names:
            self.started[name], self.done[name] = threading.Event(), threading.Event()
        threads = []
        self.pending = [n for n in names if n not in running]
        self.waiting(list(self.pending))
        for name in names:
            if name in running:
                self.result.running.append(name)
                self.started[name].set()
                self.done[name].set()
                continue
            thread = threading.Thread(target=self._one, args=(name,), name=f"start-{name}", daemon=True)
            thread.start()
            threads.append(thread)
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
                    if interrupted():
                        self.abort.set()  # launches under way finish; nothing new starts
        finally:
            if self._supervisors is not None:
                self._supervisors.close()
        return self.result

    def _one(self, name: str) -> None:
        try:
            failure = self._wait_for_dependencies(name)
            if failure is None and self.abort.is_set():
                failure = "aborted"
            if failure is not None:
                with self._lock:
                    self.bad.add(name)
                    self.result.skipped.append(name)
                return
            self._launch(name)
        finally:
            self.started[name].set()
            self.done[name].set()
            with self._lock:
                self.pending.remove(name)
                left = list(self.pending)
            self.waiting(left)

    def _wait_for_dependencies(self, name: str) -> Optional[str]:
        """None once every dependency reached its condition; else the one that failed."""
        for dep, condition in self.project.service(name).depends_on.items():
            gate = self.started[dep] if condition == "started" else self.done[dep]
            gate.wait()
            if dep in self.bad:
                return dep
        return None

    def _launch(self, name: str) -> None:
        try:
            spec = self.project.spec(name, self.ports, os.environ, detached=True)
            if self.foreground and not self.project.service(name).restart:
                spec = replace(spec, restart="no")  # the foreground's default, as `start` has it
            if any(s.depends_on.get(name) == "started" for s in self.project.services):  # else no gate to open
                threading.Thread(target=self._watch_started, args=(name, spec.port), daemon=True).start()
            outcome = self.supervisors().launch(spec, self.force)
            failure = None if outcome.code == 0 else Failure(name, outcome.code, outcome.message,
                                                             outcome.hint, outcome.log)
        except PortctlError as exc:
            failure = Failure(name, exc.exit_code, exc.message, exc.hint)
        except Exception as exc:  # a bug of ours: this service failed, said in one line
            failure = Failure(name, 1, *messages.internal_error(exc))
        with self._lock:
            if failure is None:
                self.result.launched.append(name)
                return
            self.bad.add(name)
            self.result.failed.append(failure)
        if not self.keep_going:
            self.abort.set()

    def supervisors(self) -> Supervisors:
        """What launches the supervisors (the fork server the entry point may have started)."""
        from ..core.forkserver import Supervisors

        with self._lock:
            if self._supervisors is None:
                self._supervisors = Supervisors(self.run_dir)
            return self._supervisors

    def _watch_started(self, name: str, port: int) -> None:
        """Open the ``started`` gate once the service's supervisor recorded a child."""
        while not self.done[name].is_set():
            record = self.run_dir.read_record(port)
            if record is not None and record.child is not None and record.spec.name == name:
                self.started[name].set()
                return
            self.done[name].wait(STARTED_POLL_S)


def start(project: Project, run_dir: RunDir, names: Sequence[str] = (), *, force: bool = False,
          keep_going: bool = False, foreground: bool = False, previous: Mapping[str, int] = {},
          interrupted: Callable[[], bool] = lambda: False, notify: Callable[[str], None] = lambda _: None,
          waiting: Callable[[Sequence[str]], None] = lambda _: None) -> Started:
    """Start ``names`` (all when empty) with their dependencies; running ones are left alone.
    Unless ``keep_going``, a failure stops what this start launched, dependents first.
    ``notify`` hears of a port moved off a busy first choice; ``waiting`` is told the services
    still waited on, whenever that changes."""
    order = project.start_order(names)
    wanted = {n for level in order for n in level}
    live = live_services(project, run_dir)
    ports = resolve_ports(project, {n: s.port for n, s in live.items()}, wanted, previous, notify)
    launcher = _Launcher(project, run_dir, ports, force=force, keep_going=keep_going, foreground=foreground,
                         waiting=waiting)
    result = launcher.run(order, set(live), interrupted)
    if result.failed and not keep_going and result.launched:
        stop(project, run_dir, result.launched, dependents=False)
    return result


def stop(project: Project, run_dir: RunDir, names: Sequence[str] = (), grace_s: Optional[float] = None,
         *, dependents: bool = True, notify: Callable[[str], None] = lambda _: None) -> list[str]:
    """Stop ``names`` (all when empty), with every service depending on them unless
    ``dependents`` is False: a level at a time, dependents first, each level together.
    Returns the names stopped; the first error of a level is raised once the level is done."""
    # ports too, which each stop imports for its proof once it has signalled: imported in one
    # thread, it would hold up the other threads' signals (one import lock) by ~5-10 ms
    from ..core import ports, stopping  # noqa: F401

    chosen = set(project.selection(names, dependents=True) if dependents else
                 (names or project.names()))
    live = live_services(project, run_dir)
    stopped: list[str] = []
    for level in project.stop_order():
        targets = [n for n in level if n in chosen and n in live]
        errors: list[BaseException] = []

        def one(name: str) -> None:
            try:
                if stopping.stop(run_dir, live[name].port, grace_s, notify=notify):
                    stopped.append(name)
            except BaseException as exc:  # raised below, once the level is done
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
    return stopped


def restart(project: Project, run_dir: RunDir, names: Sequence[str] = (), *, force: bool = False) -> Started:
    """Stop ``names`` (all when empty) and their dependents, then start them again from
    ``project`` (read again by the caller, so a new command or environment takes effect).
    An ``"auto"`` service gets its previous port again when it is still free."""
    previous = {n: s.port for n, s in live_services(project, run_dir).items()}
    chosen = sorted(project.selection(names, dependents=True))
    stop(project, run_dir, chosen)
    return start(project, run_dir, chosen, force=force, previous=previous)


def status_rows(project: Project, run_dir: RunDir) -> list[dict[str, Any]]:
    """Every service in file order, stopped ones included (state ``stopped``, the port
    ``None`` when it is ``"auto"``), then any other instance of the run dir."""
    rows: dict[str, dict[str, Any]] = {}
    others = []
    for found in instance_status(run_dir):
        row = found.to_dict()
        if row["name"] not in project.names():
            others.append(row)
        elif row["name"] not in rows or row["state"] in LIVE_STATES:
            rows[row["name"]] = row
    out = []
    for service in project.services:
        row = rows.get(service.name) or {
            "port": None if service.auto else service.port, "name": service.name,
            "host": service.host, "state": "stopped", "pid": None, "child_pid": None,
            "started_at": None, "uptime_s": None, "command": list(service.command),
            "run_dir": str(run_dir.path), "detached": None, "restart": service.restart or None,
            "restarts": 0, "last_exit": None, "last_health": None, "reason": "", "log": None}
        out.append({**row, "service": True})
    return out + [{**row, "service": False} for row in others]


class LogLines:
    """Every chosen service's log, line by line, as it is written: one follower thread per
    log (``logs.follow``), from its last ``lines`` lines on."""

    def __init__(self, run_dir: RunDir, names: Sequence[str], lines: int = 0) -> None:
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self.stopped = threading.Event()
        for name in names:
            threading.Thread(target=self._follow, args=(run_dir.log_file(name), name, lines),
                             daemon=True).start()

    def _follow(self, path: Path, name: str, lines: int) -> None:
        from ..core.logs import follow

        for line in follow(path, lines, stop=self.stopped.is_set):
            self.queue.put((name, line))

    def within(self, seconds: float, until: Callable[[], bool] = lambda: False) -> Iterator[tuple[str, str]]:
        """The (name, line) pairs that arrive within ``seconds``, or until ``until()`` holds
        (looked at every QUEUE_POLL_S)."""
        deadline = time.monotonic() + seconds
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                yield self.queue.get(timeout=min(left, QUEUE_POLL_S))
            except queue.Empty:
                continue

    def close(self) -> None:
        self.stopped.set()


def catch_stop_signals(flag: threading.Event) -> dict[int, Any]:
    """INT, TERM and HUP only set ``flag`` (the loop acts); the old handlers, to restore."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, lambda *_: flag.set())
    return previous


def restore_signals(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
