"""What `status` and `events` show, as text: the status table fitted to a width (compact
columns, relative uptimes, the command cut with an ellipsis or left out), a line with the
reason and the command that helps under each row in trouble, and one line per lifecycle
event. Pure: rows in, cells and lines out; ``render`` prints them (colour on a terminal)."""
from __future__ import annotations

from ..base import messages
from ..base.defaults import HOST

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import date
    from typing import Any, Optional, Sequence

GAP = "  "  # between columns
MIN_COMMAND = 12  # a narrower COMMAND column is left out (see --wide)
COLUMNS = ("NAME", "PORT", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "COMMAND")
WIDE_COLUMNS = ("NAME", "PORT", "HOST", "STATE", "PID", "CHILD", "STARTED", "UPTIME", "RESTARTS",
                "LAST EXIT", "HEALTH", "COMMAND")
_SEVERITY = {"running": "ok", "starting": "warn", "backoff": "warn", "unhealthy": "warn", "stopping": "warn",
             "fatal": "error", "stale": "error", "stopped": "off"}


def severity(state: str) -> str:
    """``ok``, ``warn``, ``error`` or ``off``: how a state is coloured."""
    return _SEVERITY.get(state, "")


def ellipsis() -> str:
    """``…``, or ``...`` where stdout cannot encode it (a legacy code page)."""
    import sys

    try:
        "…".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "..."
    return "…"


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the cut marked with an ellipsis."""
    if len(text) <= width:
        return text
    mark = ellipsis()
    return text[:max(0, width - len(mark))] + mark if width > len(mark) else text[:width]


def uptime(seconds: Optional[float]) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``4d``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d"


def port_text(row: dict[str, Any]) -> str:
    """The port, after the host when it is not the default (``0.0.0.0:8001``, ``[::1]:8001``)."""
    port = "auto" if row["port"] is None else str(row["port"])
    host = row.get("host") or HOST
    if host == HOST:
        return port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def command_text(row: dict[str, Any], *, full: bool) -> str:
    """The command with ``{port}`` and ``{host}`` filled in; the program's basename unless ``full``."""
    import os

    words = list(row["command"])
    if row["port"] is not None:
        words = [w.replace("{port}", str(row["port"])).replace("{host}", row.get("host") or HOST) for w in words]
    if words and not full:
        words[0] = os.path.basename(words[0].replace("\\", "/")) or words[0]
    return " ".join(words)


def health_text(row: dict[str, Any], *, full: bool) -> str:
    last = row.get("last_health")
    if not last:
        return "-"
    if last.get("ok"):
        return f"ok {last.get('latency_ms', 0):.0f} ms" if full else "ok"
    return f"failed ({last.get('detail', '')})" if full else "failing"


def exit_text(code: Any) -> str:
    """``3``; ``137 (SIGKILL)`` for a death by signal (128 + N, or -N)."""
    import signal

    if not isinstance(code, int):
        return "-"
    number = code - 128 if code > 128 else -code if code < 0 else 0
    try:
        return f"{code} ({signal.Signals(number).name})" if number else str(code)
    except ValueError:
        return str(code)


def last_exit_text(last: Optional[dict[str, Any]]) -> str:
    """``137 (SIGKILL) at 14:02:05``; ``- at ...`` when we stopped it (a failed health check)."""
    if not last:
        return "-"
    return f"{exit_text(last.get('code'))} at {clock(last.get('at'))}"


def clock(iso: Any, today: Optional[date] = None) -> str:
    """An ISO 8601 time in local time: ``14:02:05``, with the date when it is not ``today``
    (``2026-11-23 14:02:05``; ``today`` defaults to the local date)."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(str(iso)).astimezone()
    except ValueError:
        return str(iso or "?")
    if moment.date() == (today or datetime.now().astimezone().date()):
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def started_text(iso: Any) -> str:
    """The start time in local time, to the second, as one word (``2026-11-23T14:02:05``)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(iso)).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return "-"


def cells(row: dict[str, Any], *, wide: bool) -> list[str]:
    """One row's cells, in the order of COLUMNS (or WIDE_COLUMNS)."""
    name, state, pid = str(row["name"] or "-"), row["state"], str(row["pid"] or "-")
    up, restarts = uptime(row["uptime_s"]), str(row["restarts"])
    if not wide:
        return [name, port_text(row), state, pid, up, restarts, health_text(row, full=False),
                command_text(row, full=False)]
    port = "auto" if row["port"] is None else str(row["port"])
    started = started_text(row["started_at"]) if row["started_at"] else "-"
    return [name, port, row.get("host") or "-", state, pid, str(row["child_pid"] or "-"), started, up, restarts,
            last_exit_text(row["last_exit"]), health_text(row, full=True), command_text(row, full=True)]


