"""Linux refinements: children die with the supervisor, orphans come back to it,
and port holders are found from the kernel's socket tables instead of psutil."""
from __future__ import annotations

import os
import signal

from . import posix as _posix
from .linux_proc import children as children  # /proc beats psutil here
from .linux_proc import describe as describe
from .linux_proc import identity as identity
from .posix import STOP_SIGNALS as STOP_SIGNALS
from .posix import WAKE_INTERVAL_S as WAKE_INTERVAL_S
from .posix import can_bind as can_bind
from .posix import graceful_group as graceful_group
from .posix import graceful_one as graceful_one
from .posix import is_privileged as is_privileged
from .posix import outside_group as outside_group
from .posix import block_until_unlocked as block_until_unlocked
from .posix import request_stop as request_stop
from .posix import spawn_detached as spawn_detached
from .posix import stop_requested as stop_requested
from .posix import try_lock as try_lock
from .posix import unlock as unlock

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from pathlib import Path
    from typing import Callable, Iterable, Mapping, Optional, Sequence

    from .forking import ForkServer
    from .records import Listener

NAME = "linux"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int]:
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


def spawn(argv: Sequence[str], env: Mapping[str, str], cwd: Path,
          capture: bool = False) -> subprocess.Popen[bytes]:
    """Start the child in its own session; the kernel SIGKILLs it if the supervisor dies."""
    prctl, parent = _prctl(), os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before the prctl took effect
            os._exit(1)

    return _posix.spawn(argv, env, cwd, capture, preexec=die_with_parent)


def reap_adopted(exclude: int) -> None:
    """posix's, with the children read from /proc: psutil would walk every process (~2 ms
    on the supervisor's exit path, and on each of its readiness checks)."""
    _posix.reap(children(os.getpid()), exclude)


def become_subreaper() -> None:
    """Orphaned descendants (double-forked, setsid) re-parent to us, so no tree walk loses them."""
    _prctl()(_PR_SET_CHILD_SUBREAPER, 1)


def listeners(port: int, among: Optional[Iterable[int]] = None) -> list[Listener]:
    """Every TCP listener on ``port`` from netlink (or /proc), each holder's pid from
    /proc/<pid>/fd: every process's, or those of ``among`` only (``()``: none). A socket
    without a holder found is listed once with pid None."""
    from . import linux_net as _linux_net  # sockets and struct: not for `status`

    sockets = _linux_net.listening_sockets(port)
    if not sockets:
        return []
    owners = _linux_net.pids_for_inodes({s.inode for s in sockets}, among)
    found: list[Listener] = []
    for sock in sockets:
        pids: Sequence[Optional[int]] = owners.get(sock.inode) or [None]
        found.extend((pid, sock.address, sock.family) for pid in pids)
    return found


def wait_exits(pids: Sequence[int], timeout_s: float) -> None:
    """Return as soon as one of ``pids`` exits (a zombie counts), or after ``timeout_s``: one
    poll on their pidfds (Linux 5.3+); without pidfds, the portable fallback."""
    import math
    import select

    if not pids:
        return
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                return  # gone already
            except (AttributeError, OSError):  # Python or kernel without pidfd_open
                return _posix.wait_exits(pids, timeout_s)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(math.ceil(max(0.0, timeout_s) * 1000))
    finally:
        for fd in fds:
            os.close(fd)


def lock_holders(path: Path) -> Optional[set[int]]:
    """The pids /proc/locks names for flock locks on ``path``'s inode (exact: the kernel's word).
    A symlink is not followed: its target is no lock of ours."""
    try:
        st = os.lstat(path)
        with open("/proc/locks", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and wanted in fields and "->" not in fields:  # "->": a waiter
            holders.add(int(fields[fields.index(wanted) - 1]))
    return holders


def lock_is_held(path: Path) -> bool:
    """Whether a process holds the lock on ``path`` (never creating the file): a shared flock
    tried without waiting and let go at once. Only an exclusive lock (a supervisor's, a stray
    `flock`'s) refuses it; other probes and waiters never do, so none sees another as a holder.
    Not /proc/locks: its first read in a process waits for an RCU grace period (5-20 ms here,
    on the way to a project start's first launch) and holds up every flock call meanwhile. A
    file we may not open is left to /proc/locks."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return False
    except OSError:  # another user's, or a symlink (whose own inode nobody locks)
        return bool(lock_holders(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without flock: /proc/locks still knows
        return bool(lock_holders(path))
    finally:
        os.close(fd)  # drops the shared lock, if we got it
    return False


def holds_lock(pid: int, path: Path) -> bool:
    """Whether /proc shows ``pid`` holding the flock on ``path``'s inode through a file of its
    own (/proc/PID/fdinfo names the locks taken through each open file, with their taker).
    Read from that process's files alone: the first read of /proc/locks in a process waits for
    an RCU grace period (5-20 ms here), and `stop` would wait on it before its first signal.
    False when not shown (not held by it, not ours to read, an older kernel): then ask
    ``lock_holders``."""
    try:
        st = os.lstat(path)
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}".encode()
    for fd in fds:
        try:
            opened = os.stat(f"/proc/{pid}/fd/{fd}")
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as fh:
                lines = fh.read().splitlines()
        except OSError:  # closed meanwhile
            continue
        for line in lines:
            fields = line.split()
            if fields[:1] == [b"lock:"] and b"FLOCK" in fields and b"->" not in fields \
                    and wanted in fields and fields[fields.index(wanted) - 1] == str(pid).encode():
                return True
    return False


def fork_server(argv: Sequence[str], cwd: str, main: Optional[Callable[[], None]] = None) -> ForkServer:
    """One server forks every supervisor of a project start (``forking``): one import of
    the supervisor instead of one per service, its pages shared."""
    from .forking import start_server

    return start_server(argv, cwd, main, wait_exits)


def serve_forks(child: Callable[[bytes], int]) -> None:
    """``posix.serve_forks``, once what a Linux supervisor loads on its way to serving
    (prctl through ctypes, the netlink reader) is imported, for all the forks at once."""
    import ctypes  # noqa: F401

    from . import linux_net  # noqa: F401

    _posix.serve_forks(child)
