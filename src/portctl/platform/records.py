"""What the platform modules report, shared with the core: a leaf that imports nothing of
portctl but ``frozen``, so the platform modules never import the core."""
from __future__ import annotations

from ..base.frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

    # (pid or None when unknown, local address, "IPv4" | "IPv6")
    Listener = Tuple[Optional[int], str, str]


class ProcessInfo(Frozen, kw_only=True):
    """What `who` shows of a process (read from /proc on Linux, through psutil elsewhere)."""

    pid: int
    name: str
    username: str
    cmdline: tuple[str, ...]
    cwd: Optional[str]
    create_time: Optional[float]
    parents: tuple[tuple[int, str], ...]  # (pid, name), nearest first
    environ: dict[str, str]  # PORTCTL_* variables only
