"""Opening run files safely in a shared run dir (git's safe.directory, OpenSSH's StrictModes).

A run dir may be world-writable (/tmp, a shared checkout): another local user can plant files,
symlinks and FIFOs there before us. So every run file, log and event file is opened without
following a symlink and without blocking (O_NOFOLLOW | O_NONBLOCK), accepted only if it is a
regular file that the invoking user owns and that group and others cannot write, and
``.portctl/`` and its subdirectories only if they are real directories with the same rules.
Anything else is refused with :class:`UnsafeFile` (exit 1), never followed or "fixed" (no chown).
Windows has no owner uid or symlink flag here: there only the regular-file test applies.
"""
from __future__ import annotations

import os
import stat
import sys

from .errors import PortctlError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Optional

_SAFE_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = getattr(os, "O_DIRECTORY", 0)
_DIR_FD = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd
_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class UnsafeFile(PortctlError):
    """A run file or ``.portctl/`` directory that portctl refuses to trust (exit 1). It owns
    its words: this module is a leaf the platform modules use, so it imports no messages."""

    @classmethod
    def of_kind(cls, path: object, kind: str, owner: str) -> UnsafeFile:
        return cls(f"refusing {path}: it is {kind} (owner {owner})",
                   "portctl opens only regular files and directories of its own: remove it, or use "
                   "a run dir of your own (--run-dir)")

    @classmethod
    def of_owner(cls, path: object, owner: str, me: str) -> UnsafeFile:
        return cls(f"refusing {path}: it is owned by {owner}, not by {me}",
                   "a run dir's files must be yours: use a run dir of your own (--run-dir)")

    @classmethod
    def of_mode(cls, path: object, mode: int, owner: str) -> UnsafeFile:
        return cls(f"refusing {path}: group or others may write it (mode {mode:04o}, owner {owner})",
                   f"`chmod go-w {path}` if you trust its content")


def open_file(path: Path, flags: int, mode: int = 0o600, *, depth: int = 0) -> int:
    """``os.open`` that follows no symlink, never blocks on a FIFO, and returns an fd only for a
    regular file we own that nobody else may write. FileNotFoundError passes through.

    ``depth`` is how many directories above the file are portctl's (2 for
    ``.portctl/logs/NAME.log``): each is opened in turn, relative to the last, with the same
    checks, so a directory swapped for a symlink after a check still leads nowhere."""
    parent = _open_dirs(path.parent, depth, create=False) if depth else None
    try:
        where = path.name if parent is not None else path
        try:
            fd = os.open(where, flags | _SAFE_FLAGS, mode, dir_fd=parent)
        except FileNotFoundError:
            raise
        except OSError as exc:
            _refuse_link(path, exc)
            raise
    finally:
        if parent is not None:
            os.close(parent)
    try:
        check(path, os.fstat(fd), stat.S_ISREG)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_small(path: Path, limit: int, *, depth: int = 0) -> Optional[bytes]:
    """The content of a trusted regular file of 1 to ``limit`` bytes; None when it is missing,
    unreadable, empty or longer (stale); UnsafeFile when it is not to be trusted."""
    try:
        fd = open_file(path, os.O_RDONLY, depth=depth)
    except OSError:
        return None
    try:
        raw = os.read(fd, limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return raw if 0 < len(raw) <= limit else None


def ensure_dir(path: Path, depth: int) -> None:
    """Create (mode 0755) and check ``path`` and its ``depth - 1`` parents, outermost first:
    ``ensure_dir(run/.portctl/logs, 2)`` checks ``.portctl`` before it creates ``logs`` in it."""
    fd = _open_dirs(path, depth, create=True)
    if fd is not None:
        os.close(fd)


def _open_dirs(path: Path, depth: int, *, create: bool) -> Optional[int]:
    """An fd of directory ``path``, reached from its ``depth``-th parent (trusted: the run dir
    as given) one checked directory at a time, made first if ``create``. None where the OS
    opens no directory relative to another (Windows): there the paths are checked instead."""
    chain = list(reversed([path, *path.parents][:depth]))
    if not _DIR_FD:
        for directory in chain:
            if create:
                _mkdir(directory, None)
            check(directory, os.lstat(directory), stat.S_ISDIR)
        return None
    fd = os.open(chain[0].parent, os.O_RDONLY | _DIR_FLAGS)
    try:
        for directory in chain:
            if create:
                _mkdir(directory.name, fd)
            try:
                inner = os.open(directory.name, os.O_RDONLY | _DIR_FLAGS | _SAFE_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise
            except OSError:  # a symlink or a file (ENOTDIR, ELOOP): name what it is
                check(directory, os.lstat(directory.name, dir_fd=fd), stat.S_ISDIR)
                raise
            os.close(fd)
            fd = inner
            check(directory, os.fstat(fd), stat.S_ISDIR)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _mkdir(path: object, dir_fd: Optional[int]) -> None:
    try:
        os.mkdir(path, 0o755, dir_fd=dir_fd)  # type: ignore[arg-type]
    except FileExistsError:
        pass  # ours from before, a concurrent portctl's, or planted: checked next


def check(path: Path, st: os.stat_result, kind_ok: Callable[[int], bool]) -> None:
    """Refuse ``st`` (of ``path``) unless it is of the wanted kind, ours, and not writable by others."""
    if not kind_ok(st.st_mode):
        raise UnsafeFile.of_kind(path, _kind(st.st_mode), _owner(st.st_uid))
    euid = getattr(os, "geteuid", None)
    if euid is None:  # Windows: no uid to compare
        return
    if st.st_uid != euid():
        raise UnsafeFile.of_owner(path, _owner(st.st_uid), _owner(euid()))
    if st.st_mode & _BY_OTHERS:
        raise UnsafeFile.of_mode(path, stat.S_IMODE(st.st_mode), _owner(st.st_uid))


def _refuse_link(path: Path, exc: OSError) -> None:
    """O_NOFOLLOW on a symlink fails (ELOOP; EMLINK or EFTYPE on some BSDs): name it."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFile.of_kind(path, "a symbolic link", _owner(st.st_uid)) from exc


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def _owner(uid: int) -> str:
    if sys.platform == "win32":
        return f"uid {uid}"
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
