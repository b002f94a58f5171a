"""Every user-visible word: messages (as (message, hint) pairs for errors), and rendering —
rich tables on a terminal, plain text otherwise or with NO_COLOR, one JSON document for --json.
rich is imported only when a table is drawn on a terminal."""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Optional, Sequence

Msg = tuple[str, str]

# ---------------------------------------------------------------- troubleshooting text
_SEE_HOLDER = {
    "linux": "see who holds it with `ss -ltnp 'sport = :{port}'` or `lsof -i :{port} -sTCP:LISTEN`",
    "macos": "see who holds it with `lsof -nP -i :{port} -sTCP:LISTEN`",
    "posix": "see who holds it with `lsof -nP -i :{port}` or `sockstat -l -p {port}`",
    "windows": "see who holds it with `netstat -ano | findstr :{port}` or PowerShell "
               "`Get-NetTCPConnection -LocalPort {port} | Select OwningProcess`",
}
_PRIVILEGE = {
    "windows": "run it from an Administrator terminal",
}


def _platform_name() -> str:
    from . import _platform  # imported on demand: it pulls in psutil

    return str(_platform.NAME)


def _see_holder(port: int) -> str:
    return _SEE_HOLDER.get(_platform_name(), _SEE_HOLDER["posix"]).format(port=port)


def _privilege() -> str:
    return _PRIVILEGE.get(_platform_name(), "run it with the right rights (e.g. sudo)")


# ---------------------------------------------------------------- error messages
def bad_port(value: object) -> Msg:
    return f"invalid port {value!r}", "use a number from 1 to 65535"


def bad_host(host: str, reason: str) -> Msg:
    return f"cannot use host {host!r}: {reason}", "give an IP address or a resolvable name"


def bad_number(option: str, value: object) -> Msg:
    return f"invalid {option} {value!r}", "use a number of seconds >= 0"


def already_running(port: int, pid: Optional[int]) -> Msg:
    who = f"pid {pid}" if pid else "another portctl"
    return (f"port {port} is already managed by a running portctl ({who})",
            f"stop it with `portctl stop --port {port}`")


def port_in_use(port: int, holders: Sequence[Any]) -> Msg:
    listed = "; ".join(_holder_short(h) for h in holders) or "a process we cannot see"
    return (f"port {port} is in use by {listed}",
            f"free it with `portctl start --force` or `portctl free {port}`, or pick another port")


def preferred_taken(port: Optional[int]) -> str:
    return f"port {port} is in use or managed by another portctl"


def port_race(port: int, reason: str) -> str:
    return f"port {port} could not be used ({reason}); trying the next candidate"


def no_port_found(tried: Sequence[int]) -> Msg:
    return (f"no usable port after trying {', '.join(map(str, tried))}",
            "widen --port-range, or use --port auto")


def bad_range(text: str) -> Msg:
    return f"invalid port range {text!r}", "use LOW-HIGH with 1 <= LOW <= HIGH <= 65535, e.g. 8000-8100"


def no_such_instance(name: str) -> Msg:
    return (f"no running instance named {name!r} in this run dir",
            "see `portctl status`; names come from --name or the command")


def too_many_restarts(count: int, window_s: float) -> str:
    return f"gave up after {count} restarts within {window_s:g} s"


def fatal(port: int, reason: str) -> str:
    return f"instance on port {port} is fatal: {reason}; the port is released"


def daemon_silent(code: Optional[int]) -> Msg:
    how = "is still running" if code is None else f"exited with code {code}"
    return f"the detached supervisor {how} without reporting", "see the log below"


def stopped_before_ready() -> str:
    return "the instance stopped before it served"


def detached_ready(url: str, pid: Optional[int], child_pid: Optional[int], log: Optional[str]) -> str:
    return f"portctl: serving {url} in the background (supervisor {pid}, child {child_pid}); log: {log}"


def detached_interrupted(name: str) -> str:
    return (f"interrupted; {name} goes on starting in the background: watch it with "
            f"`portctl status` or `portctl logs {name} -f`")


