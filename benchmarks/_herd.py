"""Processes for the who benchmark: a herd holding many TCP sockets, and target listeners.

Every process started here is bounded three ways: it dies with its parent (PR_SET_PDEATHSIG;
not a target's workers, which outlive their master by design and are reparented to the harness,
a subreaper), it exits after ``LIFETIME_S`` in any case (``alarm``; herd members are
``sleep LIFETIME_S``),
and `Groups` kills and reaps each whole process group in ``close()`` -- which the harness calls
in ``finally``, so Ctrl+C is covered. Start-up is a handshake (a pipe), never a sleep.
Connected sockets linger 0 s, so a killed herd leaves no TIME_WAIT rows behind to slow the
next phase. Linux only, like the peers being measured.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

LIFETIME_S = 600
READY_TIMEOUT_S = 120.0
REAP_TIMEOUT_S = 30.0
OWN_LISTENERS = 3   # listening sockets of each herd member, on ephemeral ports of 127.0.0.1
PAIRS = 6           # connected pairs (both ends held) to the shared herd listeners
SHARED_LISTENERS = 4
TARGET_WORKERS = 3  # holders of each target's socket
SOCKETS_PER_MEMBER = OWN_LISTENERS + 2 * PAIRS
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

_BOUND_LIFE = f"""
import ctypes, os, signal, socket, struct, sys
def bound_life(parent):
    ctypes.CDLL(None).prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    signal.alarm({LIFETIME_S})
"""

# argv: ready_fd size harness_pid. The spawner opens each member's sockets, then starts the
# member as `sleep LIFETIME_S` holding them (inherited fds: a few hundred KiB per member instead
# of a forked Python's few MiB) and reports its pid on the pipe once the exec succeeded.
_SPAWNER = _BOUND_LIFE + f"""
import subprocess
ready, size = int(sys.argv[1]), int(sys.argv[2])
os.set_inheritable(ready, False)
bound_life(int(sys.argv[3]))
spawner = os.getpid()
shared = []
for _ in range({SHARED_LISTENERS}):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4096); shared.append(s)

LINGER_0 = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT once the herd is killed

def sockets(index):
    held = []
    for _ in range({OWN_LISTENERS}):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); held.append(s)
    for pair in range({PAIRS}):
        listener = shared[(index + pair) % len(shared)]
        held.append(socket.create_connection(listener.getsockname(), timeout=30))
        held.append(listener.accept()[0])
        for s in held[-2:]:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    return held

def die_with_spawner():
    ctypes.CDLL(None).prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL)  # kept across exec
    if os.getppid() != spawner:
        os._exit(1)

members = []
for index in range(size):
    held = sockets(index)
    members.append(subprocess.Popen(["sleep", "{LIFETIME_S}"], pass_fds=[s.fileno() for s in held],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    preexec_fn=die_with_spawner))
    for s in held:
        s.close()
    os.write(ready, struct.pack("i", members[-1].pid))
os.close(ready)
while True:
    signal.pause()
"""

# argv: harness_pid workers. Listens, forks the workers (they share the socket, as uvicorn's and
# gunicorn's do), prints "port pid pid ..." and exits: the workers, reparented to the harness
# (a subreaper), are siblings with no holder left between them, so only a complete scan finds
# them all. Each worker bounds its own life (alarm is not inherited across fork).
_TARGET = _BOUND_LIFE + """
bound_life(int(sys.argv[1]))
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
workers = []
for _ in range(int(sys.argv[2])):
    pid = os.fork()
    if pid == 0:
        signal.alarm(LIFETIME)
        while True:
            signal.pause()
    workers.append(pid)
