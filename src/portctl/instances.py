"""Acting on the instances of a run dir: stop, clean, orphans, freeing a port, logs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import psutil

from . import _platform, output, policy, ports
from .errors import AlreadyRunning, NotRunning, PermissionDenied, PortctlError, PortInUse
from .identity import is_alive, process, resolve
from .lock import is_held, remove_if_free
from .runfiles import Record, RunDir
from .terminate import stop_tree

STOP_MARGIN_S = 10.0  # beyond the grace period: the kill, and the supervisor's own clean-up
FREE_VERIFY_S = 5.0
SETTLE_S = 5.0  # lock held, files not (yet, or any more) there: a supervisor starting or exiting

Notify = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def log_path(run_dir: RunDir, name: Optional[str], port: Optional[int]) -> Path:
    """The log of instance ``name``, or of the instance on ``port``, or the only log there is."""
    if name:
        return run_dir.log_file(name)
    if port is not None:
        spec = run_dir.read_spec(port)  # the live record's, else the last one started there
        if spec is None:
            raise NotRunning(*output.no_log(f"port {port}"))
        return run_dir.log_file(spec.name)
    found = sorted(run_dir.log_file("x").parent.glob("*.log"))
    if len(found) != 1:
        raise PortctlError(*output.no_log("this run dir" if not found else "several instances: name one"))
    return found[0]


def live_supervisor(run_dir: RunDir, port: int) -> Optional[psutil.Process]:
    """The verified supervisor holding ``port``'s lock, None if none; raise if files are tampered.

    A supervisor writes its files just after taking the lock and removes them just before
    releasing it: lock and files disagreeing for a moment is no tampering, so wait it out."""
    lock = run_dir.lock_file(port)

    def settled() -> bool:
        both = run_dir.read_pid(port) is not None and run_dir.read_record(port) is not None
        return both or not is_held(lock)

    ports.wait_until(settled, time.monotonic() + SETTLE_S)
    if not is_held(lock):
        return None
    pid, record = run_dir.read_pid(port), run_dir.read_record(port)
    proc = resolve(record.supervisor) if record else None
    reason = _distrust(port, lock, pid, record, proc)
    if reason is not None:
        exiting = pid is None or record is None  # it removes its files, then lets go
        if not is_held(lock) or (exiting and ports.wait_until(lambda: not is_held(lock),
                                                              time.monotonic() + SETTLE_S)):
            return None  # it exited while we looked: nothing is running any more
        raise PortctlError(*output.tampered(port, reason))
    return proc


def _distrust(port: int, lock: Path, pid: Optional[int], record: Optional[Record],
              proc: Optional[psutil.Process]) -> Optional[str]:
    """Why the lock and the files do not name one live portctl supervisor (None: they do).
    The files can be edited together; the lock cannot: its holder must be the recorded
    supervisor (where the OS says who holds it), alive, a portctl process, and the pid file's."""
    recorded = record.supervisor.pid if record else None
    holders = _platform.lock_holders(lock)
    if holders and recorded not in holders:
        return output.holder_mismatch(holders, recorded)
    if pid != recorded:
        return output.pid_file_mismatch(port, pid, recorded)
    if proc is None:
        return output.supervisor_gone(recorded)
    if not _is_portctl(proc, lock):
        return output.not_portctl(proc.pid)
    return None


def _is_portctl(proc: psutil.Process, lock: Path) -> bool:
    """Whether ``proc`` runs portctl (its command line names it; the lock's own path, as in
    `flock .../portctl-x/.server_P.lock CMD`, does not count). Unreadable: not verified, no."""
    try:
        return any("portctl" in arg and lock.name not in arg for arg in proc.cmdline())
    except psutil.Error:
        return False


def lock_taken(run_dir: RunDir, port: int, *, force: bool = False) -> PortctlError:
    """Why ``port``'s lock could not be taken. Where the OS names the holder and it is neither
    the recorded supervisor nor a portctl process (a stray `flock` on the file), say so and
    name it (exit 1): it is no instance to stop or restart. Otherwise a live portctl holds it
    (AlreadyRunning, exit 6)."""
    lock = run_dir.lock_file(port)
    holders = _platform.lock_holders(lock)
    record = run_dir.read_record(port)
    if holders and (record is None or record.supervisor.pid not in holders):
        procs = [process(pid) for pid in holders]
        if all(p is not None and not _is_portctl(p, lock) for p in procs):
            return PortctlError(*output.foreign_lock(port, holders))
    return AlreadyRunning(*output.already_running(port, run_dir.read_pid(port), force=force,
                                                  run_dir=str(run_dir.path)))


def stop(run_dir: RunDir, port: int, grace_s: Optional[float] = None,
         notify: Notify = _quiet) -> bool:
    """Gracefully stop the instance on ``port``; False if nothing was running (stale files go)."""
    supervisor = live_supervisor(run_dir, port)
    if supervisor is None:
        drop_stale(run_dir, port, notify)
        return False
    record = run_dir.read_record(port)
    if record is None:  # verified a moment ago, its files gone now: it is exiting (a concurrent stop)
        ports.wait_until(lambda: _let_go(supervisor, run_dir.lock_file(port)), time.monotonic() + STOP_MARGIN_S)
        return True
    grace = record.spec.grace_s if grace_s is None else grace_s
    _platform.request_stop(supervisor.pid, run_dir.path, port, record.token)
    deadline = time.monotonic() + grace + STOP_MARGIN_S
    lock = run_dir.lock_file(port)
    if not ports.wait_until(lambda: _let_go(supervisor, lock), deadline):
        raise PortctlError(*output.stop_timeout(port, grace + STOP_MARGIN_S))
    ports.wait_refusing(record.spec.host, port, deadline)
    return True


