"""Instance logs: a size-rotated file the supervisor's output pump appends to, and the reader
side (`log_path`, `tail`, `follow`) for ``portctl logs``.

The child's stdout and stderr share one pipe, so one pump copies them in the order written.
With timestamps (``start --timestamps``) each line the child begins is prefixed with the local
time it was read, ISO 8601 with milliseconds and the UTC offset (``child_stamp``): a line
written in pieces gets one stamp, at its start. The supervisor's own lines always start a line.

Rotation renames ``name.log`` -> ``name.log.1`` -> ... -> ``name.log.<backups>`` (the oldest
is dropped). On Windows a rename fails while a reader holds the file open; rotation then
retries on the next write (the file grows a little past its limit until the reader lets go).
Logs live in ``.portctl/logs/`` and are opened as run files (safefile.py): no symlink followed,
regular files of the invoking user only, rotation included.
"""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional, Protocol, Sequence

from ..base import messages, safefile
from ..base.defaults import LOG_BACKUPS, LOG_MAX_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .runfiles import RunDir

_CHUNK = 65536


def child_stamp() -> bytes:
    """The local time now, as a child line's prefix: ``2026-12-02T14:02:05.123+01:00 ``."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds").encode() + b" "


def stamp_lines(data: bytes, at_line_start: bool, prefix: bytes) -> bytes:
    """``data`` with ``prefix`` before each line that begins in it: after each newline but a
    final one, and at its start when ``at_line_start`` (the previous chunk ended a line)."""
    if not data:
        return data
    body, end = (data[:-1], b"\n") if data.endswith(b"\n") else (data, b"")
    return (prefix if at_line_start else b"") + body.replace(b"\n", b"\n" + prefix) + end


class Sink(Protocol):
    """Where ``pump`` puts a child's output."""

    def write(self, data: bytes) -> None: ...


