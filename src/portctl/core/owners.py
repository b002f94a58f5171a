"""Who owns a port's lock and a process: the verified live supervisor of a port, the live
instance a process belongs to, and the tokens of a run dir's instances. Stop, free and clean
ask here before acting: identity before any signal, fail closed."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..base import messages, poll
from ..platform.current import platform
from ..base.errors import AlreadyRunning, PortctlError
from .identity import ProcRef, verify
from .lock import is_held
from .runfiles import Record, RunDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    import psutil

SETTLE_S = 5.0  # lock held, files not (yet, or any more) there: a supervisor starting or exiting

Notify = Callable[[str], None]  # how stop, free and clean tell what they did (a printer, a logger)


def quiet(_: str) -> None:
    pass


def live_supervisor(run_dir: RunDir, port: int) -> Optional[ProcRef]:
    """The verified supervisor holding ``port``'s lock, None if none; raise if files are tampered.
    Verified without psutil where the platform reads processes itself (``identity.verify``).

    A supervisor writes its files just after taking the lock and removes them just before
    releasing it: lock and files disagreeing for a moment is no tampering, so wait it out."""
    lock = run_dir.lock_file(port)

    def settled() -> bool:
        both = run_dir.read_pid(port) is not None and run_dir.read_record(port) is not None
        return both or not is_held(lock)

    poll.until(settled, time.monotonic() + SETTLE_S)
    pid, record = run_dir.read_pid(port), run_dir.read_record(port)
    if not is_held(lock, record.supervisor.pid if record else None):
        return None
    cmdline = verify(record.supervisor) if record else None
    reason = _distrust(port, lock, pid, record, cmdline)
    if reason is not None:
        exiting = pid is None or record is None  # it removes its files, then lets go
        if not is_held(lock) or (exiting and poll.until(lambda: not is_held(lock),
                                                              time.monotonic() + SETTLE_S)):
            return None  # it exited while we looked: nothing is running any more
        raise PortctlError.tampered(port, reason)
    return record.supervisor if record else None


def _distrust(port: int, lock: Path, pid: Optional[int], record: Optional[Record],
              cmdline: Optional[Sequence[str]]) -> Optional[str]:
    """Why the lock and the files do not name one live portctl supervisor (None: they do).
    The files can be edited together; the lock cannot: its holder must be the recorded
    supervisor (where the OS says who holds it), alive, a portctl process, and the pid file's."""
    recorded = record.supervisor.pid if record else None
    shown = recorded is not None and platform.holds_lock(recorded, lock)  # then it is the one holder
    holders = None if shown else platform.lock_holders(lock)
    if holders and recorded not in holders:
        return messages.holder_mismatch(holders, recorded)
    if pid != recorded:
        return messages.pid_file_mismatch(port, pid, recorded)
    if cmdline is None or recorded is None:
        return messages.supervisor_gone(recorded)
    if not _is_portctl(cmdline, lock):
        return messages.not_portctl(recorded)
    return None


def _is_portctl(cmdline: Sequence[str], lock: Path) -> bool:
    """Whether ``cmdline`` runs portctl (it names it; the lock's own path, as in
    `flock .../portctl-x/.server_P.lock CMD`, does not count). Unreadable (empty): no."""
    return any("portctl" in arg and lock.name not in arg for arg in cmdline)


def lock_taken(run_dir: RunDir, port: int, *, force: bool = False) -> PortctlError:
    """Why ``port``'s lock could not be taken. Where the OS names the holder and it is neither
    the recorded supervisor nor a portctl process (a stray `flock` on the file), say so and
    name it (exit 1): it is no instance to stop or restart. Otherwise a live portctl holds it
    (AlreadyRunning, exit 6)."""
    lock = run_dir.lock_file(port)
    holders = platform.lock_holders(lock)
    record = run_dir.read_record(port)
    if holders and (record is None or record.supervisor.pid not in holders):
        seen = [platform.identity(pid) for pid in holders]
        if all(s is not None and not _is_portctl(s[1], lock) for s in seen):
            return PortctlError.foreign_lock(port, holders)
    return AlreadyRunning.on_port(port, run_dir.read_pid(port), force=force, run_dir=str(run_dir.path))


def live_owner(instance: Optional[Mapping[str, Any]]) -> Optional[tuple[RunDir, int]]:
    """The live portctl instance a process belongs to, verified: ``instance`` (a Holder's, or
    ``ports.instance_of`` a process's environment) names a run dir and port whose lock is held
    by a verified supervisor whose record carries the process's token. None for an orphan, or
    a process of no instance."""
    claimed = where_claimed(instance or {})
    if claimed is None or not (instance or {}).get("token"):
        return None
    run_dir, port = RunDir(claimed[0]), claimed[1]
    try:
        if not is_held(run_dir.lock_file(port)) or live_supervisor(run_dir, port) is None:
            return None
        record = run_dir.read_record(port)
    except PortctlError:  # files that do not match the lock, or refused: not a verified owner
        return None
    if record is None or record.token != (instance or {}).get("token"):
        return None
    return run_dir, port


def live_tokens(run_dir: RunDir, except_port: Optional[int] = None) -> set[str]:
    """Tokens of the run dir's instances whose supervisor holds its lock."""
    found = set()
    for port in run_dir.ports():
        if port != except_port and is_held(run_dir.lock_file(port)):
            record = run_dir.read_record(port)
            if record is not None:
                found.add(record.token)
    return found


def tokens(run_dir: RunDir) -> frozenset[str]:
    """Instance tokens recorded in the run dir."""
    records = (run_dir.read_record(p) for p in run_dir.ports())
    return frozenset(r.token for r in records if r is not None)


def where_claimed(instance: Mapping[str, Any]) -> Optional[tuple[str, int]]:
    """(run dir, port) that an instance as ``ports.instance_of`` reads it names; not verified."""
    where, port = instance.get("run_dir"), instance.get("port")
    return (where, port) if isinstance(where, str) and where and isinstance(port, int) else None


def same_dir(one: str, other: os.PathLike[str] | str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:  # one is gone: only the same spelling is the same dir
        return os.path.abspath(one) == os.path.abspath(other)


def token_of(proc: psutil.Process) -> Optional[str]:
    import psutil

    try:
        return proc.environ().get("PORTCTL_TOKEN")
    except psutil.Error:
        return None
