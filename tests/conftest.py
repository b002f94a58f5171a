"""Test helpers: every process a test starts is registered, tagged and reaped.

The process tracker (psutil's ``reap_children`` is the model):

- ``spawn`` registers a Popen in the test's tracker (and in the session's) *before* returning
  it, and tags its environment with two markers: ``PORTCTL_TEST_RUN`` (this pytest session)
  and ``PORTCTL_TEST_ID`` (this test). Descendants inherit them, even after ``setsid()`` or a
  double fork. The markers are also set in this process's own environment, so processes
  started by library code running in-process carry them too.
- After each test the tracker takes a snapshot of every registered process's whole tree,
  terminates it, kills what is left, waits, and reaps our own zombies.
- Then an autouse check scans the process table for anything still carrying this test's
  marker: it fails the test naming those processes (after killing them). A session check at
  the end fails the run if anything carrying the session's marker survived.
- Handshakes wait with deadlines (``wait_until`` and friends); nothing synchronises with a
  bare sleep. Deadlines only guard against hangs: no test asserts on timing.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

import psutil
import pytest

MARKER = "PORTCTL_TEST_RUN"  # value: this session's RUN_ID
TEST_MARKER = "PORTCTL_TEST_ID"  # value: the current test's id
RUN_ID = uuid.uuid4().hex
APPS = Path(__file__).parent / "apps"
HANG_GUARD_S = 30.0  # deadlines only guard against hangs; nothing asserts on timing
# A process already on its way out (a supervisor after its handshake) is no leak.
EXIT_GRACE_S = float(os.environ.get("PORTCTL_TEST_EXIT_GRACE_S", "5"))
TERM_WAIT_S = 1.0  # reaping: between terminate() and kill()
KILL_WAIT_S = 10.0  # reaping: after kill()

T = TypeVar("T")
Popen = subprocess.Popen  # type: ignore[type-arg]


# --------------------------------------------------------------------------- handshakes

def wait_until(predicate: Callable[[], T], timeout: float = HANG_GUARD_S, what: str = "condition",
               interval: float = 0.1) -> T:
    """Poll ``predicate`` (short, growing interval) until it returns something truthy, and return
    that; raise AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, interval)


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        # TCP simultaneous open: a connect to a free port of the ephemeral range can, rarely,
        # pick that very port as its source and "connect" to itself. That is not a listener.
        return bool(sock.getsockname()[:2] != sock.getpeername()[:2])


def wait_port_accepting(port: int, host: str = "127.0.0.1", timeout: float = HANG_GUARD_S) -> None:
    wait_until(lambda: accepts(port, host), timeout, f"{host}:{port} to accept connections")


def wait_port_refusing(port: int, host: str = "127.0.0.1", timeout: float = HANG_GUARD_S) -> None:
    wait_until(lambda: not accepts(port, host), timeout, f"{host}:{port} to refuse connections")


def wait_file(path: Path, timeout: float = HANG_GUARD_S) -> Path:
    """Wait until ``path`` exists and is not empty (apps write their files atomically)."""

    def ready() -> bool:
        try:
            return Path(path).stat().st_size > 0
        except OSError:
            return False

    wait_until(ready, timeout, f"{path} to appear")
    return Path(path)


def unused_port(host: str = "127.0.0.1") -> int:
    """A port the OS calls free right now (bind to 0). Others may take it later: pick one per use."""
    return free_ports(1, host)[0]


free_port = unused_port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (all sockets stay bound until every port is chosen)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def listeners(port: int) -> set[int]:
    """Pids with a TCP socket listening on ``port`` (any address), from psutil, not portctl."""
    pids = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            pids.add(conn.pid)
    return pids


def lock_held(path: Path) -> bool:
    """Whether some process holds the OS lock on ``path`` (never creates the file).

    On Linux this reads /proc/locks and takes no lock itself: a probe that briefly takes the
    lock would make a ``start`` racing it fail with "already running". Elsewhere it falls back
    to a shared-lock probe (conflicts with the holder's exclusive lock, not with other probes).
    """
    try:
        st = os.stat(path)
    except OSError:
        return False
    if sys.platform.startswith("linux") and os.path.exists("/proc/locks"):
        return _flock_on(st.st_dev, st.st_ino)
    if sys.platform == "win32":  # pragma: no cover - the suite runs on Linux
        from portctl.core.lock import is_held

        return is_held(Path(path))
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing our descriptor drops our probe lock, never the holder's
    return False


def _flock_on(dev: int, ino: int) -> bool:
    """A granted FLOCK on (dev, ino) in /proc/locks ("1: FLOCK ADVISORY WRITE pid MAJ:MIN:INODE 0 EOF")."""
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    with open("/proc/locks") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
                return True  # waiters ("->" lines) have one more field and never match here
    return False


# --------------------------------------------------------------------------- processes

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