def log_tail_header(path: str) -> str:
    return f"--- last lines of {path} ---"


def no_log(what: str) -> Msg:
    return f"no log for {what}", "logs exist for detached instances (start -d)"


def still_busy(port: int) -> Msg:
    return f"port {port} is still in use after stopping its holders", _see_holder(port)


def production_refused(port: int, pid: int) -> Msg:
    return (f"refusing to stop pid {pid} on port {port}: portctl did not start it (production)",
            f"{_see_holder(port)}; stop it with its own service manager")


def permission_denied(pid: int) -> Msg:
    return f"not allowed to signal pid {pid}", _privilege()


def invisible_holder(port: int) -> Msg:
    return (f"port {port} is held by a process you may not see (another user's)",
            f"{_see_holder(port)}; {_privilege()}")


def other_user(pid: int, username: Optional[str]) -> Msg:
    owner = username or "another user"
    return f"pid {pid} belongs to {owner}, not to you", _privilege()


def survivors(pids: Iterable[int]) -> Msg:
    listed = ", ".join(map(str, pids))
    return (f"processes {listed} survived SIGKILL",
            "they may be stuck in the kernel (state D); check them with ps")


def not_ready(port: int, timeout_s: float) -> Msg:
    return (f"the child did not accept connections on port {port} within {timeout_s:g} s",
            "check that it listens on {port}/{host}, or raise --ready-timeout")


def exited_early(code: int) -> Msg:
    return (f"the child exited with code {code} before accepting connections",
            "run the command by hand to see why")


def exited_zero_early() -> Msg:
    return ("the child exited with code 0 before it ever accepted a connection",
            "a server must keep running: check the command")


def exited(code: int) -> Msg:
    return f"the child exited on its own with code {code}", ""


def tampered(port: int, file_pid: Optional[int], recorded: Optional[int]) -> Msg:
    return (f"refusing to signal: .server_{port}.pid names pid {file_pid} but the recorded "
            f"supervisor is pid {recorded}",
            "the pid file was edited or the record is damaged; check by hand")


def stop_timeout(port: int, waited_s: float) -> Msg:
    return (f"the instance on port {port} did not stop within {waited_s:g} s",
            f"check it with `portctl status --port {port}`")


def not_running(port: int) -> Msg:
    return f"nothing is running on port {port}", f"start it with `portctl start --port {port}`"


def nothing_recorded(port: int) -> Msg:
    return (f"no instance was ever recorded for port {port}",
            f"start one with `portctl start --port {port} -- CMD`")


def internal_error(exc: BaseException) -> Msg:
    return f"internal error: {exc!r}", "run again with -v for the traceback, and report it"


def spawn_failed(argv: Sequence[str], reason: str) -> Msg:
    return f"cannot run {argv[0]!r}: {reason}", "check the command after `--`"


# ---------------------------------------------------------------- progress lines
def stale_files(port: int, pid: Optional[int]) -> str:
    who = f"pid {pid}" if pid else "no valid pid"
    return f"removing stale .server_{port}.pid ({who}; no portctl holds its lock); nothing signalled"


def reclaimed(port: int, pids: Sequence[int]) -> str:
    return f"stopped orphans of an earlier instance on port {port}: pids {', '.join(map(str, pids))}"


def freed(port: int, pids: Sequence[int]) -> str:
    return f"freed port {port}: stopped pids {', '.join(map(str, pids))}"


def ready(url: str, pid: int, child_pid: int, elapsed_s: float) -> str:
    return f"portctl: serving {url} (supervisor {pid}, child {child_pid}) ready in {elapsed_s * 1000:.0f} ms"


def stopping(port: int, reason: str) -> str:
    return f"portctl: stopping port {port} ({reason})"


def stopped(port: int) -> str:
    return f"portctl: port {port} stopped and free"


def nothing_to_stop(port: int) -> str:
    return f"nothing running on port {port}"


