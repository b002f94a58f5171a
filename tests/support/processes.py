"""Every process a test starts is registered, tagged and reaped (psutil's ``reap_children`` is
the model).

- ``Tracker.spawn`` registers a Popen in the test's tracker (and in the session's) *before*
  returning it, and tags its environment with two markers: ``PORTCTL_TEST_RUN`` (this pytest
  session) and ``PORTCTL_TEST_ID`` (this test). Descendants inherit them, even after
  ``setsid()`` or a double fork. The conftest fixtures also set the markers in this process's
  own environment, so processes started by library code running in-process carry them too.
- After each test the tracker takes a snapshot of every registered process's whole tree,
  terminates it, kills what is left, waits, and reaps our own zombies (``reap``).
- ``leaks`` scans the process table for anything still carrying a test's marker; the conftest
  fails that test naming them (after killing them), and fails the run if anything carrying the
  session's marker survived.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any, Iterable, Optional

import psutil

from support.waits import wait_until

MARKER = "PORTCTL_TEST_RUN"  # value: this session's RUN_ID
TEST_MARKER = "PORTCTL_TEST_ID"  # value: the current test's id
RUN_ID = uuid.uuid4().hex
# A process already on its way out (a supervisor after its handshake) is no leak.
EXIT_GRACE_S = float(os.environ.get("PORTCTL_TEST_EXIT_GRACE_S", "5"))
TERM_WAIT_S = 1.0  # reaping: between terminate() and kill()
KILL_WAIT_S = 10.0  # reaping: after kill()

Popen = subprocess.Popen  # type: ignore[type-arg]


def is_gone(proc: "psutil.Process | Popen | int") -> bool:
    """A process that no longer exists, or is a zombie (exited, not reaped yet), is gone."""
    if isinstance(proc, subprocess.Popen):
        if proc.poll() is not None:
            return True
        proc = proc.pid
    if isinstance(proc, int):
        try:
            proc = psutil.Process(proc)
        except psutil.NoSuchProcess:
            return True
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def marked_processes(value: str = RUN_ID, key: str = MARKER) -> list[psutil.Process]:
    """Live (non-zombie) processes, other than this one, whose environment has ``key=value``."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["environ"], ad_value=None):
        env = proc.info.get("environ") or {}
        if proc.pid != me and env.get(key) == value and not is_gone(proc):
            found.append(proc)
    return found


def describe(procs: Iterable[psutil.Process]) -> str:
    parts = []
    for proc in procs:
        try:
            parts.append(f"pid {proc.pid} (ppid {proc.ppid()}): {' '.join(proc.cmdline())[:200]}")
        except psutil.Error:
            parts.append(f"pid {proc.pid} (gone)")
    return "; ".join(parts) or "none"


def reap(procs: Iterable[psutil.Process], term_wait_s: float = TERM_WAIT_S,
         kill_wait_s: float = KILL_WAIT_S) -> list[psutil.Process]:
    """Kill whole trees: snapshot every descendant first, terminate, wait, kill what is left, wait,
    then reap our own zombie children. Returns the processes that refused to die (should be none)."""
    tree: dict[int, psutil.Process] = {}
    for proc in procs:
        tree.setdefault(proc.pid, proc)
        try:
            for child in proc.children(recursive=True):
                tree.setdefault(child.pid, child)
        except psutil.Error:
            pass
    live = [p for p in tree.values() if not is_gone(p)]
    for proc in live:  # parents first: a supervisor cannot restart what we are about to kill
        try:
            proc.terminate()  # psutil checks the pid still names the same process
        except psutil.Error:
            pass
    live = _wait_gone(live, term_wait_s)
    for proc in live:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return _wait_gone(live, kill_wait_s)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process is gone (a zombie counts: psutil.wait_procs would wait for its
    parent to reap it); reap our own children meanwhile. Returns those still alive."""
    alive = list(procs)

    def settled() -> bool:
        reap_zombie_children()
        alive[:] = [p for p in alive if not is_gone(p)]
        return not alive

    if alive:
        try:
            wait_until(settled, timeout, "processes to exit", interval=0.05)
        except AssertionError:
            pass
    return alive


def reap_zombie_children() -> None:
    """Collect the exit status of our own children that have exited (no zombies left behind).
    Children that some Popen of ours still owns are reaped through it, never behind its back."""
    owned = {p.pid: p for p in _SESSION_PROCS}
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for child in children:
        if child.pid in owned:
            owned[child.pid].poll()
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass


_SESSION_PROCS: list[Popen] = []  # every Popen of the session, reaped again at its end


def _reap_popens(popens: list[Popen]) -> None:
    roots = []
    for popen in popens:
        if popen.poll() is None:  # not reaped yet: the pid is still ours (alive or a zombie)
            try:
                roots.append(psutil.Process(popen.pid))
            except psutil.NoSuchProcess:
                pass
    reap(roots)
    for popen in popens:
        try:
            popen.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        for stream in (popen.stdin, popen.stdout, popen.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def reap_session() -> None:
    """Kill every tree any tracker of the session started and still owns (the session's end)."""
    _reap_popens(list(_SESSION_PROCS))
    _SESSION_PROCS.clear()


class Tracker:
    """Owns the processes one test starts."""

    def __init__(self) -> None:
        self.procs: list[Popen] = []

    def spawn(self, argv: list[str], env: Optional[dict[str, str]] = None, **kwargs: Any) -> Popen:
        """Start ``argv`` tagged with the markers; registered before it is returned."""
        full_env = {**os.environ, **(env or {})}
        full_env[MARKER] = RUN_ID
        full_env[TEST_MARKER] = os.environ.get(TEST_MARKER, "outside-a-test")
        proc = subprocess.Popen([str(a) for a in argv], env=full_env, **kwargs)
        self.procs.append(proc)
        _SESSION_PROCS.append(proc)
        return proc

    def reap_all(self) -> None:
        """Kill every tree this tracker started (anything that slipped out is the leak check's)."""
        try:
            _reap_popens(self.procs)
        finally:
            for proc in self.procs:
                if proc in _SESSION_PROCS and proc.returncode is not None:
                    _SESSION_PROCS.remove(proc)
            self.procs.clear()


def leaks(test_id: str, grace_s: float = EXIT_GRACE_S) -> list[psutil.Process]:
    """Processes tagged with ``test_id`` still alive after ``grace_s`` (those exiting may finish)."""
    found: list[psutil.Process] = []

    def settled() -> bool:
        found[:] = marked_processes(test_id, TEST_MARKER)
        return not found

    try:
        wait_until(settled, grace_s, "tagged processes to exit")
    except AssertionError:
        pass
    return found


class StdoutLines:
    """The lines a running process writes on its stdout (a text pipe), newline stripped,
    collected as they come by a daemon thread (``lines`` grows; read it in ``wait_until``)."""

    def __init__(self, proc: Popen) -> None:
        import threading

        assert proc.stdout is not None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self.lines.append(line.rstrip("\n"))

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the end of the output (once the process has exited)."""
        self._thread.join(timeout=timeout)