# --------------------------------------------------------------------------- markers

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``posix_only`` tests (POSIX signals, sessions, process groups) are skipped on Windows;
    ``linux_refined`` ones unless the Linux module is bound (not with PORTCTL_PORTABLE=1)."""
    from portctl.platform.current import platform

    skips = {"posix_only": sys.platform == "win32", "linux_refined": platform.NAME != "linux"}
    for marker, skipped in skips.items():
        if skipped:
            skip = pytest.mark.skip(reason=f"{marker}: not on {platform.NAME}")
            for item in items:
                if item.get_closest_marker(marker) is not None:
                    item.add_marker(skip)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session", autouse=True)
def _session_marker() -> Iterator[None]:
    """Tag everything this session starts; fail the run if any of it survived."""
    previous = os.environ.get(MARKER)
    os.environ[MARKER] = RUN_ID
    try:
        yield
    finally:
        _reap_popens(list(_SESSION_PROCS))
        _SESSION_PROCS.clear()
        survivors = marked_processes(RUN_ID, MARKER)
        text = describe(survivors)
        stubborn = reap(survivors)
        if previous is None:
            os.environ.pop(MARKER, None)
        else:
            os.environ[MARKER] = previous
        assert not survivors, f"processes survived the test session: {text}" + (
            f" (and could not be killed: {describe(stubborn)})" if stubborn else "")


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Per test: a fresh marker in, and after teardown no process carrying it may survive."""
    test_id = uuid.uuid4().hex
    previous = os.environ.get(TEST_MARKER)
    os.environ[TEST_MARKER] = test_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TEST_MARKER, None)
        else:
            os.environ[TEST_MARKER] = previous
    leftovers = leaks(test_id)
    if leftovers:
        text = describe(leftovers)
        reap(leftovers)
        pytest.fail(f"{request.node.nodeid} leaked processes: {text}", pytrace=False)
    reap_zombie_children()


def _dispositions() -> dict[int, object]:
    """Every catchable signal's current handler (SIG_DFL, SIG_IGN or a callable), less
    SIGALRM, which pytest-timeout installs and removes around each test itself."""
    found = {}
    for sig in set(signal.valid_signals()) - {getattr(signal, "SIGALRM", None)}:  # none on Windows
        try:
            found[int(sig)] = signal.getsignal(sig)
        except (OSError, ValueError):  # SIGKILL/SIGSTOP, or a number with no handler slot
            pass
    return found


def _environment() -> dict[str, str]:
    """os.environ, less the variable pytest itself rewrites at each phase of a test."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


GlobalState = tuple[dict[int, object], str, dict[str, str]]


def global_state() -> GlobalState:
    """What a later test or helper process inherits: signal dispositions, cwd, environment."""
    return _dispositions(), os.getcwd(), _environment()


def restore_global_state(before: GlobalState) -> list[str]:
    """Put back what changed since ``before`` and name it."""
    handlers, cwd, env = before
    changed = []
    for sig, handler in _dispositions().items():
        if handlers.get(sig, handler) != handler:
            changed.append(f"{signal.Signals(sig).name} handler")
            signal.signal(sig, handlers[sig])  # type: ignore[arg-type]
    if os.getcwd() != cwd:
        changed.append(f"cwd ({os.getcwd()})")
        os.chdir(cwd)
    now = _environment()
    keys = sorted(k for k in set(now) | set(env) if now.get(k) != env.get(k))
    if keys:
        changed.append(f"environment ({', '.join(keys)})")
    for key in keys:
        if key in env:
            os.environ[key] = env[key]
        else:
            del os.environ[key]
    return changed


@pytest.fixture(autouse=True)
def _no_global_changes(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that runs portctl code in-process must leave signal dispositions, the working
    directory and the environment as it found them: a helper started later inherits them (a
    SIG_IGN left behind turns every graceful-stop test into a kill test). The state is restored
    and the test fails, naming what changed."""
    before = global_state()
    yield
    changed = restore_global_state(before)
    if changed:
        pytest.fail(f"{request.node.nodeid} changed global state: {'; '.join(changed)}", pytrace=False)


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    owned = Tracker()
    try:
        yield owned
    finally:
        owned.reap_all()


@pytest.fixture
def spawn(tracker: Tracker) -> Callable[..., Popen]:
    """``spawn(argv, env=None, **popen_kwargs)``: a tracked, tagged, reaped Popen."""
    return tracker.spawn


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def app(name: str, *args: object) -> list[str]:
    """argv of a test app in tests/apps."""
    return [sys.executable, str(APPS / f"{name}.py"), *map(str, args)]


def finish(proc: Popen, sig: int = signal.SIGINT, timeout: float = HANG_GUARD_S) -> tuple[int, str, str]:
    """Send ``sig`` (0: none) to a foreground portctl and collect (code, stdout, stderr)."""
    if sig and proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out or "", err or ""


