"""Acting on the instances of a run dir: stop, clean, orphans, freeing a port, logs."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import psutil

from . import messages, policy, ports
from ._platform import platform
from .errors import AlreadyRunning, NotRunning, PermissionDenied, PortctlError, PortInUse
from .identity import is_alive, process, resolve
from .lock import is_held, released, remove_if_free
from .runfiles import Record, RunDir
from .terminate import stop_tree

STOP_MARGIN_S = 10.0  # beyond the grace period: the kill, and the supervisor's own clean-up
LEFTOVER_ROUNDS = 3
LET_GO_CHECK_S = 0.25
HURRY_RETRY_S = 0.01  # --grace: the supervisor has not yet taken the first request  # while waiting for the lock: how often to look whether our target let go
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
            raise NotRunning.no_log(f"port {port}")
        return run_dir.log_file(spec.name)
    found = sorted(run_dir.log_file("x").parent.glob("*.log"))
    if len(found) != 1:
        raise PortctlError.no_log("this run dir" if not found else "several instances: name one")
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
        raise PortctlError.tampered(port, reason)
    return proc


def _distrust(port: int, lock: Path, pid: Optional[int], record: Optional[Record],
              proc: Optional[psutil.Process]) -> Optional[str]:
    """Why the lock and the files do not name one live portctl supervisor (None: they do).
    The files can be edited together; the lock cannot: its holder must be the recorded
    supervisor (where the OS says who holds it), alive, a portctl process, and the pid file's."""
    recorded = record.supervisor.pid if record else None
    holders = platform.lock_holders(lock)
    if holders and recorded not in holders:
        return messages.holder_mismatch(holders, recorded)
    if pid != recorded:
        return messages.pid_file_mismatch(port, pid, recorded)
    if proc is None:
        return messages.supervisor_gone(recorded)
    if not _is_portctl(proc, lock):
        return messages.not_portctl(proc.pid)
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
    holders = platform.lock_holders(lock)
    record = run_dir.read_record(port)
    if holders and (record is None or record.supervisor.pid not in holders):
        procs = [process(pid) for pid in holders]
        if all(p is not None and not _is_portctl(p, lock) for p in procs):
            return PortctlError.foreign_lock(port, holders)
    return AlreadyRunning.on_port(port, run_dir.read_pid(port), force=force, run_dir=str(run_dir.path))


def stop(run_dir: RunDir, port: int, grace_s: Optional[float] = None,
         notify: Notify = _quiet) -> bool:
    """Gracefully stop the instance on ``port``; False if nothing was running (stale files go)."""
    supervisor = live_supervisor(run_dir, port)
    if supervisor is None:
        _refuse_other_run_dir(run_dir, port)
        drop_stale(run_dir, port, notify)
        return False
    record = run_dir.read_record(port)  # its token, read before the supervisor removes it
    if record is None:  # verified a moment ago, its files gone now: it is exiting (a concurrent stop)
        ports.wait_until(lambda: _let_go(supervisor, run_dir.lock_file(port)), time.monotonic() + STOP_MARGIN_S)
        return True
    grace = record.spec.grace_s if grace_s is None else grace_s
    try:
        platform.request_stop(supervisor.pid, run_dir.path, port, record.token)
    except ProcessLookupError:
        pass  # it died since we verified it: the kernel dropped its lock; leftovers are next
    _wait_let_go(run_dir, record, supervisor, grace)
    _confirm_stopped(run_dir, record, grace, notify)
    return True


