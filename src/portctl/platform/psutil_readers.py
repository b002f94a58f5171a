"""Port holders and process descriptions through psutil: the portable route (macOS, Windows,
and Linux without /proc)."""
from __future__ import annotations

from .records import ProcessInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Optional

    from .records import Listener


def describe(pid: int) -> Optional[ProcessInfo]:
    """The process as `who` shows it; None when it is gone. Unreadable fields stay empty."""
    import psutil

    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return None
    with proc.oneshot():
        env = _ask(proc.environ, {})
        return ProcessInfo(
            pid=pid, name=_ask(proc.name, "?"), username=_ask(proc.username, "?"),
            cmdline=tuple(_ask(proc.cmdline, [])), cwd=_ask(proc.cwd, None),
            create_time=_ask(proc.create_time, None),
            parents=tuple((p.pid, _ask(p.name, "?")) for p in _ask(proc.parents, [])),
            environ={k: v for k, v in env.items() if k.startswith("PORTCTL_")},
        )


def identity(pid: int) -> Optional[tuple[float, tuple[str, ...]]]:
    """(creation time, command line) of ``pid`` while it lives; None when it is gone or a
    zombie. A command line the OS does not show (another user's) is empty."""
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc.create_time(), tuple(_ask(proc.cmdline, []))
    except psutil.Error:
        return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (psutil walks every process to find them)."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def _ask(getter: Callable[[], Any], default: Any) -> Any:
    import psutil

    try:
        return getter()
    except psutil.Error:
        return default


def listeners(port: int, among: Optional[Iterable[int]] = None) -> list[Listener]:
    """Every TCP listener on ``port``, any address, through psutil: each process holding a
    listening socket, not only the first one found; with ``among``, holders are looked up
    among those pids only (``()``: none). A socket without a holder found has pid None."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:  # macOS without root: ask each process we may read
        return _listeners_per_process(port, among)
    found = [_listener(c) for c in conns if _listens_on(c, port)]
    if not found or (among is None and not psutil.LINUX):
        return found
    # psutil's Linux table names one pid per socket, even when forked workers share it: ask
    # each process, and keep the table's rows for sockets of processes we may not read.
    holders = _listeners_per_process(port, among)
    seen = {(address, family) for _, address, family in holders}
    return holders + [(None, address, family) if among is not None else (pid, address, family)
                      for pid, address, family in found if (address, family) not in seen]


def _listeners_per_process(port: int, among: Optional[Iterable[int]] = None) -> list[Listener]:
    import psutil

    found: list[Listener] = []
    procs = psutil.process_iter() if among is None else map(_process, among)
    for proc in procs:
        if proc is None:
            continue
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        found.extend((proc.pid, *_listener(c)[1:]) for c in conns if _listens_on(c, port))
    return found


def _process(pid: int) -> Optional[Any]:
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _listens_on(conn: object, port: int) -> bool:
    import psutil

    laddr: Any = getattr(conn, "laddr", None)
    return bool(laddr) and laddr.port == port and getattr(conn, "status", "") == psutil.CONN_LISTEN


def _listener(conn: object) -> Listener:
    import socket

    family = "IPv6" if getattr(conn, "family", None) == socket.AF_INET6 else "IPv4"
    return (getattr(conn, "pid", None), conn.laddr.ip, family)  # type: ignore[attr-defined]
