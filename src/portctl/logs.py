"""Instance logs: a size-rotated file the supervisor's pump threads append to, and the reader
side (`tail`, `follow`) for ``portctl logs``.

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
from typing import BinaryIO, Callable, Iterator, Optional

from . import safefile

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
_CHUNK = 65536


class RotatingLog:
    """Thread-safe, append-only, unbuffered; rotates before a write that would pass ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._lock = threading.Lock()
        safefile.ensure_dir(path.parent, 2)  # .portctl/logs
        self._fd: Optional[int] = self._open()
        self._size = os.fstat(self._fd).st_size
        self._dropped, self._drop_reason = 0, ""  # bytes lost while writes failed, and why

    def _open(self) -> int:
        return safefile.open_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644, depth=2)

    def write(self, data: bytes) -> None:
        """Append ``data``; never raises. While writes fail (a full disk) the data is dropped,
        and the first write that works again is preceded by one line saying how much was lost:
        the child's output keeps being drained, so our logging never blocks or kills it."""
        with self._lock:
            if self._fd is None:
                return
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
                if self._fd is None:
                    return
            try:
                if self._dropped:
                    self._size += os.write(self._fd, self._gap_line())
                    self._dropped = 0
                written = os.write(self._fd, data)
            except OSError as exc:
                self._dropped, self._drop_reason = self._dropped + len(data), exc.strerror or str(exc)
                return
            self._size += written
            if written < len(data):  # the disk filled up in the middle of this write
                self._dropped, self._drop_reason = len(data) - written, "short write"

    def _gap_line(self) -> bytes:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        return (f"[portctl {stamp}] {self._dropped} bytes of output dropped: "
                f"the log could not be written ({self._drop_reason})\n").encode()

    def lifecycle(self, text: str) -> None:
        """One supervisor line, marked apart from the child's output."""
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self.write(f"[portctl {stamp}] {text}\n".encode())

    def _rotate(self) -> None:
        if not rotate(self.path, self.backups):
            return  # a reader holds the file (Windows): try again on the next write
        assert self._fd is not None
        os.close(self._fd)
        try:
            self._fd, self._size = self._open(), 0
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


def pump(stream: Optional[BinaryIO], log: RotatingLog) -> None:
    """Copy a child's pipe into ``log`` until EOF; blocking reads, so no cost while idle."""
    if stream is None:
        return
    fd = stream.fileno()
    try:
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return
            log.write(chunk)
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