def _wait_let_go(run_dir: RunDir, record: Record, supervisor: psutil.Process, grace_s: float) -> None:
    """Wait, without polling, for the supervisor to release its lock (or die).

    A grace shorter than the supervisor's own is imposed with a second stop request once
    ``grace_s`` has passed: the supervisor takes a second request during its stop as "skip the
    grace" (as a second Ctrl+C), whether it comes as a signal (POSIX) or as a request file
    (Windows), and kills the tree at once. It is sent only once the record says "stopping":
    sent before the first was taken, it would merge with it (a pending signal, one file)."""
    port, lock = record.spec.port, run_dir.lock_file(record.spec.port)
    began = time.monotonic()
    deadline = began + grace_s + STOP_MARGIN_S
    hurry_at = began + grace_s if grace_s < record.spec.grace_s else None
    let_go = released(lock, grace_s + STOP_MARGIN_S)
    # The event means the lock was free for an instant: our target let go (or died). Looking
    # at it first spares /proc/locks on the path from the child's exit to our return.
    while not let_go.is_set() and not _let_go(supervisor, lock):
        now = time.monotonic()
        if now >= deadline:
            raise PortctlError.stop_timeout(port, grace_s + STOP_MARGIN_S)
        if hurry_at is not None and now >= hurry_at:
            hurry_at = _hurry(run_dir, record, supervisor)
            continue
        let_go.wait(min(LET_GO_CHECK_S, (hurry_at or deadline) - now))


def _hurry(run_dir: RunDir, record: Record, supervisor: psutil.Process) -> Optional[float]:
    """Send the second stop request if the supervisor took the first; else when to look again."""
    now = run_dir.read_record(record.spec.port)
    if now is None or now.token != record.token:
        return None  # it is removing its files: nothing left to hurry
    if now.state != "stopping":
        return time.monotonic() + HURRY_RETRY_S
    if resolve(record.supervisor) is not None:  # still the process we verified
        try:
            platform.request_stop(supervisor.pid, run_dir.path, record.spec.port, record.token)
        except ProcessLookupError:
            pass  # it exited meanwhile
    return None


def _confirm_stopped(run_dir: RunDir, record: Record, grace_s: float, notify: Notify) -> None:
    """Earn the exit 0: the port refuses connections (a connect timeout, as with a full
    backlog, is no refusal) and no live process carries the instance's token.

    A supervisor that finished its own stop has stopped its whole tree and removed its record;
    one that died (SIGKILL during its grace) left its record, and what carries its token may
    live on. Those leftovers are ours (production too): their trees are stopped. Anything
    else still holding the port is named, exit 4."""
    port, host = record.spec.port, record.spec.host
    left = run_dir.read_record(port)
    died = left is not None and left.token == record.token
    found = {p.pid: p for p in find_orphans(left)} if died and left is not None else {}
    stopped: list[int] = []
    refusing = ports.refuses(host, port)
    for _ in range(LEFTOVER_ROUNDS):  # a holder found only once another let go is one more round
        if not refusing:
            found.update((p.pid, p) for p in map(process, _holder_pids(port))
                         if p is not None and _token(p) == record.token)
        if not found:
            break
        stop_tree(found.values(), grace_s)
        stopped += sorted(found)
        found, refusing = {}, ports.refuses(host, port)
    if stopped:
        notify(messages.stopped_leftovers(port, stopped))
    if died and left is not None and left.state != "fatal" and not is_held(run_dir.lock_file(port)):
        run_dir.remove(port)  # what the supervisor did not live to remove
    if refusing:
        return
    busy = ports.holders(port)
    if busy or not ports.wait_refusing(host, port, time.monotonic() + FREE_VERIFY_S):
        raise PortInUse.after_stop(port, busy)


def _holder_pids(port: int) -> list[int]:
    return [h.pid for h in ports.holders(port) if h.pid is not None]


def _refuse_other_run_dir(run_dir: RunDir, port: int) -> None:
    """Nothing of ours runs on ``port``: if a live instance of another run dir holds it, say
    where (exit 1) rather than "nothing running"; stopping it is that run dir's business."""
    for holder in ports.holders(port):
        owner = live_owner(holder.instance)
        if owner is not None and not _same_dir(str(owner[0].path), run_dir.path):
            raise PortctlError.other_run_dir(port, str(owner[0].path), owner[1])


def _let_go(supervisor: psutil.Process, lock: Path) -> bool:
    """Our target released the lock (a new supervisor may have taken it since) or is gone.
    Where the OS names lock holders, one look at them answers both."""
    holders = platform.lock_holders(lock)
    let_go = supervisor.pid not in holders if holders is not None else not is_held(lock)
    return let_go or not is_alive(supervisor)


