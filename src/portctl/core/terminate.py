"""The one place that escalates: graceful signal -> bounded wait -> kill the tree, leaves
first -> bounded wait. Already-gone is success; a permission error is never swallowed."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Optional

import psutil

from ..platform.current import platform
from ..base.errors import PermissionDenied, PortctlError
from .identity import is_alive, process

KILL_WAIT_S = 5.0
HURRY_CHECK_S = 0.05  # during the grace period, how often ``hurry`` is asked


def never() -> bool:
    return False


def stop_tree(
    roots: Iterable[psutil.Process],
    grace_s: float,
    *,
    group_leader: Optional[int] = None,
    hurry: Callable[[], bool] = never,
    signame: str = "TERM",
) -> bool:
    """Stop ``roots`` and every descendant; return once none of them is alive: True when some
    had to be killed (the grace period ran out, or ``hurry`` cut it short).

    With ``group_leader`` the graceful signal goes to that process group (as a terminal's
    Ctrl+C would) and separately to descendants that left the group; otherwise to each root.
    ``hurry`` returning True (a second Ctrl+C) cuts the grace period short. ``signame`` is
    the graceful signal (``INT`` for SIGINT; Windows sends its console event whatever it is).
    """
    roots = [p for p in roots if is_alive(p)]
    tree = _with_descendants(roots)
    if not tree:
        return False
    _graceful(roots, tree, group_leader, signame)
    if _wait_gone(tree, time.monotonic() + grace_s, hurry):
        return False
    tree = _with_descendants(_alive(tree))  # include what was spawned during the grace period
    for proc in reversed(tree):  # leaves first, so no parent respawns a killed child
        _send(proc, psutil.Process.kill)
    if not _wait_gone(tree, time.monotonic() + KILL_WAIT_S):
        raise PortctlError.survivors([p.pid for p in _alive(tree)])
    return True


def _wait_gone(tree: list[psutil.Process], deadline: float, hurry: Callable[[], bool] = never) -> bool:
    """True once none of ``tree`` is alive; False when ``hurry`` holds or the monotonic
    ``deadline`` passes. Waits on the exits themselves (``platform.wait_exits``), so the
    return follows the last exit at once; ``hurry`` is asked every HURRY_CHECK_S."""
    while True:
        alive = _alive(tree)
        if not alive:
            return True
        left = deadline - time.monotonic()
        if left <= 0 or hurry():
            return False
        platform.wait_exits([p.pid for p in alive], min(left, HURRY_CHECK_S))


def _graceful(roots: list[psutil.Process], tree: list[psutil.Process],
              group_leader: Optional[int], signame: str) -> None:
    def one(proc: psutil.Process) -> None:
        platform.graceful_one(proc, signame)

    if group_leader is None:
        for proc in _topmost(roots):
            _send(proc, one)
        return
    platform.graceful_group(group_leader, signame)
    for proc in platform.outside_group(group_leader, tree):
        _send(proc, one)


def _send(proc: psutil.Process, action: Callable[[psutil.Process], None]) -> None:
    try:
        action(proc)
    except psutil.NoSuchProcess:
        pass
    except psutil.AccessDenied:
        raise PermissionDenied.for_pid(proc.pid) from None


def child_processes(pid: int) -> list[psutil.Process]:
    """The live direct children of ``pid`` (adopted orphans too, for a subreaper)."""
    return [proc for proc in map(process, platform.children(pid)) if proc is not None]


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid``, parents before children."""
    return _with_descendants(child_processes(pid))


def _with_descendants(roots: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Roots and their descendants, parents before children, each process once."""
    ordered: dict[int, psutil.Process] = {}
    todo = list(roots)
    while todo:
        proc = todo.pop(0)
        if proc.pid not in ordered:
            ordered[proc.pid] = proc
            todo.extend(child_processes(proc.pid))
    return list(ordered.values())


def _topmost(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Drop processes whose ancestor is also in the list: the ancestor stops them."""
    pids = {p.pid for p in procs}

    def has_listed_ancestor(proc: psutil.Process) -> bool:
        try:
            return any(parent.pid in pids for parent in proc.parents())
        except psutil.Error:
            return False

    return [p for p in procs if not has_listed_ancestor(p)]


def _alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if is_alive(p)]
