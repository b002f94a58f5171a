"""The per-port OS lock on ``.server_<port>.lock``, held by a supervisor for its whole life.

The kernel drops the lock when its holder dies, so "the lock can be taken" is the exact
test for "no live supervisor". The lock is the one filelock takes (flock on POSIX, a
byte-range lock through msvcrt on Windows), so either sees the other's; it is taken
directly because importing filelock 4 costs a supervisor ~10 MiB and ~40 ms (typing,
inspect, logging, hashlib). The lock file itself stays after release, as filelock
intends: unlinking a locked path would split contenders across two inodes.

Any process may flock the file, so "held" is not "held by the recorded supervisor":
``held_by`` tells them apart. The file is opened as a run file (O_NOFOLLOW, ours only).
"""
from __future__ import annotations

import time

from ..platform.current import platform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    import threading
    from typing import Optional

    from .identity import ProcRef

PROBE_WAIT_S = 0.25


class PortLock:
    """A non-blocking exclusive lock; ``acquire`` answers at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; False when it is held elsewhere. A probe (another
        portctl's `status` where the OS does not name lock holders) holds it for an instant:
        that is waited out, briefly."""
        from ..base.poll import until

        def take() -> bool:
            self._fd = platform.try_lock(self.path)
            return self._fd is not None

        return until(take, time.monotonic() + PROBE_WAIT_S)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            platform.unlock(fd)


def is_held(path: Path, likely: Optional[int] = None) -> bool:
    """Whether a live process holds the lock at ``path`` (never creates the file).

    ``likely``: the pid expected to hold it, asked first (on Linux its own /proc files answer
    at once). Else a probe: on Linux a shared lock tried for an instant (no holder minds it);
    elsewhere the exclusive lock, taken for an instant."""
    if likely is not None and platform.holds_lock(likely, path):
        return True
    return platform.lock_is_held(path)


def held_by(path: Path, ref: ProcRef) -> bool:
    """Whether the lock at ``path`` is held by the process ``ref`` names, not merely by someone
    (any process may flock the file). Where the OS names lock holders (Linux: /proc/locks) that
    is exact; elsewhere: the lock is held and ``ref`` is still that live process."""
    if platform.holds_lock(ref.pid, path):
        return True
    holders = platform.lock_holders(path)
    if holders is not None:
        return ref.pid in holders
    if not platform.lock_is_held(path):
        return False
    from .identity import resolve

    return resolve(ref) is not None


def released(path: Path, timeout_s: float) -> threading.Event:
    """An Event set the instant no process holds the lock on ``path`` (a supervisor let go or
    died). A helper thread blocks in the OS's lock wait; where the OS cannot block on this
    lock, it looks with ``is_held`` until ``timeout_s`` has passed."""
    import threading

    event = threading.Event()

    def watch() -> None:
        from ..base.poll import until

        if platform.block_until_unlocked(path) or \
                until(lambda: not is_held(path), time.monotonic() + timeout_s):
            event.set()

    threading.Thread(target=watch, name="portctl-lock-watch", daemon=True).start()
    return event


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
