"""Linux refinements: children die with the supervisor, orphans come back to it,
and port holders are found from the kernel's socket tables instead of psutil."""
from __future__ import annotations

import os
import signal

from ._posix import *  # noqa: F401,F403
from ._linux_proc import children, describe  # noqa: F811 - /proc beats psutil here
from . import _posix
from ._posix import __all__  # noqa: F401

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from pathlib import Path
    from typing import Callable, Mapping, Optional, Sequence

    from ._psutil_net import Listener

NAME = "linux"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int]:
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]


def spawn(argv: Sequence[str], env: Mapping[str, str], cwd: Path,
          capture: bool = False) -> subprocess.Popen[bytes]:
    """Start the child in its own session; the kernel SIGKILLs it if the supervisor dies."""
    prctl, parent = _prctl(), os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before the prctl took effect
            os._exit(1)

    return _posix.spawn(argv, env, cwd, capture, preexec=die_with_parent)


def reap_adopted(exclude: int) -> None:
    """Collect exit statuses of adopted children other than ``exclude`` (our Popen child)."""
    _posix.reap(children(os.getpid()), exclude)


def become_subreaper() -> None:
    """Orphaned descendants (double-forked, setsid) re-parent to us, so no tree walk loses them."""
    _prctl()(_PR_SET_CHILD_SUBREAPER, 1)


def listeners(port: int) -> list[Listener]:
    """Every TCP listener on ``port`` from netlink (or /proc), pids from /proc/<pid>/fd."""
    from . import _linux_net  # sockets and struct: not for `status`

    sockets = _linux_net.listening_sockets(port)
    if not sockets:
        return []
    owners: dict[int, list[int]] = {}
    for uid in {s.uid for s in sockets}:
        owners.update(_linux_net.pids_for_inodes({s.inode for s in sockets if s.uid == uid}, uid))
    unowned = {s.inode for s in sockets} - owners.keys()
    if unowned:  # a socket handed to a process of another user (socket activation, setuid)
        owners.update(_linux_net.pids_for_inodes(unowned, None))
    found: list[Listener] = []
    for sock in sockets:
        pids = owners.get(sock.inode) or [None]
        found.extend((pid, sock.address, sock.family) for pid in pids)
    return found


def wait_exits(pids: Sequence[int], timeout_s: float) -> None:
    """Return as soon as one of ``pids`` exits (a zombie counts), or after ``timeout_s``: one
    poll on their pidfds (Linux 5.3+); without pidfds, the portable fallback."""
    import math
    import select

    if not pids:
        return
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                return  # gone already
            except (AttributeError, OSError):  # Python or kernel without pidfd_open
                return _posix.wait_exits(pids, timeout_s)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(math.ceil(max(0.0, timeout_s) * 1000))
    finally:
        for fd in fds:
            os.close(fd)


def lock_holders(path: Path) -> Optional[set[int]]:
    """The pids /proc/locks names for flock locks on ``path``'s inode (exact: the kernel's word)."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and wanted in fields and "->" not in fields:  # "->": a waiter
            holders.add(int(fields[fields.index(wanted) - 1]))
    return holders
