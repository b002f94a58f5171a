"""What dead instances leave: stale pid files and records, and orphans (live processes that
carry a dead instance's token). ``clean`` removes them for a whole run dir."""
from __future__ import annotations

from typing import Any

import psutil

from . import ports
from ..base import messages
from .identity import ancestors, is_alive
from .lock import is_held, remove_if_free
from .owners import Notify, live_owner, live_tokens, quiet, same_dir, where_claimed
from .runfiles import Record, RunDir
from .terminate import stop_tree


def drop_stale(run_dir: RunDir, port: int, notify: Notify = quiet) -> None:
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
        claimed = where_claimed(instance)
        dead = claimed is not None and claimed[1] == record.spec.port \
            and same_dir(claimed[0], record.run_dir)
        if dead or live_owner(instance) is None:
            found.append(proc)
    return found


def reclaim_orphans(record: Record, notify: Notify = quiet) -> list[int]:
    """Stop verified orphans of a dead instance (ours by token): the port comes back."""
    orphans = find_orphans(record)
    if orphans:
        stop_tree(orphans, record.spec.grace_s)
        notify(messages.reclaimed(record.spec.port, [p.pid for p in orphans]))
    return [p.pid for p in orphans]


def _carrying_token(token: str) -> list[tuple[psutil.Process, dict[str, Any]]]:
    """Live processes of the invoking user whose environment has PORTCTL_TOKEN=token, with the
    instance it names (as ``ports.instance_of`` reads it): never this process, its ancestors
    or its descendants."""
    me = psutil.Process()
    user, mine = me.username(), {me.pid, *(p.pid for p in ancestors(me))}
    found = []
    for proc in psutil.process_iter(["username", "environ"], ad_value=None):
        env = proc.info["environ"] or {}
        if env.get("PORTCTL_TOKEN") != token or proc.info["username"] != user or proc.pid in mine:
            continue
        instance = ports.instance_of(env)
        if instance is not None and is_alive(proc) and me.pid not in {p.pid for p in ancestors(proc)}:
            found.append((proc, instance))
    return found


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
