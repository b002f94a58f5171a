"""Freeing a port: stop whatever holds it, subject to the policy (``evict_holders``), after
stopping the run dir's own instance there gracefully (``free_in_run_dir``, `portctl free`)."""
from __future__ import annotations

import time
from typing import Callable, Optional

import psutil

from . import policy, ports
from ..base import messages, poll
from ..platform.current import platform
from ..base.errors import PermissionDenied, PortInUse
from .identity import process
from .owners import Notify, live_owner, live_supervisor, quiet, same_dir, token_of, tokens, where_claimed
from .runfiles import RunDir
from .stopping import FREE_VERIFY_S, stop
from .terminate import stop_tree


def evict_holders(port: int, host: str, grace_s: float, *, production: Optional[bool] = None,
              tokens: frozenset[str] = frozenset(), run_dir: Optional[RunDir] = None,
              notify: Notify = quiet) -> list[int]:
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
        claimed = where_claimed(holder.instance or {})
        of_run_dir = run_dir is not None and claimed is not None and username == me \
            and same_dir(claimed[0], run_dir.path)
        check(proc.pid, username, of_run_dir or token_of(proc) in tokens)
        procs.append(proc)
    if procs:
        policy.logger().info(messages.policy_allows(policy.describe(), port, sorted(p.pid for p in procs)))
    stop_tree(procs, grace_s)
    if not poll.until(lambda: not ports.is_busy(host, port), time.monotonic() + FREE_VERIFY_S):
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


def free_in_run_dir(run_dir: RunDir, port: int, host: str, grace_s: float,
         notify: Notify = quiet) -> list[int]:
    """``portctl free``: stop our own instance on the port gracefully, then any other holder."""
    if live_supervisor(run_dir, port) is not None:
        try:
            stop(run_dir, port, grace_s, notify)
        except PortInUse:
            pass  # our instance stopped; what else holds the port is evict_holders's to stop
    return evict_holders(port, host, grace_s, tokens=tokens(run_dir), run_dir=run_dir, notify=notify)
