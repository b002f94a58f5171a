"""Process identity: (pid, creation time) resolved to a live process, failing closed.

A PID alone can be recycled; every signal portctl sends goes to a process that was
re-resolved here just before, with its creation time matching the recorded one.
psutil is imported on first use: reading run files (`status`) does not need it.
"""
from __future__ import annotations

from ..base.frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional

    import psutil

# psutil derives create_time from boot time + clock ticks (10 ms); allow for rounding.
_CREATE_TIME_TOLERANCE_S = 0.05


class ProcRef(Frozen):
    """What we record about a process so we can find exactly it again."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, proc: psutil.Process) -> ProcRef:
        return cls(proc.pid, proc.create_time())

    @classmethod
    def of_pid(cls, pid: int) -> Optional[ProcRef]:
        """The identity of a live pid now, or None if it is gone or unreadable."""
        proc = process(pid)
        return None if proc is None else cls.of(proc)

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcRef:
        pid, created = data["pid"], data["create_time"]
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise ValueError("pid must be a positive integer")
        if isinstance(created, bool) or not isinstance(created, (int, float)):
            raise ValueError("create_time must be a number")
        return cls(pid, float(created))


def verify(ref: Optional[ProcRef]) -> Optional[tuple[str, ...]]:
    """The command line of the live process ``ref`` names (its pid, created when recorded);
    None when it is gone, a zombie or recycled. Read through the platform (from /proc on
    Linux, no psutil): `stop` verifies each supervisor this way before its signal."""
    if ref is None:
        return None
    from ..platform.current import platform

    seen = platform.identity(ref.pid)
    if seen is None or abs(seen[0] - ref.create_time) > _CREATE_TIME_TOLERANCE_S:
        return None
    return seen[1]


def resolve(ref: Optional[ProcRef]) -> Optional[psutil.Process]:
    """The live process ``ref`` names, or None when it is gone, a zombie, recycled or unreadable."""
    if ref is None:
        return None
    import psutil

    proc = process(ref.pid)
    if proc is None:
        return None
    try:
        if abs(proc.create_time() - ref.create_time) > _CREATE_TIME_TOLERANCE_S:
            return None
    except psutil.Error:
        return None
    return proc if is_alive(proc) else None


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie: an exited process that awaits reaping counts as gone."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def ancestors(proc: psutil.Process) -> list[psutil.Process]:
    """``proc``'s parent, its parent's, and so on up to init; none when that cannot be read."""
    import psutil

    try:
        return proc.parents()
    except psutil.Error:
        return []


def process(pid: Optional[int]) -> Optional[psutil.Process]:
    """The process with this pid now (no identity check), or None if there is none."""
    import psutil

    try:
        return psutil.Process(pid) if pid else None
    except (psutil.Error, ValueError):
        return None