print(s.getsockname()[1], *workers, flush=True)
os._exit(0)
""".replace("LIFETIME", str(LIFETIME_S))


@dataclass
class Target:
    """A listener on 127.0.0.1:``port``, held by ``pids`` (sibling workers) and no other."""

    pids: tuple[int, ...]
    port: int


@dataclass
class Herd:
    """``size`` processes holding ``SOCKETS_PER_MEMBER`` sockets each (pids ascending)."""

    size: int
    pids: list[int]


def become_subreaper() -> bool:
    """Adopt orphaned descendants, so that herd members can be reaped here (Linux only)."""
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0)
    except (OSError, AttributeError):
        return False


class Groups:
    """Every process group started by the benchmark; ``close()`` kills and reaps them all."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, code: str, *args: str, pass_fds: tuple[int, ...] = (),
              stdout: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
        """``python -c code args`` in a new session, registered before anything can fail."""
        argv = [sys.executable, "-c", code, *args]
        proc = subprocess.Popen(argv, stdout=stdout, stdin=subprocess.DEVNULL,
                                pass_fds=pass_fds, start_new_session=True)
        self._procs.append(proc)
        return proc

    def start_target(self) -> Target:
        """A target listener held by ``TARGET_WORKERS`` siblings; returns once they hold it."""
        proc = self.spawn(_TARGET, str(os.getpid()), str(TARGET_WORKERS))
        assert proc.stdout is not None
        words = _read_line(proc.stdout.fileno(), READY_TIMEOUT_S).split()
        if len(words) != 1 + TARGET_WORKERS or not all(w.isdigit() for w in words):
            raise RuntimeError(f"the target listener did not start (said {' '.join(words)!r})")
        proc.wait(timeout=READY_TIMEOUT_S)  # its workers keep the socket
        return Target(pids=tuple(map(int, words[1:])), port=int(words[0]))

    def start_herd(self, size: int) -> Herd:
        """``size`` members; returns once every member holds its sockets."""
        if size == 0:
            return Herd(0, [])
        read_end, write_end = os.pipe()
        try:
            self.spawn(_SPAWNER, str(write_end), str(size), str(os.getpid()), pass_fds=(write_end,),
                       stdout=subprocess.DEVNULL)
            os.close(write_end)
            write_end = -1
            pids = _read_pids(read_end, size, READY_TIMEOUT_S)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        return Herd(size, sorted(pids))

    def close(self) -> list[int]:
        """Kill every group, reap every process; the pgids that still had processes after."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not leak
        try:
            leftovers = [proc.pid for proc in self._procs if not _kill_and_reap(proc)]
            self._procs.clear()
            return leftovers
        finally:
            signal.signal(signal.SIGINT, previous)


def _kill_and_reap(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the group led by ``proc``, wait for all of it; True once none of it is left."""
    pgid = proc.pid
    _killpg(pgid)
    proc.wait(timeout=REAP_TIMEOUT_S)  # its children are ours (subreaper) once it is reaped
    if proc.stdout is not None:
        proc.stdout.close()
    deadline = time.monotonic() + REAP_TIMEOUT_S
    while time.monotonic() < deadline:
        _reap_group(pgid)
        if not _group_exists(pgid):
            return True
        _killpg(pgid)
        time.sleep(0.01)  # poll with a deadline: the kernel finishes exits on its own schedule
    return False


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap_group(pgid: int) -> None:
    """Collect every exited child in group ``pgid`` (no-op if none is ours)."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_readable(fd: int, deadline: float, what: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise RuntimeError(f"{what}: no handshake within {READY_TIMEOUT_S:.0f} s")


def _read_line(fd: int, timeout: float) -> str:
    """One line from ``fd``, or an error after ``timeout`` seconds."""
    deadline, data = time.monotonic() + timeout, b""
    while not data.endswith(b"\n"):
        _wait_readable(fd, deadline, "the target listener")
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def _read_pids(fd: int, count: int, timeout: float) -> list[int]:
    """``count`` pids packed as native ints, as the spawner reports its members."""
    deadline, data = time.monotonic() + timeout, b""
    size = struct.calcsize("i")
    while len(data) < count * size:
        _wait_readable(fd, deadline, "the herd")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError(f"the herd spawner died after {len(data) // size} of {count} members")
        data += chunk
    return [pid for (pid,) in struct.iter_unpack("i", data)]


def tcp_rows() -> int:
    """Rows in /proc/net/tcp and tcp6: what a /proc-parsing tool has to read."""
    rows = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, "rb") as table:
                rows += sum(1 for _ in table) - 1
        except OSError:
            pass
    return rows


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still exist (zombies included)."""
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]


def pid_range(herd: Herd) -> str:
    """'a–b' for the herd's pids, '' for an empty herd."""
    return f"{herd.pids[0]}–{herd.pids[-1]}" if herd.pids else ""
