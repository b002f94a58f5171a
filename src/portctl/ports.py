"""Who holds a port, is it free, and waiting until it accepts or refuses connections."""
from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import psutil

from . import _platform

_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.05


@dataclass(frozen=True)
class Holder:
    """A process listening on a port (pid None: the kernel shows the socket, not its owner)."""

    pid: Optional[int]
    name: str
    username: str
    cmdline: tuple[str, ...]
    address: str
    family: str
    port: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cmdline"] = list(self.cmdline)
        return data


def holders(port: int) -> list[Holder]:
    """Every process listening on ``port`` on any address, IPv4 and IPv6, one row per (pid, address)."""
    seen: set[tuple[Optional[int], str]] = set()
    found = []
    for pid, address, family in _platform.listeners(port):
        if (pid, address) in seen:
            continue
        seen.add((pid, address))
        found.append(_describe(pid, address, family, port))
    return sorted(found, key=lambda h: (h.pid or 0, h.address))


def _describe(pid: Optional[int], address: str, family: str, port: int) -> Holder:
    name, user, cmdline = "?", "?", ()
    if pid is not None:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                name, user, cmdline = proc.name(), proc.username(), tuple(proc.cmdline())
        except psutil.Error:
            pass
    return Holder(pid, name, user, cmdline, address, family, port)


def resolve_host(host: str) -> None:
    """Raise ValueError if ``host`` does not resolve to an address we could listen on."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(str(exc)) from None


def is_busy(host: str, port: int) -> bool:
    """Whether anything listens on ``port`` (any address) or ``host:port`` cannot be bound."""
    return bool(_platform.listeners(port)) or not _platform.can_bind(host, port)


def connect_host(host: str) -> str:
    """Where to connect to reach a listener bound to ``host`` (wildcards mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """One connection attempt: True if something accepted it."""
    try:
        with socket.create_connection((connect_host(host), port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], deadline: float,
               abort: Callable[[], bool] = lambda: False) -> bool:
    """Poll ``predicate`` (5 ms, backing off to 50 ms) until it holds, ``abort`` holds, or the
    monotonic ``deadline`` passes. True only when the predicate held."""
    delay = _POLL_FIRST_S
    while True:
        if predicate():
            return True
        if abort() or time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _POLL_MAX_S)


def wait_accepting(host: str, port: int, deadline: float,
                   abort: Callable[[], bool] = lambda: False) -> bool:
    return wait_until(lambda: accepts(host, port, 0.25), deadline, abort)


def wait_refusing(host: str, port: int, deadline: float) -> bool:
    return wait_until(lambda: not accepts(host, port, 0.25), deadline)
