"""Ports for a test to use, and who listens on one (seen through psutil, not through portctl)."""
from __future__ import annotations

import socket
from typing import Iterable

import psutil


def unused_port(host: str = "127.0.0.1") -> int:
    """A port the OS calls free right now (bind to 0). Others may take it later: pick one per use."""
    return free_ports(1, host)[0]


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


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_block(size: int, avoid: Iterable[int] = ()) -> int:
    """The first of ``size`` consecutive ports that are free right now, none of them in ``avoid``."""
    avoid = set(avoid)
    for _ in range(200):
        base = unused_port()
        if base + size > 65535 or avoid & set(range(base, base + size)):
            continue
        socks = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no block of free ports")
