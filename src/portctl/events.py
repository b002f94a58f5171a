"""Lifecycle events as JSON lines in ``.portctl/events.jsonl`` (one file per run dir), opened as
a run file (safefile.py): no symlink followed, a regular file of the invoking user only."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import safefile

KINDS = frozenset({
    "started", "ready", "exited", "restarting", "health_failed", "health_ok", "port_conflict",
    "port_changed", "stopping", "stopped", "fatal",
})


def events_file(run_dir: Path) -> Path:
    return run_dir / ".portctl" / "events.jsonl"


class EventLog:
    """Appends one JSON object per line; each append is a single O_APPEND write."""

    def __init__(self, run_dir: Path) -> None:
        self.path = events_file(run_dir)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown event {kind!r}")
        event = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "event": kind, **fields}
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        safefile.ensure_dir(self.path.parent, 1)  # .portctl
        fd = safefile.open_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644, depth=1)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return event


def read_events(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed event recorded in the run dir, oldest first (damaged lines skipped)."""
    try:
        fd = safefile.open_file(events_file(run_dir), os.O_RDONLY, depth=1)
        with open(fd, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event
    except OSError:
        return