class Portctl:
    """Runs the real CLI (``python -m portctl``) against one run dir, through the tracker."""

    def __init__(self, run_dir: Path, spawn: Callable[..., Popen]) -> None:
        self.run_dir = run_dir
        self._spawn = spawn

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "portctl", "--run-dir", str(self.run_dir), *map(str, args)]

    def run(self, *args: object, env: Optional[dict[str, str]] = None,
            timeout: float = 60) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """Run one portctl command to completion: (args, returncode, stdout, stderr)."""
        proc = self._spawn(self.argv(*map(str, args)), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"portctl {' '.join(map(str, args))} hung; stdout={out!r} stderr={err!r}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def launch(self, *args: object, env: Optional[dict[str, str]] = None) -> Popen:
        """Any portctl command, in the background of the test (stdout/stderr piped)."""
        return self._spawn(self.argv(*map(str, args)), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start(self, *args: object, env: Optional[dict[str, str]] = None) -> Popen:
        """A foreground ``start`` in the background of the test (stdout/stderr piped)."""
        return self.launch("start", *args, env=env)

    def serve(self, port: int, *args: object, env: Optional[dict[str, str]] = None,
              host: str = "127.0.0.1", timeout: float = HANG_GUARD_S) -> Popen:
        """``start --port PORT ARGS...`` and wait until the port accepts, the pid file names it
        and the record says it serves."""
        proc = self.start("--port", port, *args, env=env)

        def up() -> bool:
            if proc.poll() is not None:
                return True
            return accepts(port, host) and self.read_pid(port) == proc.pid \
                and self.record(port).get("state") == "running"

        wait_until(up, timeout, f"portctl to serve port {port}")
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"portctl start exited {proc.returncode}: stdout={out!r} stderr={err!r}")
        return proc

    def pid_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.pid"

    def record_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.json"

    def lock_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.lock"

    def read_pid(self, port: int) -> Optional[int]:
        try:
            return int(self.pid_file(port).read_text())
        except (OSError, ValueError):
            return None

    def record(self, port: int) -> dict[str, Any]:
        """The run record, or {} when it is missing or being replaced."""
        try:
            data = json.loads(self.record_file(port).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def lock_held(self, port: int) -> bool:
        return lock_held(self.lock_file(port))

    def nothing_left(self, port: int) -> bool:
        """No pid file, no record, lock not held (the lock FILE may stay, by design)."""
        return not self.pid_file(port).exists() and not self.record_file(port).exists() \
            and not self.lock_held(port)


@pytest.fixture
def portctl(run_dir: Path, spawn: Callable[..., Popen]) -> Portctl:
    return Portctl(run_dir, spawn)


@pytest.fixture
def bystander(spawn: Callable[..., Popen], tmp_path: Path) -> Iterator[Popen]:
    """A live, sleeping process of ours that must never be signalled: it survives TERM/INT/HUP/
    USR1/USR2 and logs each one to ``bystander.signal_log`` (SIGKILL would show as an exit)."""
    log = tmp_path / f"bystander-{uuid.uuid4().hex[:8]}.signals"
    pid_file = tmp_path / f"bystander-{uuid.uuid4().hex[:8]}.pid"
    proc = spawn(app("slow", "--life", 90, "--signal-log", log, "--pid-file", pid_file))
    wait_file(pid_file)
    proc.signal_log = log  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:  # it shrugs off SIGTERM by design: no need for the tracker's grace
        proc.kill()
        proc.wait(timeout=KILL_WAIT_S)


def untouched(proc: Popen) -> bool:
    """A bystander from the fixture is alive and was sent no signal."""
    log: Path = proc.signal_log  # type: ignore[attr-defined]
    return proc.poll() is None and log.read_text() == ""


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def listener(spawn: Callable[..., Popen], tmp_path: Path) -> Iterator[Callable[..., Popen]]:
    """``listener(port, *args, host="127.0.0.1")``: a foreign holder of ``port`` (tests/apps/
    listener.py), returned once it listens. It logs the signals it gets to ``.signal_log`` and
    survives them (so ``untouched(proc)`` works) unless ``obey_signals=True``."""

    def start(port: int, *args: object, host: str = "127.0.0.1", obey_signals: bool = False) -> Popen:
        tag = uuid.uuid4().hex[:8]
        ready, log = tmp_path / f"listener-{tag}.ready", tmp_path / f"listener-{tag}.signals"
        argv = app("listener", port, "--host", host, "--ready-file", ready, *args)
        if not obey_signals:
            argv += ["--signal-log", str(log)]
        proc = spawn(argv, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: ready.exists() or proc.poll() is not None, what=f"a listener on {host}:{port}")
        if proc.poll() is not None:
            raise AssertionError(f"listener on {host}:{port} failed: {proc.communicate()[1]}")
        log.touch()
        proc.signal_log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    started: list[Popen] = []
    yield start
    for proc in started:  # they shrug off SIGTERM by design: no need for the tracker's grace
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=KILL_WAIT_S)
