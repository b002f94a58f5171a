"""The per-port OS lock on ``.server_<port>.lock``, held by a supervisor for its whole life.

The kernel drops the lock when its holder dies, so "the lock can be taken" is the exact
test for "no live supervisor". The lock file itself stays after release, as filelock
intends: unlinking a locked path would split contenders across two inodes.
"""
from __future__ import annotations

from . import _platform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

PROBE_WAIT_S = 0.25


class PortLock:
    """A non-blocking exclusive lock; ``acquire`` answers at once."""

    def __init__(self, path: Path) -> None:
        import filelock  # ~40 ms to import: only where a lock is really taken

        self.path = path
        self._lock = filelock.FileLock(str(path), timeout=0)
        self._timeout = filelock.Timeout

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; False when it is held elsewhere. A probe (another
        portctl's `status`) holds it for an instant: that is waited out, briefly."""
        try:
            self._lock.acquire(timeout=PROBE_WAIT_S, poll_interval=0.01)
        except self._timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def __enter__(self) -> PortLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_held(path: Path) -> bool:
    """Whether a live process holds the lock at ``path`` (never creates the file).

    Where the OS names lock holders (Linux: /proc/locks) nothing is locked to find out;
    elsewhere the probe takes the same OS lock filelock takes, for an instant."""
    holders = _platform.lock_holders(path)
    if holders is not None:
        return bool(holders)
    return _platform.lock_is_held(path)


def remove_if_free(path: Path) -> bool:
    """Delete a lock file nobody holds, unlinking it while we hold it; True if removed."""
    if not path.exists():
        return False
    probe = PortLock(path)
    if not probe.acquire():
        return False
    try:
        path.unlink(missing_ok=True)
    finally:
        probe.release()
    return True
