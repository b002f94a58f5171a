"""Linux: describe a process straight from /proc (what `who` shows), without importing psutil:
at ~25 ms psutil's import alone would cost more than the whole lookup."""
from __future__ import annotations

import os

from .records import ProcessInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_TICKS = os.sysconf("SC_CLK_TCK")
# CONFIG_PROC_CHILDREN: without it the kernel does not list children, and psutil must walk
# every process to find them.
_HAS_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def describe(pid: int) -> Optional[ProcessInfo]:
    """Name, user, command line, cwd, start time, parents and portctl environment of ``pid``;
    None when it is gone. Fields we may not read (another user's cwd, environ) stay empty."""
    stat = _stat(pid)
    if stat is None:
        return None
    name, _, ppid, started = stat
    cmdline = _read(f"/proc/{pid}/cmdline").split(b"\0")
    argv = tuple(a.decode(errors="replace") for a in cmdline if a)
    return ProcessInfo(
        pid=pid,
        name=_full_name(name, argv),
        username=_username(pid),
        cmdline=argv,
        cwd=_readlink(f"/proc/{pid}/cwd"),
        create_time=_boot_time() + started / _TICKS,
        parents=tuple(_parents(ppid)),
        environ=_portctl_environ(pid),
    )


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (forked by any of its threads), read from
    /proc/<pid>/task/*/children: one read per thread, not psutil's walk of every process."""
    if not _HAS_CHILDREN_FILES:
        from .psutil_readers import children as walk

        return walk(pid)
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone
        return []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found.extend(int(c) for c in fh.read().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def identity(pid: int) -> Optional[tuple[float, tuple[str, ...]]]:
    """(creation time, command line) of ``pid`` while it lives; None when it is gone or a
    zombie. What psutil's create_time, status and cmdline would say, without its import (a
    stop verifies each supervisor this way before its signal). The start time is read on
    both sides of the command line: a pid recycled in between is no match (None)."""
    first = _start(pid)
    if first is None:
        return None
    cmdline = _read(f"/proc/{pid}/cmdline").split(b"\0")
    if _start(pid) != first:
        return None
    return _boot_time() + first / _TICKS, tuple(a.decode(errors="replace") for a in cmdline if a)


def _start(pid: int) -> Optional[int]:
    """The start time of ``pid`` in clock ticks after boot; None when it is gone or a zombie."""
    stat = _stat(pid)
    return None if stat is None or stat[1] in ("Z", "X") else stat[3]


def _stat(pid: int) -> Optional[tuple[str, str, int, int]]:
    """(name, state, parent pid, start time in clock ticks) from /proc/PID/stat; None when gone."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    head, _, rest = raw.rpartition(b")")
    fields = rest.split()
    return head.partition(b"(")[2].decode(errors="replace"), fields[0].decode(), int(fields[1]), int(fields[19])


def _full_name(comm: str, argv: tuple[str, ...]) -> str:
    """comm is cut at 15 characters; the executable's name completes it, as psutil does."""
    if len(comm) >= 15 and argv:
        base = os.path.basename(argv[0])
        if base.startswith(comm):
            return base
    return comm


def _parents(ppid: int) -> list[tuple[int, str]]:
    chain: list[tuple[int, str]] = []
    while ppid > 0 and len(chain) < 64:
        stat = _stat(ppid)
        if stat is None:
            break
        chain.append((ppid, stat[0]))
        ppid = stat[2]
    return chain


def _username(pid: int) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return "?"
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _portctl_environ(pid: int) -> dict[str, str]:
    env = {}
    for item in _read(f"/proc/{pid}/environ").split(b"\0"):
        if item.startswith(b"PORTCTL_"):
            key, _, value = item.decode(errors="replace").partition("=")
            env[key] = value
    return env


_BOOT: list[float] = []


def _boot_time() -> float:
    if not _BOOT:
        for line in _read("/proc/stat").splitlines():
            if line.startswith(b"btime"):
                _BOOT.append(float(line.split()[1]))
                break
        else:
            _BOOT.append(0.0)
    return _BOOT[0]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _readlink(path: str) -> Optional[str]:
    try:
        return os.readlink(path)
    except OSError:
        return None
