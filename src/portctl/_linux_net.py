"""Linux: which processes hold a listening TCP port, fast.

The kernel answers "which sockets listen on port P" in microseconds through NETLINK_SOCK_DIAG
with a bytecode filter on the source port (as ``ss 'sport = :P'`` does), giving each socket's
inode and owner uid; /proc/net/tcp{,6} is the fallback. Mapping an inode to processes means
reading /proc/<pid>/fd links: only processes of the socket's uid, newest first, stopping once
every inode is found — then the search spreads from each holder to its parent and children
while they hold the socket too, so a socket shared across fork (uvicorn --workers, --reload)
lists every holder.
"""
from __future__ import annotations

import os
import socket
import struct

from ._linux_proc import children
from ._record import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_INET_DIAG_REQ_BYTECODE = 1
_BC_S_GE, _BC_S_LE = 2, 3
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQ = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states (+ a zeroed 48-byte sockid)
_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")  # inet_diag_msg
_FAMILIES = ((socket.AF_INET, "IPv4"), (socket.AF_INET6, "IPv6"))


class ListeningSocket(Frozen):
    inode: int
    uid: int
    family: str  # "IPv4" | "IPv6"
    address: str
    port: int


def listening_sockets(port: int) -> list[ListeningSocket]:
    """Every TCP socket in LISTEN state on ``port``, any address, IPv4 and IPv6."""
    try:
        return _listening_sockets_netlink(port)
    except OSError:
        return _listening_sockets_procfs(port)


# ---------------------------------------------------------------- netlink
def _listening_sockets_netlink(port: int) -> list[ListeningSocket]:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
        found: list[ListeningSocket] = []
        for seq, (family, label) in enumerate(_FAMILIES, start=1):
            nl.sendto(_request(family, port, seq), (0, 0))
            found.extend(_read_replies(nl, label, port))
        return found


def _request(family: int, port: int, seq: int) -> bytes:
    # Bytecode: accept iff sport >= port and sport <= port; a jump past the end (+4) rejects.
    ops = struct.pack("=BBHBBH", _BC_S_GE, 8, 20, 0, 0, port)
    ops += struct.pack("=BBHBBH", _BC_S_LE, 8, 12, 0, 0, port)
    attr = struct.pack("=HH", 4 + len(ops), _INET_DIAG_REQ_BYTECODE) + ops
    body = _REQ.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN) + bytes(48) + attr
    header = _NLMSG.pack(_NLMSG.size + len(body), _SOCK_DIAG_BY_FAMILY,
                         _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0)
    return header + body


def _read_replies(nl: socket.socket, label: str, port: int) -> list[ListeningSocket]:
    found: list[ListeningSocket] = []
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length, kind = _NLMSG.unpack_from(data, offset)[:2]
            if kind == _NLMSG_DONE:
                return found
            if kind == _NLMSG_ERROR:
                errno = -struct.unpack_from("=i", data, offset + _NLMSG.size)[0]
                raise OSError(errno, os.strerror(errno))
            found.append(_parse_msg(data, offset + _NLMSG.size, label))
            offset += (length + 3) & ~3
        if not data:
            return found


def _parse_msg(data: bytes, offset: int, label: str) -> ListeningSocket:
    fields = _MSG.unpack_from(data, offset)
    family, sport, src = fields[0], fields[4], fields[6]
    raw = src[:4] if family == socket.AF_INET else src
    address = socket.inet_ntop(family, raw)
    uid, inode = fields[13], fields[14]
    return ListeningSocket(inode, uid, label, address, struct.unpack("!H", sport)[0])


# ---------------------------------------------------------------- /proc/net fallback
def _listening_sockets_procfs(port: int) -> list[ListeningSocket]:
    found = []
    wanted = f":{port:04X} "
    for (family, label), name in zip(_FAMILIES, ("tcp", "tcp6")):
        try:
            with open(f"/proc/net/{name}", encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    if wanted in line:
                        found.extend(_parse_proc_line(line, family, label, port))
        except OSError:
            continue
    return found


def _parse_proc_line(line: str, family: int, label: str, port: int) -> list[ListeningSocket]:
    fields = line.split()
    local, state, uid, inode = fields[1], fields[3], fields[7], fields[9]
    address, hex_port = local.split(":")
    if state != "0A" or int(hex_port, 16) != port:
        return []
    return [ListeningSocket(int(inode), int(uid), label, _proc_address(family, address), port)]


def _proc_address(family: int, hexaddr: str) -> str:
    """/proc/net/tcp prints each 32-bit word of the address in host byte order."""
    words = [int(hexaddr[i:i + 8], 16) for i in range(0, len(hexaddr), 8)]
    return socket.inet_ntop(family, struct.pack(f"={len(words)}I", *words))


# ---------------------------------------------------------------- inode -> pids
def pids_for_inodes(inodes: set[int], uid: Optional[int] = None) -> dict[int, list[int]]:
    """Map socket inodes to every pid holding an fd on them. Processes of ``uid`` only (when
    given), newest first; once every inode is found, the search only spreads from holders to
    their parents and children (a socket is shared across fork: uvicorn's master and workers)."""
    links = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, set[int]] = {}
    checked: set[int] = set()
    for pid in sorted((int(n) for n in os.listdir("/proc") if n.isdigit()), reverse=True):
        checked.add(pid)
        _scan(pid, links, owners, uid)
        if len(owners) == len(links):
            break
    todo = sorted({pid for pids in owners.values() for pid in pids})
    while todo:
        holder = todo.pop()
        for kin in (_parent(holder), *children(holder)):
            if kin > 1 and kin not in checked:
                checked.add(kin)
                if _scan(kin, links, owners, None):
                    todo.append(kin)
    return {inode: sorted(pids) for inode, pids in owners.items()}


def _scan(pid: int, links: dict[str, int], owners: dict[int, set[int]], uid: Optional[int]) -> bool:
    """Record which of the sockets ``pid`` holds (skipping it unless it runs as ``uid``, when
    given); True if any. The fd directory is opened once and each link read relative to it:
    the kernel then resolves one name per fd, not a whole /proc path."""
    try:
        fd_dir = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # gone, or not ours to read (/proc/1/fd even as root here)
        return False
    found = False
    try:
        if uid is not None and os.fstat(fd_dir).st_uid != uid:
            return False
        for name in os.listdir(fd_dir):
            try:
                inode = links.get(os.readlink(name, dir_fd=fd_dir))
            except OSError:
                continue
            if inode is not None:
                owners.setdefault(inode, set()).add(pid)
                found = True
    except OSError:
        pass
    finally:
        os.close(fd_dir)
    return found


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0

