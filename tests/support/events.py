"""Reading the run dir's event log back, for tests (the `events` command tails the file)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from portctl.base import safefile
from portctl.core.events import events_file


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
