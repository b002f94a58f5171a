"""Lifecycle events as JSON lines in ``.portctl/events.jsonl`` (one file per run dir)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return event


def read_events(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed event recorded in the run dir, oldest first (damaged lines skipped)."""
    try:
        with open(events_file(run_dir), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event
    except OSError:
        return
