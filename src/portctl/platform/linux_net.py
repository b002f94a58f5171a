"""Linux: which processes hold a listening TCP port, fast.

The kernel answers "which sockets listen on port P" in microseconds through NETLINK_SOCK_DIAG
with a bytecode filter on the source port (as ``ss 'sport = :P'`` does), giving each socket's
inode and owner uid; /proc/net/tcp{,6} is the fallback. Mapping inodes to processes means
reading the /proc/<pid>/fd links of every process we may read, as ``ss -ltnp`` does: a socket
shared across fork (uvicorn --workers, --reload) has many holders, and after its master died
they are siblings with no common parent left, so no search may stop at the first holder.
"""
from __future__ import annotations

import os
import socket
import struct

from ..base.frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional

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
def pids_for_inodes(inodes: set[int], among: Optional[Iterable[int]] = None) -> dict[int, list[int]]:
    """Map socket inodes to every pid holding an fd on them: the fds of every process (of
    ``among`` only, when given) are read, with no early stop, so the answer is complete.
    Unreadable processes (another user's, when we are not root) are skipped, as ``ss`` does."""
    links = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if among is None else map(str, among):
        if name.isdigit():
            for inode in _held(name, links):
                owners.setdefault(inode, []).append(int(name))
    return {inode: sorted(pids) for inode, pids in owners.items()}


def _held(pid: str, links: dict[str, int]) -> list[int]:
    """The inodes of ``links`` that process ``pid`` holds. The fd directory is opened once and
    each link read relative to it: the kernel then resolves one name per fd, not a whole path."""
    try:
        fd_dir = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # gone, or not ours to read (/proc/1/fd even as root here)
        return []
    try:
        names = os.listdir(fd_dir)
        try:  # one tight pass: the common case, no fd closes while we read
            targets = [os.readlink(name, dir_fd=fd_dir) for name in names]
        except OSError:  # one did: again, one by one
            targets = [_readlink(name, fd_dir) for name in names]
    except OSError:  # the process exited while we read
        return []
    finally:
        os.close(fd_dir)
    return [links[target] for target in targets if target in links]


def _readlink(name: str, dir_fd: int) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return ""