def table(rows: Sequence[dict[str, Any]], width: int, *, wide: bool = False) -> list[list[str]]:
    """The header and a line of cells per row, every cell padded to its column's width: at
    most ``width`` characters a line (HEALTH only when some instance has a health result; the
    command cut to fit, or left out when fewer than MIN_COMMAND characters remain; names are
    never cut); ``wide``: every column, nothing cut."""
    grid = [list(WIDE_COLUMNS if wide else COLUMNS)] + [cells(r, wide=wide) for r in rows]
    health = COLUMNS.index("HEALTH")
    if not wide and all(line[health] == "-" for line in grid[1:]):  # no health checks: no column
        grid = [line[:health] + line[health + 1:] for line in grid]
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]
    if not wide:
        room = width - sum(widths[:-1]) - len(GAP) * (len(widths) - 1)
        if room < MIN_COMMAND:
            grid, widths = [line[:-1] for line in grid], widths[:-1]
        else:
            widths[-1] = min(widths[-1], room)
            for line in grid:
                line[-1] = cut(line[-1], room)
    widths[-1] = 0  # the last column is not padded: no trailing blanks
    return [[cell.ljust(w) for cell, w in zip(line, widths)] for line in grid]


def note(row: dict[str, Any], target: str) -> Optional[tuple[str, str]]:
    """The reason and the command that helps for a row in trouble (fatal, stale, backoff,
    unhealthy), or None. ``target`` names the instance in the command (``api``, ``--port 8001``)."""
    state, last = row["state"], row.get("last_exit")
    logs = f"portctl logs {target}" if row.get("log") else ""
    if state == "fatal":
        reason = row.get("reason") or "gave up"
        if last and last.get("code") is not None and f"code {last['code']}" not in reason:
            reason += f"; last exit code {last_exit_text(last)}"
        return reason, f"portctl restart {target}"
    if state == "stale":
        return messages.supervisor_dead(row["pid"]), "portctl clean"
    if state == "unhealthy":
        health = row.get("last_health") or {}
        return row.get("reason") or f"health check failed ({health.get('detail', '')})", logs
    if state == "backoff":
        return messages.restarting_after(row.get("reason") or last_exit_text(last)), logs
    return None


def note_lines(name: str, reason: str, helps: str, width: int) -> list[str]:
    """``api: <reason>; try `portctl restart api```; when that is wider than ``width``, the
    reason (cut to fit) and the command on a line of its own below it."""
    line = f"{name}: {reason}" + (f"; try `{helps}`" if helps else "")
    if len(line) <= width:
        return [line]
    return [cut(f"{name}: {reason}", width)] + ([f"  try `{helps}`"] if helps else [])


def targets(rows: Sequence[dict[str, Any]]) -> dict[int, str]:
    """How a hint names each row: by name when no other row has it, else ``--port PORT``."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row["name"])] = counts.get(str(row["name"]), 0) + 1
    return {i: (str(r["name"]) if r["name"] and counts[str(r["name"])] == 1 else f"--port {r['port']}")
            for i, r in enumerate(rows)}


# ---------------------------------------------------------------- events
_EVENT_SEVERITY = {"fatal": "error", "port_conflict": "error", "exited": "warn", "restarting": "warn",
                   "health_failed": "warn", "port_changed": "warn", "stopping": "warn",
                   "ready": "ok", "health_ok": "ok", "stopped": "off"}
_KNOWN = {"time", "event", "name", "port", "pid", "child_pid"}


def event_severity(kind: str) -> str:
    return _EVENT_SEVERITY.get(kind, "")


def event_detail(event: dict[str, Any]) -> str:
    """What an event says beyond its kind (``code 3``, ``in 0.5 s (restart 2): exited ...``)."""
    kind, reason = event.get("event"), str(event.get("reason") or "")
    if kind == "started":
        return f"pid {event.get('child_pid')}" if event.get("child_pid") else ""
    if kind == "ready":
        elapsed_ms = float(event.get("elapsed_ms") or 0)
        return f"in {elapsed_ms:.0f} ms" if elapsed_ms < 1000 else f"in {elapsed_ms / 1000:.1f} s"
    if kind == "exited":
        return f"code {exit_text(event.get('code'))}"
    if kind == "restarting":
        return f"in {event.get('delay_s')} s (restart {event.get('restarts')}): {reason}"
    if kind == "health_failed":
        return f"{event.get('detail')} ({event.get('failures')} in a row)"
    if kind == "health_ok":
        return f"{float(event.get('latency_ms') or 0):.0f} ms"
    if kind == "port_conflict":
        return "port held by pid " + ", ".join(map(str, event.get("holders") or []))
    if kind == "port_changed":
        return f"{event.get('previous')} -> {event.get('port')}" + (f": {reason}" if reason else "")
    extra = {k: v for k, v in event.items() if k not in _KNOWN | {"reason"}}
    return "; ".join([reason] * bool(reason) + [f"{k}={v}" for k, v in extra.items()])


def event_columns(event: dict[str, Any], today: Optional[date] = None) -> list[str]:
    """The local time (with the date when not ``today``), the name (``:PORT`` without one)
    padded to 12, the event padded to 13, and what it says."""
    who = str(event.get("name") or f":{event.get('port')}")
    return [clock(event.get("time"), today), f"{who:<12}", f"{event.get('event')!s:<13}", event_detail(event)]


def event_line(columns: Sequence[str]) -> str:
    """``14:02:05  api           exited         code 3``."""
    return GAP.join(columns).rstrip()