class RotatingLog:
    """Thread-safe, append-only, unbuffered; rotates before a write that would pass ``max_bytes``.
    ``timestamps``: the child's lines (``write``) are stamped; the supervisor's (``lifecycle``) are
    marked ``[portctl <UTC time>]``."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS,
                 *, timestamps: bool = False) -> None:
        self.path, self.max_bytes, self.backups, self.timestamps = path, max_bytes, backups, timestamps
        self._lock = threading.Lock()
        safefile.ensure_dir(path.parent, 2)  # .portctl/logs
        self._fd: Optional[int] = self._open()
        self._size = os.fstat(self._fd).st_size
        self._dropped, self._drop_reason = 0, ""  # bytes lost while writes failed, and why
        self._line_open = self._ends_inside_a_line()  # the file ends inside a line

    def _open(self) -> int:
        return safefile.open_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644, depth=2)

    def _ends_inside_a_line(self) -> bool:
        """Whether the file, as an earlier run left it (a child killed mid-line), lacks its last newline."""
        if not self._size:
            return False
        try:
            fd = safefile.open_file(self.path, os.O_RDONLY, depth=2)
        except OSError:
            return False
        try:
            os.lseek(fd, -1, os.SEEK_END)
            return os.read(fd, 1) != b"\n"
        finally:
            os.close(fd)

    def write(self, data: bytes) -> None:
        """Append the child's ``data`` (with ``timestamps``, each line it begins stamped); never
        raises. While writes fail (a full disk) the data is dropped, and the first write that
        works again is preceded by one line saying how much was lost: the child's output keeps
        being drained, so our logging never blocks or kills it."""
        with self._lock:
            self._append(stamp_lines(data, not self._line_open, child_stamp()) if self.timestamps else data)

    def _append(self, data: bytes, *, own_line: bool = False) -> None:
        """Write ``data`` (``own_line``: a line of ours, which starts a line of the file)."""
        if self._fd is None or not data:
            return
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
            if self._fd is None:
                return
        if own_line:
            data = self._break().encode() + data
        try:
            if self._dropped:
                self._size += os.write(self._fd, self._gap_line())
                self._dropped, self._line_open = 0, False
            written = os.write(self._fd, data)
        except OSError as exc:
            self._dropped, self._drop_reason = self._dropped + len(data), exc.strerror or str(exc)
            return
        self._size += written
        self._line_open = not data[:written].endswith(b"\n")
        if written < len(data):  # the disk filled up in the middle of this write
            self._dropped, self._drop_reason = len(data) - written, "short write"

    def _gap_line(self) -> bytes:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        return (f"{self._break()}[portctl {stamp}] {self._dropped} bytes of output dropped: "
                f"the log could not be written ({self._drop_reason})\n").encode()

    def lifecycle(self, text: str) -> None:
        """One supervisor line, marked apart from the child's output, on a line of its own
        (after a partial line of the child's, a newline first)."""
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            self._append(f"[portctl {stamp}] {text}\n".encode(), own_line=True)

    def _break(self) -> str:
        """A newline when the file ends inside a line, so a line of ours starts a line."""
        return "\n" if self._line_open else ""

    def _rotate(self) -> None:
        if not rotate(self.path, self.backups):
            return  # a reader holds the file (Windows): try again on the next write
        assert self._fd is not None
        os.close(self._fd)
        try:
            self._fd, self._size, self._line_open = self._open(), 0, False
        except OSError:
            self._fd = None  # cannot even create the file: the log is closed

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def rotate(path: Path, backups: int) -> bool:
    """Shift ``path`` -> ``path.1`` -> ... -> ``path.<backups>`` (the oldest is dropped).
    False when a rename failed (Windows: a reader holds the file), so the caller retries."""
    try:
        for index in range(backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
    except OSError:
        return False
    return True


class StampedEcho:
    """The child's output copied to ``fd`` (a foreground `start --timestamps`: our stdout,
    where the child would have written), each line stamped. A failing write (the terminal
    went away) drops the data: the child's pipe keeps being drained."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._line_open = False

    def write(self, data: bytes) -> None:
        with self._lock:
            data = stamp_lines(data, not self._line_open, child_stamp())
            if data:
                self._line_open = not data.endswith(b"\n")
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:
                return


def pump(stream: Optional[BinaryIO], sink: Sink) -> None:
    """Copy a child's pipe into ``sink`` until EOF; blocking reads, so no cost while idle."""
    if stream is None:
        return
    fd = stream.fileno()
    try:
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return
            sink.write(chunk)
    except OSError:
        return
    finally:
        stream.close()


TAIL_MAX_BYTES = 1024 * 1024  # `logs -n N` reads at most this much of a file (a huge line is cut)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines, reaching into ``path.1`` when the current file has fewer."""
    if lines <= 0:
        return []
    found, whole = _tail_one(path, lines)
    if len(found) < lines and whole:
        found = _tail_one(path.with_name(f"{path.name}.1"), lines - len(found))[0] + found
    return found


def _tail_one(path: Path, lines: int) -> tuple[list[str], bool]:
    """The last ``lines`` lines of ``path``, read backwards in blocks: linear in what is read,
    and never more than TAIL_MAX_BYTES (a longer last line keeps its end). True with them
    when the file was read to its start."""
    blocks: list[bytes] = []
    newlines = 0
    try:
        with _open_read(path) as fh:
            end = fh.seek(0, os.SEEK_END)
            floor = max(0, end - TAIL_MAX_BYTES)
            while end > floor and newlines <= lines:
                start = max(floor, end - _CHUNK)
                fh.seek(start)
                block = fh.read(end - start)
                blocks.append(block)
                newlines += block.count(b"\n")
                end = start
    except OSError:
        return [], True
    text = b"".join(reversed(blocks)).decode("utf-8", errors="replace").splitlines()
    return text[-lines:], end == 0


def follow(path: Path, lines: int = 10, *, poll_s: float = 0.1,
           stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """The last ``lines`` lines, then each new line as it is written, until ``stop()``.
    Survives rotation (finishes the old file, then reads the new one from its start) and
    truncation (starts over); a missing file is waited for."""
    yield from tail(path, lines)
    fh, ident = _open_at_end(path)
    pending = b""
    try:
        while not stop():
            chunk = fh.read() if fh else b""
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                yield from (line.decode("utf-8", errors="replace") for line in complete)
                continue
            fh, ident, pending = _reopen_if_replaced(path, fh, ident, pending)
            if fh is None or not chunk:
                time.sleep(poll_s)
    finally:
        if fh:
            fh.close()


def _open_read(path: Path) -> BinaryIO:
    """A log (``.portctl/logs/NAME.log``) or the events (``.portctl/events.jsonl``) opened for
    reading as a run file, through checked directories: UnsafeFile if not ours."""
    depth = next((n for n, d in ((1, path.parent), (2, path.parent.parent)) if d.name == ".portctl"), 0)
    return os.fdopen(safefile.open_file(path, os.O_RDONLY, depth=depth), "rb")


def _open_at_end(path: Path) -> tuple[Optional[BinaryIO], Optional[tuple[int, int]]]:
    try:
        fh = _open_read(path)
    except OSError:
        return None, None
    fh.seek(0, os.SEEK_END)
    st = os.fstat(fh.fileno())
    return fh, (st.st_dev, st.st_ino)


def _reopen_if_replaced(path: Path, fh: Optional[BinaryIO], ident: Optional[tuple[int, int]],
                        pending: bytes) -> tuple[Optional[BinaryIO], Optional[tuple[int, int]], bytes]:
    """After a read found nothing new: switch to a new file at ``path``, or rewind a truncated one."""
    try:
        st = os.stat(path)
    except OSError:
        return fh, ident, pending
    if fh is not None and (st.st_dev, st.st_ino) == ident:
        if st.st_size < fh.tell():
            fh.seek(0)  # truncated in place
        return fh, ident, pending
    if fh is not None:
        fh.close()
    try:
        fh = _open_read(path)
    except OSError:
        return None, None, pending
    return fh, (st.st_dev, st.st_ino), b""


def log_path(run_dir: RunDir, name: Optional[str], port: int) -> Path:
    """The log of instance ``name``, else of the instance on ``port``."""
    from ..base.errors import NotRunning

    if name:
        return run_dir.log_file(name)
    spec = run_dir.read_spec(port)  # the live record's, else the last one started there
    if spec is None:
        raise NotRunning.no_log(f"port {port}")
    return run_dir.log_file(spec.name)


def log_names(run_dir: RunDir, names: Sequence[str]) -> list[str]:
    """The instances ``names`` (none: every instance with a log), each checked to have a log:
    NotRunning (exit 3) naming the logs there are when one has none; PortctlError when the
    run dir has no log at all. A name that is no name is BadInput."""
    from ..base.errors import NotRunning, PortctlError
    from .spec import NAME_RE

    for name in names:
        run_dir.log_file(name)  # BadName for ../x
    known = sorted(p.name[:-4] for p in run_dir.log_file("x").parent.glob("*.log")
                   if NAME_RE.fullmatch(p.name[:-4]))
    missing = [name for name in names if name not in known]
    if not known:
        raise PortctlError.no_log(repr(missing[0]) if missing else "this run dir")
    if missing:
        raise NotRunning(*messages.no_log_among(missing[0], known))
    return list(dict.fromkeys(names)) or known


def route_library_log(emit: Callable[[int, str], None]) -> None:
    """Send the library's log records (logger ``portctl``, INFO and up) to ``emit(level,
    text)`` instead of the logging tree: the CLI prints them, the detached daemon hands them
    to the waiting parent. Called again, it replaces the earlier route."""
    import logging

    class Route(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emit(record.levelno, record.getMessage())

    logger = logging.getLogger("portctl")
    for old in [h for h in logger.handlers if type(h).__name__ == "Route"]:
        logger.removeHandler(old)
    logger.addHandler(Route())
    logger.setLevel(logging.INFO)
    logger.propagate = False
