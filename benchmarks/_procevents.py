"""Process events from the kernel (Linux's proc connector, a netlink socket): the exact
CLOCK_MONOTONIC time of every fork, exec and exit on the machine, without polling /proc.
The benchmarks use it to split a restart into the supervisor's part (the old child's exit →
the new child's exec) and the child's own start-up. Root only (CAP_NET_ADMIN); elsewhere
``ProcEvents.open()`` is None and those splits are not reported.

Nothing of ours runs while events come: they queue in the socket's kernel buffer, and are read
once the measurement is over (a listening thread would wake for every fork, exec and exit of
the tool under test, on the same two cores). Hand-written: the connector is a few structs over
a netlink socket, and no maintained Python package wraps it."""
from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple, Optional, Sequence

NETLINK_CONNECTOR, CN_IDX_PROC, CN_VAL_PROC = 11, 1, 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3
KINDS = {0x1: "fork", 0x2: "exec", 0x80000000: "exit"}
HEADERS = 16 + 20  # nlmsghdr, cn_msg
BUFFER = 8 << 20  # bytes of events the kernel may hold for us (~100,000 events)


class Event(NamedTuple):
    kind: str  # fork, exec, exit
    at_ns: int  # CLOCK_MONOTONIC (time.monotonic_ns())
    pid: int  # the process (for fork: the new one; for exit: each thread's, under its process)


class ProcEvents:
    """Subscribed from ``open()`` until ``close()``; ``first``/``last`` read what queued."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._events: list[Event] = []
        self.lost = False  # the kernel's buffer overflowed: some events are missing

    @classmethod
    def open(cls) -> Optional["ProcEvents"]:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
            sock.bind((os.getpid(), CN_IDX_PROC))
            listen = struct.pack("=I", PROC_CN_MCAST_LISTEN)
            cn_msg = struct.pack("=IIIIHH", CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(listen), 0) + listen
            sock.send(struct.pack("=IHHII", 16 + len(cn_msg), NLMSG_DONE, 0, 0, os.getpid()) + cn_msg)
        except (OSError, AttributeError):  # not Linux, or not root
            return None
        return cls(sock)

    def close(self) -> None:
        self._sock.close()

    def replaced(self, old: Sequence[int], new: Sequence[int], since_ns: int) -> Optional[tuple[int, int]]:
        """A restart, from ``since_ns`` on: (when the last thread of ``old`` exited, which is
        when their parent can wait for them; when the first of ``new`` exec'd). None when
        either is missing, or events were lost."""
        exits = [t for pid in old for t in self._times("exit", pid, since_ns)]
        execs = [t for pid in new for t in self._times("exec", pid, since_ns)]
        if not exits or not execs or self.lost:
            return None
        return max(exits), min(execs)

    def _times(self, kind: str, pid: int, since_ns: int) -> list[int]:
        self._drain()
        return [e.at_ns for e in self._events if e.kind == kind and e.pid == pid and e.at_ns >= since_ns]

    def _drain(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:  # ENOBUFS: the buffer overflowed
                self.lost = True
                continue
            what, _cpu, at_ns = struct.unpack_from("=IIQ", data, HEADERS)
            kind = KINDS.get(what)
            if kind is None:
                continue
            body = HEADERS + 16
            # fork: parent pid, parent tgid, child pid, child tgid; exec and exit: pid, tgid
            if kind == "fork":
                _, _, pid, tgid = struct.unpack_from("=IIII", data, body)
                if pid != tgid:
                    continue  # a new thread, not a process
            else:
                tgid = struct.unpack_from("=II", data, body)[1]
            self._events.append(Event(kind, at_ns, tgid))