def drop_stale(run_dir: RunDir, port: int, notify: Notify = _quiet) -> None:
    """Remove a dead instance's pid file and record (never signalling the pid they name),
    after stopping its verified orphans. The caller knows no supervisor holds the lock."""
    pid, record = run_dir.read_pid(port), run_dir.read_record(port)
    if record is not None:
        reclaim_orphans(record, notify)
    if run_dir.remove(port) and (pid is not None or record is not None):
        notify(messages.stale_files(port, pid))


def find_orphans(record: Record) -> list[psutil.Process]:
    """Every live process of the user carrying the dead instance's token (its child, workers
    that hold the port, setsid'd helpers that do not) outside our own tree, unless a live
    supervisor owns that token: a record may name a token it does not own (copied from a
    live instance's). The caller knows that the record's own supervisor is gone."""
    if record.token in live_tokens(RunDir(record.run_dir), except_port=record.spec.port):
        return []
    found = []
    for proc, instance in _carrying_token(record.token):
        claimed = _claimed(instance)
        dead = claimed is not None and claimed[1] == record.spec.port \
            and _same_dir(claimed[0], record.run_dir)
        if dead or live_owner(instance) is None:
            found.append(proc)
    return found


def reclaim_orphans(record: Record, notify: Notify = _quiet) -> list[int]:
    """Stop verified orphans of a dead instance (ours by token): the port comes back."""
    orphans = find_orphans(record)
    if orphans:
        stop_tree(orphans, record.spec.grace_s)
        notify(messages.reclaimed(record.spec.port, [p.pid for p in orphans]))
    return [p.pid for p in orphans]


def live_tokens(run_dir: RunDir, except_port: Optional[int] = None) -> set[str]:
    """Tokens of the run dir's instances whose supervisor holds its lock."""
    found = set()
    for port in run_dir.ports():
        if port != except_port and is_held(run_dir.lock_file(port)):
            record = run_dir.read_record(port)
            if record is not None:
                found.add(record.token)
    return found


def _carrying_token(token: str) -> list[tuple[psutil.Process, dict[str, Any]]]:
    """Live processes of the invoking user whose environment has PORTCTL_TOKEN=token, with the
    instance it names (as ``ports.instance_of`` reads it): never this process, its ancestors
    or its descendants."""
    me = psutil.Process()
    user, mine = me.username(), {me.pid, *(p.pid for p in _lineage(me))}
    found = []
    for proc in psutil.process_iter(["username", "environ"], ad_value=None):
        env = proc.info["environ"] or {}
        if env.get("PORTCTL_TOKEN") != token or proc.info["username"] != user or proc.pid in mine:
            continue
        instance = ports.instance_of(env)
        if instance is not None and is_alive(proc) and me.pid not in {p.pid for p in _lineage(proc)}:
            found.append((proc, instance))
    return found


