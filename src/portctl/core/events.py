"""Lifecycle events as JSON lines in ``.portctl/events.jsonl`` (one file per run dir), opened as
a run file (safefile.py): no symlink followed, a regular file of the invoking user only.

The file is rotated like the logs (``logs.rotate``: ``events.jsonl.1`` ... ``.<backups>``),
with the size limit and backups of the instance's logs, by whichever supervisor's append
would pass the limit. Supervisors of one run dir share the file: one rotates only if the
path still names the file it measured, so a supervisor that finds it already rotated just
appends to the new one (two rotating at the same instant shift the backups one extra
step, no event is lost)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..base import safefile
from ..base.defaults import LOG_BACKUPS, LOG_MAX_BYTES

KINDS = frozenset({
    "started", "ready", "exited", "restarting", "health_failed", "health_ok", "port_conflict",
    "port_changed", "stopping", "stopped", "fatal", "daemonized",
})


def events_file(run_dir: Path) -> Path:
    return run_dir / ".portctl" / "events.jsonl"


class EventLog:
    """Appends one JSON object per line; each append is a single O_APPEND write."""

    def __init__(self, run_dir: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS) -> None:
        self.path = events_file(run_dir)
        self.max_bytes, self.backups = max_bytes, backups

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown event {kind!r}")
        event = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "event": kind, **fields}
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        safefile.ensure_dir(self.path.parent, 1)  # .portctl
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            if size and size + len(line) > self.max_bytes:
                fd = self._rotated(fd)
            os.write(fd, line)
        finally:
            os.close(fd)
        return event

    def _open(self) -> int:
        return safefile.open_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644, depth=1)

    def _rotated(self, fd: int) -> int:
        """Rotate (unless another supervisor just did); an fd of the file to append to."""
        from .logs import rotate

        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            same = False
        if same and not rotate(self.path, self.backups):
            return fd  # a reader holds it (Windows): the next append tries again
        os.close(fd)
        return self._open()


def read_events(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed event recorded in the run dir, oldest first (damaged lines skipped),
    across the rotated files."""
    path = events_file(run_dir)
    backups = sorted((p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
                     key=lambda p: -int(p.suffix[1:]))
    for one in [*backups, path]:
        yield from _read_one(one)


def _read_one(path: Path) -> Iterator[dict[str, Any]]:
    try:
        fd = safefile.open_file(path, os.O_RDONLY, depth=1)
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
