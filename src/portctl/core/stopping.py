"""Stopping an instance: a stop request to its verified supervisor, a wait for it to let go
of the lock (hurried when the caller's grace is shorter), then proof that the port is free and
nothing carrying the instance's token lives on."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from ..base import messages, poll
from ..platform.current import platform
from ..base.errors import PortctlError, PortInUse
from .identity import ProcRef, verify
from .lock import is_held, released
from .owners import Notify, live_owner, live_supervisor, quiet, same_dir
from .runfiles import Record, RunDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    import psutil

# psutil (and the modules built on it: stale, terminate) is imported only where a stop finds
# stale files or leftovers: the way from `portctl stop` to its signals reads /proc directly.
# ``ports`` (socket, selectors) is imported once the signal is sent, while the supervisor stops.

STOP_MARGIN_S = 10.0  # beyond the grace period: the kill, and the supervisor's own clean-up
LEFTOVER_ROUNDS = 3
LET_GO_CHECK_S = 0.25  # while waiting for the lock: how often to look whether our target let go
HURRY_RETRY_S = 0.01  # --grace: the supervisor has not yet taken the first request
FREE_VERIFY_S = 5.0


def stop(run_dir: RunDir, port: int, grace_s: Optional[float] = None,
         notify: Notify = quiet) -> bool:
    """Gracefully stop the instance on ``port``; False if nothing was running (stale files go)."""
    supervisor = live_supervisor(run_dir, port)
    if supervisor is None:
        from .stale import drop_stale

        _refuse_other_run_dir(run_dir, port)
        drop_stale(run_dir, port, notify)
        return False
    record = run_dir.read_record(port)  # its token, read before the supervisor removes it
    if record is None:  # verified a moment ago, its files gone now: it is exiting (a concurrent stop)
        poll.until(lambda: _let_go(supervisor, run_dir.lock_file(port)), time.monotonic() + STOP_MARGIN_S)
        return True
    grace = record.spec.grace_s if grace_s is None else grace_s
    try:
        platform.request_stop(supervisor.pid, run_dir.path, port, record.token)
    except ProcessLookupError:
        pass  # it died since we verified it: the kernel dropped its lock; leftovers are next
    from . import ports  # noqa: F401 - for the proof below, loaded while the supervisor stops

    _wait_let_go(run_dir, record, supervisor, grace)
    _confirm_stopped(run_dir, record, grace, notify)
    return True


def _wait_let_go(run_dir: RunDir, record: Record, supervisor: ProcRef, grace_s: float) -> None:
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


def _hurry(run_dir: RunDir, record: Record, supervisor: ProcRef) -> Optional[float]:
    """Send the second stop request if the supervisor took the first; else when to look again."""
    now = run_dir.read_record(record.spec.port)
    if now is None or now.token != record.token:
        return None  # it is removing its files: nothing left to hurry
    if now.state != "stopping":
        return time.monotonic() + HURRY_RETRY_S
    if verify(record.supervisor) is not None:  # still the process we verified
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
    from . import ports

    port, host = record.spec.port, record.spec.host
    left = run_dir.read_record(port)
    died = left is not None and left.token == record.token
    found: dict[int, psutil.Process] = {}
    if died and left is not None:
        from .stale import find_orphans

        found = {p.pid: p for p in find_orphans(left)}
    stopped: list[int] = []
    refusing = ports.refuses(host, port)
    for _ in range(LEFTOVER_ROUNDS):  # a holder found only once another let go is one more round
        if not refusing:
            from .identity import process
            from .owners import token_of

            found.update((p.pid, p) for p in map(process, _holder_pids(port))
                         if p is not None and token_of(p) == record.token)
        if not found:
            break
        from .terminate import stop_tree

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
    from . import ports

    return [h.pid for h in ports.holders(port) if h.pid is not None]


def _refuse_other_run_dir(run_dir: RunDir, port: int) -> None:
    """Nothing of ours runs on ``port``: if a live instance of another run dir holds it, say
    where (exit 1) rather than "nothing running"; stopping it is that run dir's business."""
    from . import ports

    for holder in ports.holders(port):
        owner = live_owner(holder.instance)
        if owner is not None and not same_dir(str(owner[0].path), run_dir.path):
            raise PortctlError.other_run_dir(port, str(owner[0].path), owner[1])


def _let_go(supervisor: ProcRef, lock: Path) -> bool:
    """Our target released the lock (a new supervisor may have taken it since) or is gone.
    Where the OS names lock holders, one look at them answers both."""
    if platform.holds_lock(supervisor.pid, lock):  # its own /proc files say it still does
        return False
    if not is_held(lock):  # nobody holds it: our target let go (a probe, not /proc/locks)
        return True
    holders = platform.lock_holders(lock)
    let_go = supervisor.pid not in holders if holders is not None else not is_held(lock)
    return let_go or verify(supervisor) is None
