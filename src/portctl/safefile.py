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

from .errors import PortctlError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Optional

_SAFE_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class UnsafeFile(PortctlError):
    """A run file or ``.portctl/`` directory that portctl refuses to trust (exit 1)."""


def open_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that follows no symlink, never blocks on a FIFO, and returns an fd only for a
    regular file we own that nobody else may write. FileNotFoundError passes through."""
    try:
        fd = os.open(path, flags | _SAFE_FLAGS, mode)
    except FileNotFoundError:
        raise
    except OSError as exc:
        _refuse_link(path, exc)
        raise
    try:
        check(path, os.fstat(fd), stat.S_ISREG)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_small(path: Path, limit: int) -> Optional[bytes]:
    """The content of a trusted regular file of 1 to ``limit`` bytes; None when it is missing,
    unreadable, empty or longer (stale); UnsafeFile when it is not to be trusted."""
    try:
        fd = open_file(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return raw if 0 < len(raw) <= limit else None


def check_dir(path: Path) -> bool:
    """Whether ``path`` exists, checked as a private directory (UnsafeFile if it is not one)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    check(path, st, stat.S_ISDIR)
    return True


def ensure_dir(path: Path, depth: int) -> None:
    """Create (mode 0755) and check ``path`` and its ``depth - 1`` parents, outermost first:
    ``ensure_dir(run/.portctl/logs, 2)`` checks ``.portctl`` before it creates ``logs`` in it."""
    chain = [path, *path.parents][:depth]
    for directory in reversed(chain):
        if not check_dir(directory):
            try:
                os.mkdir(directory, 0o755)
            except FileExistsError:
                pass  # made by a concurrent portctl (or planted): checked next
            check_dir(directory)


def check_dirs(path: Path, depth: int) -> None:
    """Check the existing ones of ``path`` and its ``depth - 1`` parents (nothing is created)."""
    for directory in reversed([path, *path.parents][:depth]):
        if not check_dir(directory):
            return


def check(path: Path, st: os.stat_result, kind_ok: object) -> None:
    """Refuse ``st`` (of ``path``) unless it is of the wanted kind, ours, and not writable by others."""
    from . import output

    if not kind_ok(st.st_mode):  # type: ignore[operator]
        raise UnsafeFile(*output.unsafe_kind(path, _kind(st.st_mode), _owner(st.st_uid)))
    euid = getattr(os, "geteuid", None)
    if euid is None:  # Windows: no uid to compare
        return
    if st.st_uid != euid():
        raise UnsafeFile(*output.unsafe_owner(path, _owner(st.st_uid), _owner(euid())))
    if st.st_mode & _BY_OTHERS:
        raise UnsafeFile(*output.unsafe_mode(path, stat.S_IMODE(st.st_mode), _owner(st.st_uid)))


def _refuse_link(path: Path, exc: OSError) -> None:
    """O_NOFOLLOW on a symlink fails (ELOOP; EMLINK or EFTYPE on some BSDs): name it."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        from . import output

        raise UnsafeFile(*output.unsafe_kind(path, "a symbolic link", _owner(st.st_uid))) from exc


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
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"