def _let_go(supervisor: psutil.Process, lock: Path) -> bool:
    """Our target released the lock (a new supervisor may have taken it since) or is gone.
    Where the OS names lock holders, one look at them answers both."""
    holders = _platform.lock_holders(lock)
    let_go = supervisor.pid not in holders if holders is not None else not is_held(lock)
    return let_go or not is_alive(supervisor)


def drop_stale(run_dir: RunDir, port: int, notify: Notify = _quiet) -> None:
    """Remove a dead instance's pid file and record (never signalling the pid they name),
    after stopping its verified orphans. The caller knows no supervisor holds the lock."""
    pid, record = run_dir.read_pid(port), run_dir.read_record(port)
    if record is not None:
        reclaim_orphans(record, notify)
    if run_dir.remove(port) and (pid is not None or record is not None):
        notify(output.stale_files(port, pid))


def find_orphans(record: Record) -> list[psutil.Process]:
    """Live processes carrying this instance's token: its child, and any holder of its port."""
    candidates = [resolve(record.child)]
    candidates += [process(h.pid) for h in ports.holders(record.spec.port)]
    found: dict[int, psutil.Process] = {}
    for proc in candidates:
        if proc is not None and _token(proc) == record.token:
            found[proc.pid] = proc
    return list(found.values())


def reclaim_orphans(record: Record, notify: Notify = _quiet) -> list[int]:
    """Stop verified orphans of a dead instance (ours by token): the port comes back."""
    orphans = find_orphans(record)
    if orphans:
        stop_tree(orphans, record.spec.grace_s)
        notify(output.reclaimed(record.spec.port, [p.pid for p in orphans]))
    return [p.pid for p in orphans]


def _token(proc: psutil.Process) -> Optional[str]:
    try:
        return proc.environ().get("PORTCTL_TOKEN")
    except psutil.Error:
        return None


def free_port(port: int, host: str, grace_s: float, *, production: Optional[bool] = None,
              tokens: frozenset[str] = frozenset(), notify: Notify = _quiet) -> list[int]:
    """Stop whatever holds ``port`` (whole trees) subject to the policy; verify it is free.

    ``tokens`` are instance tokens of this run dir: holders carrying one are ours.
    """
    production = policy.in_force() == policy.PRODUCTION if production is None else production
    holders = ports.holders(port)
    procs = []
    me, privileged = psutil.Process().username(), _platform.is_privileged()
    for holder in holders:
        proc = process(holder.pid)
        if proc is None:
            if holder.pid is None:  # the kernel shows the socket, but not whose: another user's
                raise PermissionDenied(*output.invisible_holder(port))
            continue
        target = policy.Target(proc.pid, _username(proc), _token(proc) in tokens)
        policy.check(target, port=port, production=production, me=me, privileged=privileged)
        procs.append(proc)
    if procs:
        policy.logger().info(output.policy_allows(policy.describe(), port, sorted(p.pid for p in procs)))
    stop_tree(procs, grace_s)
    if not ports.wait_until(lambda: not ports.is_busy(host, port), time.monotonic() + FREE_VERIFY_S):
        raise PortInUse(*output.still_busy(port))
    pids = sorted({p.pid for p in procs})
    if pids:
        notify(output.freed(port, pids))
    return pids


def _username(proc: psutil.Process) -> Optional[str]:
    try:
        return proc.username()
    except psutil.Error:
        return None


def tokens(run_dir: RunDir) -> frozenset[str]:
    """Instance tokens recorded in the run dir."""
    records = (run_dir.read_record(p) for p in run_dir.ports())
    return frozenset(r.token for r in records if r is not None)


def clean(run_dir: RunDir, dry_run: bool = False) -> list[tuple[str, str]]:
    """Remove stale files and stop verified orphans; return (action, target) pairs."""
    actions: list[tuple[str, str]] = []
    for port in run_dir.ports():
        if is_held(run_dir.lock_file(port)):
            continue
        run_dir.read_pid(port)  # a planted pid file is refused (safefile), not removed unread
        record = run_dir.read_record(port)
        orphans = find_orphans(record) if record else []
        actions += [("stop orphan pid", str(p.pid)) for p in orphans]
        files = [run_dir.pid_file(port), run_dir.record_file(port), run_dir.lock_file(port)]
        actions += [("remove", str(f)) for f in files if f.exists()]
        if dry_run:
            continue
        if orphans:
            stop_tree(orphans, record.spec.grace_s if record else 5.0)
        run_dir.remove(port)
        remove_if_free(run_dir.lock_file(port))
    return actions


def free(run_dir: RunDir, port: int, host: str, grace_s: float,
         notify: Notify = _quiet) -> list[int]:
    """``portctl free``: stop our own instance on the port gracefully, then any other holder."""
    if live_supervisor(run_dir, port) is not None:
        stop(run_dir, port, grace_s, notify)
    return free_port(port, host, grace_s, tokens=tokens(run_dir), notify=notify)