def _lineage(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.parents()
    except psutil.Error:
        return []


def _claimed(instance: Mapping[str, Any]) -> Optional[tuple[str, int]]:
    """(run dir, port) that an instance as ``ports.instance_of`` reads it names; not verified."""
    where, port = instance.get("run_dir"), instance.get("port")
    return (where, port) if isinstance(where, str) and where and isinstance(port, int) else None


def _same_dir(one: str, other: os.PathLike[str] | str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:  # one is gone: only the same spelling is the same dir
        return os.path.abspath(one) == os.path.abspath(other)


def live_owner(instance: Optional[Mapping[str, Any]]) -> Optional[tuple[RunDir, int]]:
    """The live portctl instance a process belongs to, verified: ``instance`` (a Holder's, or
    ``ports.instance_of`` a process's environment) names a run dir and port whose lock is held
    by a verified supervisor whose record carries the process's token. None for an orphan, or
    a process of no instance."""
    claimed = _claimed(instance or {})
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


def _token(proc: psutil.Process) -> Optional[str]:
    try:
        return proc.environ().get("PORTCTL_TOKEN")
    except psutil.Error:
        return None


def free_port(port: int, host: str, grace_s: float, *, production: Optional[bool] = None,
              tokens: frozenset[str] = frozenset(), run_dir: Optional[RunDir] = None,
              notify: Notify = _quiet) -> list[int]:
    """Stop whatever holds ``port`` (whole trees) subject to the policy; verify it is free.

    A holder of a live portctl instance (of any run dir) is stopped through that instance's
    supervisor, which would restart a killed child at once. ``tokens`` are instance tokens of
    ``run_dir``: holders carrying one are ours, and so are the user's processes started by an
    instance of ``run_dir`` whose record is gone (their PORTCTL_RUN_DIR names it).
    """
    production = policy.in_force() == policy.PRODUCTION if production is None else production
    me, privileged = psutil.Process().username(), platform.is_privileged()

    def check(pid: int, username: Optional[str], ours: bool) -> None:
        target = policy.Target(pid, username, ours)
        policy.check(target, port=port, production=production, me=me, privileged=privileged)

    stopped = _stop_owning_instances(port, grace_s, check, me, notify)
    procs = []
    for holder in ports.holders(port):
        proc = process(holder.pid)
        if proc is None:
            if holder.pid is None:  # the kernel shows the socket, but not whose: another user's
                raise PermissionDenied.invisible_holder(port)
            continue
        username = _username(proc)
        claimed = _claimed(holder.instance or {})
        of_run_dir = run_dir is not None and claimed is not None and username == me \
            and _same_dir(claimed[0], run_dir.path)
        check(proc.pid, username, of_run_dir or _token(proc) in tokens)
        procs.append(proc)
    if procs:
        policy.logger().info(messages.policy_allows(policy.describe(), port, sorted(p.pid for p in procs)))
    stop_tree(procs, grace_s)
    if not ports.wait_until(lambda: not ports.is_busy(host, port), time.monotonic() + FREE_VERIFY_S):
        raise PortInUse.still_busy(port)
    pids = sorted({p.pid for p in procs} | stopped)
    if pids:
        notify(messages.freed(port, pids))
    return pids


def _stop_owning_instances(port: int, grace_s: float, check: Callable[[int, Optional[str], bool], None],
                           me: str, notify: Notify) -> set[int]:
    """Stop, through its supervisor, each live portctl instance whose processes hold ``port``
    (the user's own instances only: another user's are refused by the policy); return the
    pids of the holders it had."""
    owners: dict[tuple[str, int], list[ports.Holder]] = {}
    for holder in ports.holders(port):
        owner = live_owner(holder.instance)
        if owner is not None and holder.pid is not None:
            owners.setdefault((str(owner[0].path), owner[1]), []).append(holder)
    for held in owners.values():  # every refusal before any stop
        check(held[0].pid or 0, held[0].username, held[0].username == me)
    for (where, other_port), held in owners.items():
        notify(messages.stopping_other_instance(port, where, other_port))
        stop(RunDir(where), other_port, grace_s, notify)
    return {h.pid for held in owners.values() for h in held if h.pid is not None}


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
    return actions + _clean_specs(run_dir, dry_run)


def _clean_specs(run_dir: RunDir, dry_run: bool) -> list[tuple[str, str]]:
    """Remove the saved specs of instances that never served (no ``ready`` event for their
    name and port): a start that failed leaves nothing worth restarting."""
    from .events import read_events

    served = {(e.get("name"), e.get("port")) for e in read_events(run_dir.path) if e.get("event") == "ready"}
    actions = []
    for port in run_dir.saved_ports():
        spec = run_dir.read_spec(port)
        if spec is None or (spec.name, port) in served or is_held(run_dir.lock_file(port)):
            continue
        actions.append(("remove", str(run_dir.spec_file(port))))
        if not dry_run:
            try:
                run_dir.spec_file(port).unlink()
            except FileNotFoundError:
                pass
    return actions


def free(run_dir: RunDir, port: int, host: str, grace_s: float,
         notify: Notify = _quiet) -> list[int]:
    """``portctl free``: stop our own instance on the port gracefully, then any other holder."""
    if live_supervisor(run_dir, port) is not None:
        try:
            stop(run_dir, port, grace_s, notify)
        except PortInUse:
            pass  # our instance stopped; what else holds the port is free_port's to stop
    return free_port(port, host, grace_s, tokens=tokens(run_dir), run_dir=run_dir, notify=notify)
