"""Who holds a port, is it free, and waiting until it accepts or refuses connections."""
from __future__ import annotations

import socket
import time

from ..base import poll
from ..base.frozen import Frozen, asdict
from ..base.hostnames import lookup_name
from ..base.messages import NOT_LOCAL
from ..platform.current import platform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Iterator, Optional


class Holder(Frozen, kw_only=True):
    """A process listening on a port (pid None: the kernel shows the socket, not its owner).

    ``instance`` is set when the process was started by a portctl instance:
    ``{"name", "run_dir", "port", "token"}`` from the environment it inherited.
    """

    pid: Optional[int]
    name: str
    username: str
    cmdline: tuple[str, ...]
    address: str
    family: str
    port: int
    scope: str = ""  # wildcard | loopback | address
    cwd: Optional[str] = None
    started_at: Optional[str] = None
    parents: tuple[tuple[int, str], ...] = ()  # (pid, name), nearest first
    instance: Optional[dict[str, Any]] = None  # {"name", "run_dir", "port", "token"}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cmdline"] = list(self.cmdline)
        data["parents"] = [{"pid": pid, "name": name} for pid, name in self.parents]
        return data


def holders(port: int) -> list[Holder]:
    """Every process listening on ``port`` on any address, IPv4 and IPv6, one row per (pid, address)."""
    seen: set[tuple[Optional[int], str]] = set()
    found = []
    for pid, address, family in platform.listeners(port):
        if (pid, address) in seen:
            continue
        seen.add((pid, address))
        found.append(_describe(pid, address, family, port))
    return sorted(found, key=lambda h: (h.pid or 0, h.address))


def first_holder(port: int) -> Optional[tuple[int, str]]:
    """(pid, name) of a process listening on ``port``, when one can be named."""
    for holder in holders(port):
        if holder.pid is not None:
            return holder.pid, holder.name
    return None


def _describe(pid: Optional[int], address: str, family: str, port: int) -> Holder:
    where: dict[str, Any] = {"address": address, "family": family, "port": port, "scope": _scope(address)}
    info = platform.describe(pid) if pid is not None else None
    if info is None:
        return Holder(pid=pid, name="?", username="?", cmdline=(), **where)
    return Holder(pid=pid, name=info.name, username=info.username, cmdline=info.cmdline, cwd=info.cwd,
                  started_at=_iso(info.create_time), parents=info.parents,
                  instance=instance_of(info.environ), **where)


def instance_of(env: dict[str, str]) -> Optional[dict[str, Any]]:
    """The portctl instance a process belongs to, from the environment it inherited: its
    record is ``.server_<port>.json`` in ``run_dir``."""
    token = env.get("PORTCTL_TOKEN")
    if not token:
        return None
    port = env.get("PORTCTL_PORT", "")
    return {"name": env.get("PORTCTL_NAME", ""), "run_dir": env.get("PORTCTL_RUN_DIR", ""),
            "port": int(port) if port.isdigit() else None, "token": token}


def _scope(address: str) -> str:
    import ipaddress  # here, not at import: `status` and `port` never need it

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "address"
    if ip.is_unspecified:
        return "wildcard"
    mapped = getattr(ip, "ipv4_mapped", None)
    return "loopback" if ip.is_loopback or (mapped is not None and mapped.is_loopback) else "address"


def _iso(timestamp: Optional[float]) -> Optional[str]:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(timestamp))


def parse_range(text: str) -> tuple[int, int]:
    """``"8000-8100"`` -> (8000, 8100); ValueError unless 1 <= low <= high <= 65535 (one
    number is no range: ``--port-range 1421`` is a mistake for ``--port 1421``)."""
    low_text, sep, high_text = text.partition("-")
    low, high = int(low_text), int(high_text)
    if not sep or not 1 <= low <= high <= 65535:
        raise ValueError(text)
    return low, high


def candidates(preferred: Optional[int], port_range: Optional[tuple[int, int]]) -> Iterator[int]:
    """The preferred port, then the range in order; 0 last, meaning "ask the OS"."""
    if preferred:
        yield preferred
    if port_range:
        yield from (p for p in range(port_range[0], port_range[1] + 1) if p != preferred)
    yield 0


def os_assigned_port(host: str) -> int:
    """A port the OS considers free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def unused_port(preferred: Optional[int] = None, port_range: Optional[tuple[int, int]] = None,
                host: str = "127.0.0.1", skip: Callable[[int], bool] = lambda p: False) -> int:
    """The first free candidate (see ``candidates``) that ``skip`` does not reject."""
    for port in candidates(preferred, port_range):
        if port == 0:
            return os_assigned_port(host)
        if not skip(port) and not is_busy(host, port):
            return port
    raise AssertionError("unreachable: candidates() always ends with 0")




def resolve_host(host: str) -> None:
    """Raise ValueError if ``host`` does not resolve to an address we could listen on: one
    that does not resolve, or one that no interface of this machine has (EADDRNOTAVAIL)."""
    import errno

    try:
        found = socket.getaddrinfo(lookup_name(host), 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(str(exc)) from None
    for family, kind, proto, _, addr in found:
        with socket.socket(family, kind, proto) as sock:
            try:
                sock.bind(addr)  # port 0: any free port, so only the address is tested
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise ValueError(NOT_LOCAL) from None


def is_busy(host: str, port: int) -> bool:
    """Whether anything listens on ``port`` (any address) or ``host:port`` cannot be bound."""
    return bool(platform.listeners(port, among=())) or not platform.can_bind(host, port)


def listening_ports(pids: Iterable[int]) -> set[int]:
    """The TCP ports these processes listen on (those we may not inspect are skipped)."""
    import psutil

    found: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            conns = proc.net_connections("tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
        except psutil.Error:
            continue
        found.update(c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr)
    return found


def connect_host(host: str) -> str:
    """Where to connect to reach a listener bound to ``host`` (wildcards mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def instance_url(host: str, port: int) -> str:
    """The URL of an instance listening on ``host:port``."""
    shown = connect_host(host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


LAN_PROBE = ("10.255.255.255", 9)  # a private address: connecting a UDP socket to it sends nothing


def lan_url(host: str, port: int) -> Optional[str]:
    """For an instance on a wildcard host (0.0.0.0, ::): the URL other machines of the LAN
    would use, from the address this machine routes private traffic from (a UDP connect picks
    the route and sends nothing, so no network access); None without one, or for other hosts."""
    if host not in ("0.0.0.0", "::", ""):
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(LAN_PROBE)
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    if address.startswith("127.") or address == "0.0.0.0":
        return None
    return f"http://{address}:{port}"


def accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """One connection attempt: True if something accepted it."""
    try:
        with socket.create_connection((lookup_name(connect_host(host)), port), timeout=timeout_s):  # type: ignore[arg-type]
            return True
    except OSError:
        return False


def refuses(host: str, port: int, timeout_s: float = 0.25) -> bool:
    """One connection attempt: True only if nothing could accept it. A timeout (a listener
    whose backlog is full drops the handshake) is no refusal: something holds the port."""
    try:
        with socket.create_connection((lookup_name(connect_host(host)), port),  # type: ignore[arg-type]
                                      timeout=timeout_s) as sock:
            # TCP simultaneous open: a connect to a free port may pick that very port as its
            # source and "connect" to itself. That is not a listener.
            return bool(sock.getsockname()[:2] == sock.getpeername()[:2])
    except socket.timeout:
        return False
    except OSError:
        return True


def wait_refusing(host: str, port: int, deadline: float) -> bool:
    """Wait until the port refuses connections (see ``refuses``); False at the deadline."""
    return poll.until(lambda: refuses(host, port), deadline)
