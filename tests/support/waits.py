"""Handshakes with deadlines: poll until a condition holds, or fail naming what was awaited.
Deadlines only guard against hangs: no test asserts on timing."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

HANG_GUARD_S = 30.0  # deadlines only guard against hangs; nothing asserts on timing

T = TypeVar("T")


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
        from portctl.lock import is_held

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
