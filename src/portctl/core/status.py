"""What `status`, `port` and `url` show: each instance's state, read from the run files and
the lock alone (no process table walk, no psutil), so scripts can poll it cheaply."""
from __future__ import annotations

import time
from ..base.frozen import Frozen
from ..base.errors import NotRunning
from .lock import held_by, is_held
from .runfiles import Record, RunDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional


class Status(Frozen):
    """One instance as ``status`` shows it."""

    port: int
    state: str  # a live supervisor's state (starting, running, unhealthy, backoff, stopping), or stale | fatal
    record: Optional[Record]
    pid: Optional[int]

    def to_dict(self) -> dict[str, Any]:
        rec = self.record
        spec = rec.spec if rec else None
        return {
            "port": self.port,
            "name": spec.name if spec else None,
            "host": spec.host if spec else None,
            "state": self.state,
            "pid": self.pid,
            "child_pid": rec.child.pid if rec and rec.child else None,
            "started_at": rec.started_at if rec else None,
            "uptime_s": _uptime(rec) if rec and self.state in LIVE_STATES else None,
            "command": list(spec.command) if spec else [],
            "run_dir": rec.run_dir if rec else None,
            "detached": spec.detached if spec else None,
            "restart": spec.restart if spec else None,
            "restarts": rec.restarts if rec else 0,
            "last_exit": rec.last_exit if rec else None,
            "last_health": rec.last_health if rec else None,
            "reason": rec.reason if rec else "",
            "log": rec.log if rec else None,
        }


LIVE_STATES = ("starting", "running", "unhealthy", "backoff", "stopping")


def _uptime(rec: Record) -> Optional[float]:
    """How long the current child has run (None while there is none)."""
    if rec.child is None or rec.state == "backoff":
        return None
    return round(max(0.0, time.time() - rec.child.create_time), 3)


def collect(run_dir: RunDir, port: Optional[int] = None) -> list[Status]:
    """Every instance with files in the run dir (or only ``port``), live, stale or fatal."""
    wanted = [port] if port is not None else run_dir.ports()
    return [s for s in (_status(run_dir, p) for p in wanted) if s.state != "stopped"]


def _status(run_dir: RunDir, port: int) -> Status:
    pid, record = run_dir.read_pid(port), run_dir.read_record(port)
    lock = run_dir.lock_file(port)
    # A lock held by someone other than the recorded supervisor (a stray `flock`, or a new
    # supervisor about to replace the record) says nothing about the record: it is stale.
    if (held_by(lock, record.supervisor) if record is not None else is_held(lock)):
        state = record.state if record else "starting"  # fatal too, while it exits
        return Status(port, state, record, record.supervisor.pid if record else pid)
    if pid is None and record is None:
        return Status(port, "stopped", None, None)
    return Status(port, "fatal" if record and record.state == "fatal" else "stale", record, pid)


def find_live(run_dir: RunDir, name: str) -> Optional[Status]:
    """The live instance called ``name`` (any live state), or None."""
    for found in collect(run_dir):
        if found.record and found.record.spec.name == name and found.state in LIVE_STATES:
            return found
    return None


def find_by_name(run_dir: RunDir, name: str) -> Status:
    """The running instance called ``name`` (NotRunning if there is none)."""
    for found in collect(run_dir):
        if found.record and found.record.spec.name == name and found.state == "running":
            return found
    raise NotRunning.named(name)


