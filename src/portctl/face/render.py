"""The command line's face: prints lines, warnings and errors, tables (rich on a terminal,
plain text otherwise or with NO_COLOR) and one JSON document for --json. Only the CLI uses it
(cli, commands, entry); the library says what it has to say through a ``notify``/``warn``
callable or ``logging.getLogger("portctl")``, with the words from ``messages``. rich is
imported only when a table is drawn on a terminal."""
from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager

from ..base.errors import exit_code_of, message_of
from ..base.messages import log_tail_header, nothing_holds, short_command, stop_own_hint, take_port_hint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, Optional, Sequence, TextIO

    from rich.console import RenderableType


def report(exc: BaseException) -> int:
    """Print ``exc`` as the one error line (its message and hint) and return its exit code:
    every entry (the click CLI and the fast path) ends an error here."""
    error(*message_of(exc))
    return exit_code_of(exc)


def status_table(rows: Sequence[dict[str, Any]], *, wide: bool = False) -> None:
    """``status``: the table (``statusview.table``) fitted to the terminal (80 columns when
    piped, or COLUMNS), then a line for each row in trouble with its reason and the command
    that helps. On a terminal the states are coloured; else plain, byte-stable text."""
    from . import statusview as view

    width = _width()
    grid = view.table(rows, width, wide=wide)
    names = view.targets(rows)
    notes = []
    for i, row in enumerate(rows):
        found = view.note(row, names[i])
        if found:
            level = view.severity(row["state"])
            notes += [(level, line) for line in view.note_lines(str(row["name"] or row["port"]), *found, width)]
    if not fancy():
        for line in grid:
            say(view.GAP.join(line).rstrip())
        if notes:
            say("")
        for _, note in notes:
            say(note)
        return
    from rich.text import Text

    console = _console()
    console.print(Text(view.GAP.join(grid[0]).rstrip(), style="bold"))
    state_at = [cell.strip() for cell in grid[0]].index("STATE")
    for row, line in zip(rows, grid[1:]):
        style = _STYLES.get(view.severity(row["state"]), "")
        shown = Text(view.GAP.join(line).rstrip(), style="dim" if style == "dim" else "")
        start = sum(len(cell) + len(view.GAP) for cell in line[:state_at])
        shown.stylize(style, start, start + len(row["state"]))
        console.print(shown)
    if notes:
        console.print()
    for level, note in notes:
        name, colon, rest = note.partition(": ")
        if note.startswith(" ") or not colon:  # the command that helps, on a line of its own
            name, rest = "", note
        console.print(Text.assemble((name + colon, _STYLES.get(level, "")), rest))


_STYLES = {"ok": "green", "warn": "yellow", "error": "red", "off": "dim"}


def _width() -> int:
    """The width to fit: COLUMNS, else the terminal's, else 80 (piped; as shutil, without its import)."""
    try:
        return max(1, int(os.environ["COLUMNS"]))
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


def event(data: dict[str, Any]) -> None:
    """One lifecycle event as a line (``statusview.event_line``): on a terminal its kind
    coloured by severity and the line cut to the terminal's width."""
    from . import statusview as view

    columns = view.event_columns(data)
    line = view.event_line(columns)
    if not fancy():
        say(line)
        return
    from rich.text import Text

    text = Text(view.cut(line, _width()))
    start = len(view.GAP.join(columns[:2]) + view.GAP)
    kind = str(data.get("event"))
    text.stylize(_STYLES.get(view.event_severity(kind), ""), start, start + len(kind))
    _console().print(text)


