"""Windows process and socket primitives: the surface of ``posix``
(``protocol.Platform``).

Written against the documented Win32 and psutil behaviour; not yet run on Windows (the
CI matrix has a Windows job that has never run): only the Linux machine has verified portctl.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
from ctypes import wintypes
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import psutil

from . import stoprequest
from .psutil_readers import children as children
from .psutil_readers import describe as describe
from .psutil_readers import identity as identity
from .psutil_readers import listeners as listeners  # net_connections needs no admin here

NAME = "windows"
STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGBREAK)
# A blocked lock wait is not interrupted by Ctrl+C on Windows: wake up to let handlers run.
WAKE_INTERVAL_S: Optional[float] = 0.25

_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9
_jobs: list[int] = []  # job handles live as long as the supervisor: closing them kills the tree


class _IoCounters(ctypes.Structure):
    _fields_ = [(n, ctypes.c_ulonglong) for n in (
        "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
        "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]


class _BasicLimits(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", wintypes.DWORD),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", wintypes.DWORD),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", wintypes.DWORD),
        ("SchedulingClass", wintypes.DWORD),
    ]


class _ExtendedLimits(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", _BasicLimits),
        ("IoInfo", _IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


def spawn(argv: Sequence[str], env: Mapping[str, str], cwd: Path,
          capture: bool = False) -> subprocess.Popen[bytes]:
    """New process group (so CTRL_BREAK reaches only the child) inside a kill-on-close job."""
    stdin = subprocess.DEVNULL if capture else None
    pipe = subprocess.PIPE if capture else None
    proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=stdin, stdout=pipe,
                            stderr=subprocess.STDOUT if capture else None,
                            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
    _assign_to_job(int(proc._handle))  # type: ignore[attr-defined]
    return proc


def _assign_to_job(process_handle: int) -> None:
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        return
    limits = _ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    kernel32.SetInformationJobObject(
        job, _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(limits), ctypes.sizeof(limits))
    kernel32.AssignProcessToJobObject(job, process_handle)
    _jobs.append(job)


def become_subreaper() -> None:
    """The job object already ties the tree to the supervisor."""


def reap_adopted(exclude: int) -> None:
    """Windows has no zombies to collect."""


def graceful_group(leader: int, signame: str = "TERM") -> None:
    """CTRL_BREAK_EVENT to the child's process group (the Ctrl+C a console would send), for
    every ``signame``: a console has no other way to ask."""
    try:
        psutil.Process(leader).send_signal(signal.CTRL_BREAK_EVENT)
    except psutil.NoSuchProcess:
        pass


def graceful_one(proc: psutil.Process, signame: str = "TERM") -> None:
    """A process outside our group cannot get a console event: terminate it."""
    proc.terminate()


def request_stop(pid: int, run_dir: Path, port: int, token: str) -> None:
    """Leave a stop request (pid and instance token) the supervisor picks up on its next
    wake-up, every 0.25 s; see stoprequest.py."""
    stoprequest.write(run_dir, port, pid, token)


def stop_requested(run_dir: Path, port: int, token: str) -> bool:
    return stoprequest.take(run_dir, port, os.getpid(), token)


def is_privileged() -> bool:
    try:
        return bool(ctypes.windll.shell32.IsUserAnAdmin())
    except OSError:
        return False


def can_bind(host: str, port: int) -> bool:
    """SO_EXCLUSIVEADDRUSE: Windows' SO_REUSEADDR would let us bind over a live listener."""
    for family, _, _, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            try:
                sock.bind(addr)
            except OSError:
                return False
    return True


def outside_group(leader: int, procs: list[psutil.Process]) -> list[psutil.Process]:
    """Descendants stay in the child's console group; the job object covers the rest."""
    return []


def spawn_detached(argv: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
    """A background supervisor without a console, in its own process group."""
    flags = (subprocess.DETACHED_PROCESS
             | subprocess.CREATE_NEW_PROCESS_GROUP)
    return subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, creationflags=flags)


def try_lock(path: Path) -> Optional[int]:
    """Open ``path`` (creating it) and lock its first byte without blocking (the call filelock
    makes): the fd that holds the lock, or None when another process holds it. Windows does
    not delete a file that is open, so the file locked is the one at ``path``. Anything but a
    regular file there is refused (safefile.UnsafeFile)."""
    from ..base.safefile import open_file

    try:
        fd = open_file(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # refused while another process has it locked open
        return None
    if not _lock_first_byte(fd):
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    """Release a lock from ``try_lock``."""
    import msvcrt

    try:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)


def lock_is_held(path: Path) -> bool:
    """Whether another process holds the lock on ``path``: take it for an instant (never
    creating the file)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return os.path.exists(path)  # open refused while another process has it locked open
    if not _lock_first_byte(fd):
        os.close(fd)
        return True
    unlock(fd)
    return False


def _lock_first_byte(fd: int) -> bool:
    import msvcrt

    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def lock_holders(path: Path) -> Optional[set[int]]:
    """Windows does not tell who holds a byte-range lock."""
    return None


def holds_lock(pid: int, path: Path) -> bool:
    """Whether ``pid`` is seen holding the lock on ``path``: never here (Windows does not say)."""
    return False


def block_until_unlocked(path: Path) -> bool:
    """msvcrt cannot wait on a lock without retrying once a second: say so (the caller polls)."""
    return False


def wait_exits(pids: Sequence[int], timeout_s: float) -> None:
    """Return when one of ``pids`` may have exited, or after ``timeout_s``: a short sleep (the
    caller looks again)."""
    import time

    time.sleep(max(0.0, min(timeout_s, 0.005)))


def fork_server(argv: Sequence[str], cwd: str, main: Optional[Callable[[], None]] = None) -> None:
    """None: Windows has no fork; each supervisor runs its own interpreter."""
    return None


def serve_forks(child: Callable[[bytes], int]) -> None:
    """Windows has no fork: there is no fork server to run."""
    raise OSError("forked supervisors need fork(), which Windows does not have")
