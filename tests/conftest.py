"""Test helpers: every process a test starts is registered, tagged and reaped.

- ``spawn`` registers a Popen before returning it and tags its environment with this test
  run's marker; descendants inherit the marker even after setsid().
- After each test the tracker kills whole trees (snapshot first, then kill, then wait), and
  any process still carrying the marker fails the test. A session check fails the run if
  anything survived.
- Handshakes wait with deadlines (``wait_until``); nothing synchronises with a bare sleep.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, Optional

import psutil
import pytest

MARKER = "PORTCTL_TEST_RUN"
RUN_ID = uuid.uuid4().hex
APPS = Path(__file__).parent / "apps"
HANG_GUARD_S = 30.0  # deadlines only guard against hangs; nothing asserts on timing
EXIT_GRACE_S = 5.0  # a process already on its way out is not a leak


def wait_until(predicate: Callable[[], bool], timeout: float = HANG_GUARD_S, what: str = "condition") -> None:
    """Poll ``predicate`` (short, growing interval) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port_accepting(port: int, host: str = "127.0.0.1", timeout: float = HANG_GUARD_S) -> None:
    wait_until(lambda: accepts(port, host), timeout, f"{host}:{port} to accept")


def wait_port_refusing(port: int, host: str = "127.0.0.1", timeout: float = HANG_GUARD_S) -> None:
    wait_until(lambda: not accepts(port, host), timeout, f"{host}:{port} to refuse")


def wait_file(path: Path, timeout: float = HANG_GUARD_S) -> None:
    wait_until(path.exists, timeout, f"{path} to appear")


def unused_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def marked(proc: psutil.Process) -> bool:
    try:
        return proc.environ().get(MARKER) == RUN_ID
    except psutil.Error:
        return False


def marked_processes() -> list[psutil.Process]:
    me = os.getpid()
    return [p for p in psutil.process_iter() if p.pid != me and marked(p) and _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def reap(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """Kill whole trees: snapshot descendants first, kill, then wait (reaping our children)."""
    tree: dict[int, psutil.Process] = {}
    for proc in procs:
        tree[proc.pid] = proc
        try:
            for child in proc.children(recursive=True):
                tree[child.pid] = child
        except psutil.Error:
            pass
    for proc in tree.values():
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(tree.values()), timeout=timeout)
    _reap_zombie_children()


def _reap_zombie_children() -> None:
    for child in psutil.Process().children():
        try:
            os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            pass


class Tracker:
    """Owns the processes of one test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []  # type: ignore[type-arg]

    def spawn(self, argv: list[str], env: Optional[dict[str, str]] = None, **kwargs: object) -> subprocess.Popen:  # type: ignore[type-arg]
        full_env = {**os.environ, **(env or {}), MARKER: RUN_ID}
        proc = subprocess.Popen(argv, env=full_env, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def reap_all(self) -> None:
        live = []
        for proc in self.procs:
            try:
                live.append(psutil.Process(proc.pid))
            except psutil.Error:
                pass
        reap(live)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # A detached supervisor may still be exiting after its handshake: give it a moment.
        try:
            wait_until(lambda: not marked_processes(), EXIT_GRACE_S, "tagged processes to exit")
        except AssertionError:
            pass
        leftovers = marked_processes()
        reap(leftovers)
        self.procs.clear()
        if leftovers:
            raise AssertionError(f"processes leaked by the test: {[p.pid for p in leftovers]}")


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    owned = Tracker()
    try:
        yield owned
    finally:
        owned.reap_all()


@pytest.fixture
def spawn(tracker: Tracker) -> Callable[..., subprocess.Popen]:  # type: ignore[type-arg]
    return tracker.spawn


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


class Portctl:
    """Runs the real CLI (``python -m portctl``) against one run dir."""

    def __init__(self, run_dir: Path, spawn: Callable[..., subprocess.Popen]) -> None:  # type: ignore[type-arg]
        self.run_dir = run_dir
        self._spawn = spawn

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "portctl", "--run-dir", str(self.run_dir), *args]

    def run(self, *args: str, env: Optional[dict[str, str]] = None,
            timeout: float = 60) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        proc = self._spawn(self.argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def start(self, *args: str, env: Optional[dict[str, str]] = None) -> subprocess.Popen:  # type: ignore[type-arg]
        """A foreground ``start`` in the background of the test (stdout/stderr piped)."""
        return self._spawn(self.argv("start", *args), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)

    def pid_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.pid"

    def record_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.json"

    def lock_held(self, port: int) -> bool:
        from portctl.lock import is_held

        return is_held(self.run_dir / f".server_{port}.lock")


@pytest.fixture
def portctl(run_dir: Path, spawn: Callable[..., subprocess.Popen]) -> Portctl:  # type: ignore[type-arg]
    return Portctl(run_dir, spawn)


def app(name: str, *args: object) -> list[str]:
    """argv of a test app in tests/apps."""
    return [sys.executable, str(APPS / f"{name}.py"), *map(str, args)]


def finish(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = HANG_GUARD_S) -> tuple[int, str, str]:  # type: ignore[type-arg]
    """Send ``sig`` to a foreground portctl and collect (code, stdout, stderr)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out or "", err or ""


@pytest.fixture(scope="session", autouse=True)
def no_leaks_at_the_end() -> Iterator[None]:
    yield
    leftovers = marked_processes()
    reap(leftovers)
    assert not leftovers, f"processes survived the test session: {[p.pid for p in leftovers]}"