@functools.lru_cache(maxsize=None)
def _console() -> Any:
    """The one rich console of this process (stdout, no highlighting, no wrapping)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def who_report(port: int, holders: Sequence[dict[str, Any]], run_dir: str = "") -> None:
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
                     chain, owner, short_command(h["cmdline"], 70)])
    table(f"port {port}", ["PID", "NAME", "USER", "ADDRESS", "STARTED", "PARENTS", "PORTCTL", "COMMAND"], rows)
    say(stop_own_hint(holders, run_dir) or take_port_hint(port, _remedy(holders)))


def _remedy(holders: Sequence[dict[str, Any]]) -> str:
    from types import SimpleNamespace

    from ..core.policy import remedy

    return remedy(SimpleNamespace(pid=h.get("pid"), username=h.get("username")) for h in holders)


def log_tail(path: str, lines: Sequence[str]) -> None:
    print(log_tail_header(path), file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)


def log_to() -> None:
    """Show the library's log records (logger ``portctl``, INFO and up) as the CLI's lines on
    stderr: errors and warnings as ``error``/``warn`` print them, the rest as ``portctl: ...``."""
    import logging

    from ..core.logs import route_library_log

    def line(level: int, text: str) -> None:
        if level >= logging.ERROR:
            error(text, "")
        elif level >= logging.WARNING:
            warn(text)
        else:
            print(f"portctl: {text}", file=sys.stderr, flush=True)

    route_library_log(line)


def fancy() -> bool:
    """May stdout get colours and tables drawn by rich."""
    return _decorated(sys.stdout)


def say(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(f"portctl: warning: {line}", file=sys.stderr, flush=True)


def error(message: str, hint: str) -> None:
    text = f"portctl: error: {message}" + (f" ({hint})" if hint else "")
    print(text, file=sys.stderr, flush=True)


def write(text: str) -> None:
    """``text`` on stdout as it is (a generated file: no newline added)."""
    sys.stdout.write(text)
    sys.stdout.flush()


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


_SERVICE_COLOURS = ("36", "33", "32", "35", "34", "91", "96", "93")


def service_line(name: str, width: int, line: str, index: int, *, clock: bool = False) -> str:
    """``HH:MM:SS name   | line`` (the clock when ``clock``) for a project's logs, the prefix
    coloured on a terminal (a colour per service, by ``index``)."""
    import time

    prefix = (time.strftime("%H:%M:%S ") if clock else "") + f"{name.ljust(width)} |"
    if fancy():
        prefix = f"\x1b[{_SERVICE_COLOURS[index % len(_SERVICE_COLOURS)]}m{prefix}\x1b[0m"
    return f"{prefix} {line}"


# ---------------------------------------------------------------- start: the wait and the ready lines
def _decorated(stream: Any) -> bool:
    """May ``stream`` get colours and animation: a terminal, NO_COLOR unset, TERM not dumb."""
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
    return tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class Waiting:
    """What a spinner says while `start` waits: ``what`` (may change meanwhile), then the
    time since it began; rich asks for it at every refresh."""

    def __init__(self, what: str) -> None:
        import time

        self.what = what
        self._began = time.monotonic()
        self._spinner: Any = None

    def __rich__(self) -> RenderableType:
        import time

        from rich.spinner import Spinner

        text = f"{self.what} … {time.monotonic() - self._began:.1f} s"
        if self._spinner is None:
            self._spinner = Spinner("dots", text=text, style="cyan")
        else:
            self._spinner.update(text=text)
        spinner: RenderableType = self._spinner
        return spinner


def _wait_stream() -> Optional[TextIO]:
    """Where a spinner goes: stderr when it is a terminal, else stdout if that is one."""
    for stream in (sys.stderr, sys.stdout):
        if _decorated(stream):
            return stream
    return None


@contextmanager
def waiting(what: str) -> Iterator[Waiting]:
    """A transient spinner with the elapsed time on a terminal, for the block's duration (gone
    before anything after it prints); nothing at all when piped. Ctrl+C still interrupts."""
    state = Waiting(what)
    stream = _wait_stream()
    if stream is None:
        yield state
        return
    from rich.console import Console
    from rich.live import Live

    with Live(state, console=Console(file=stream), refresh_per_second=12, transient=True,
              redirect_stdout=stream is sys.stdout, redirect_stderr=stream is sys.stderr):
        yield state


def ready(lead: str, lan: Sequence[str] = (), lines: Sequence[str] = ()) -> None:
    """The ready line (its URL on one line), the LAN URLs, then the details: on a terminal a
    green check and dimmed details (rich); plain text, the same words, otherwise."""
    if not fancy():
        for line in (lead, *lan, *lines):
            say(line)
        return
    from rich.text import Text

    console = _console()
    console.print(Text.assemble(("\u2713 ", "bold green"), (lead, "bold")), soft_wrap=True)
    for line in lan:
        console.print(Text(line, style="bold"), soft_wrap=True)
    details(lines)


def details(lines: Sequence[str]) -> None:
    """Lines of detail: dimmed on a terminal (rich), plain otherwise."""
    if not fancy():
        for line in lines:
            say(line)
        return
    from rich.text import Text

    console = _console()
    for line in lines:
        console.print(Text(line, style="dim"), soft_wrap=True)