def clean_action(action: str, path_or_pid: str, dry_run: bool) -> str:
    return f"{'would ' if dry_run else ''}{action} {path_or_pid}"


def clean_nothing() -> str:
    return "nothing to clean"


def nothing_holds(port: int) -> str:
    return f"nothing listens on port {port}"


def free_hint(port: int) -> str:
    return f"free it with: portctl free {port}"


def instance_url(host: str, port: int) -> str:
    from .ports import connect_host

    shown = connect_host(host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


# ---------------------------------------------------------------- rendering
def _holder_short(h: Any) -> str:
    cmd = " ".join(" ".join(h.cmdline).split())[:60] or h.name
    return f"pid {h.pid} ({h.name}, {h.username}: {cmd})" if h.pid else f"an unknown process on {h.address}"


STATUS_COLUMNS = ["PORT", "NAME", "STATE", "PID", "CHILD", "UPTIME", "RESTARTS", "LAST EXIT",
                  "HEALTH", "COMMAND"]


def status_row(r: dict[str, Any]) -> list[str]:
    uptime = f"{r['uptime_s']:.0f}s" if r["uptime_s"] is not None else "-"
    return [str(r["port"]), str(r["name"] or "-"), r["state"], str(r["pid"] or "-"),
            str(r["child_pid"] or "-"), uptime, str(r["restarts"]), _last_exit(r["last_exit"]),
            _last_health(r["last_health"]), " ".join(r["command"])[:50]]


def _last_exit(last: Optional[dict[str, Any]]) -> str:
    """``137 at 14:02:05``; ``- at ...`` when we stopped it (a failed health check)."""
    if not last:
        return "-"
    code = "-" if last.get("code") is None else last["code"]
    return f"{code} at {_clock(last.get('at'))}"


def _last_health(health: Optional[dict[str, Any]]) -> str:
    if not health:
        return "-"
    if health.get("ok"):
        return f"ok {health.get('latency_ms', 0):.0f} ms"
    return f"failed ({str(health.get('detail', ''))[:30]})"


def _clock(iso: Any) -> str:
    """The time of day of an ISO 8601 timestamp (``2026-11-23T14:02:05+00:00`` -> ``14:02:05``)."""
    text = str(iso or "")
    return text[11:19] if len(text) >= 19 else text or "?"


def who_report(port: int, holders: Sequence[dict[str, Any]]) -> None:
    """Holders as a table, each with its parent chain and instance, then the command to free it."""
    if not holders:
        say(nothing_holds(port))
        return
    rows = []
    for h in holders:
        chain = " < ".join(f"{p['name']}({p['pid']})" for p in h["parents"][:3]) or "-"
        inst = h["instance"]
        owner = f"portctl {inst['name']}:{inst['port'] or '?'} in {inst['run_dir']}" if inst else "-"
        rows.append([str(h["pid"] or "?"), h["name"], h["username"],
                     f"{h['address']} {h['family']} {h['scope']}", h["started_at"] or "-",
                     chain, owner, " ".join(" ".join(h["cmdline"]).split())[:70]])
    table(f"port {port}", ["PID", "NAME", "USER", "ADDRESS", "STARTED", "PARENTS", "PORTCTL", "COMMAND"], rows)
    say(free_hint(port))


def log_tail(path: str, lines: Sequence[str]) -> None:
    print(log_tail_header(path), file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)


def fancy() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def say(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(f"portctl: warning: {line}", file=sys.stderr, flush=True)


def error(message: str, hint: str) -> None:
    text = f"portctl: error: {message}" + (f" ({hint})" if hint else "")
    print(text, file=sys.stderr, flush=True)


def emit_json(data: Any) -> None:
    import json  # only for --json: plain `who` never loads it

    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; tab-free aligned plain text otherwise."""
    if fancy():
        from rich.console import Console
        from rich.table import Table

        grid = Table(title=title)
        for col in columns:
            grid.add_column(col)
        for row in rows:
            grid.add_row(*row)
        Console().print(grid)
        return
    widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows)]
    for row in (columns, *rows):
        say("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
