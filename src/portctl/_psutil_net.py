"""Port holders through psutil: the portable route (macOS, Windows, and Linux without /proc)."""
from __future__ import annotations

import socket
from typing import Optional, Tuple

import psutil

# (pid or None when unknown, local address, "IPv4" | "IPv6")
Listener = Tuple[Optional[int], str, str]


def listeners(port: int) -> list[Listener]:
    """Every TCP listener on ``port``, any address, through psutil."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:  # macOS without root: ask each process we may read
        return _listeners_per_process(port)
    return [_listener(c) for c in conns if _listens_on(c, port)]


def _listeners_per_process(port: int) -> list[Listener]:
    found: list[Listener] = []
    for proc in psutil.process_iter():
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        found.extend((proc.pid, *_listener(c)[1:]) for c in conns if _listens_on(c, port))
    return found


def _listens_on(conn: object, port: int) -> bool:
    laddr = getattr(conn, "laddr", None)
    return bool(laddr) and laddr.port == port and getattr(conn, "status", "") == psutil.CONN_LISTEN


def _listener(conn: object) -> Listener:
    family = "IPv6" if getattr(conn, "family", None) == socket.AF_INET6 else "IPv4"
    return (getattr(conn, "pid", None), conn.laddr.ip, family)  # type: ignore[attr-defined]
