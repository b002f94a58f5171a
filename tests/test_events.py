"""The event log: JSON lines, appended in order, damaged lines skipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from portctl.core.events import EventLog, events_file
from portctl.core.events import read_events


def test_events_append_in_order(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    for kind in ("started", "ready", "stopping", "stopped"):
        log.emit(kind, name="api", port=8001)
    events = list(read_events(tmp_path))
    assert [e["event"] for e in events] == ["started", "ready", "stopping", "stopped"]
    assert all(e["name"] == "api" and e["port"] == 8001 and e["time"] for e in events)


def test_unknown_kind_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EventLog(tmp_path).emit("exploded")


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    EventLog(tmp_path).emit("started")
    with open(events_file(tmp_path), "a") as fh:
        fh.write("{not json\n[1, 2]\n")
    EventLog(tmp_path).emit("ready")
    assert [e["event"] for e in read_events(tmp_path)] == ["started", "ready"]
