"""Which folder holds a project file (``portctl.toml``, a ``Procfile``, or a ``pyproject.toml``
with a ``[tool.portctl]`` table): stats and one bounded read, no TOML parser and no pathlib,
so the entry point can ask before anything else is imported, and `status`, `port` and `stop`
on every call. ``project.config`` reads what is found."""
from __future__ import annotations

import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_TABLE = re.compile(rb"^[ \t]*\[[ \t]*tool[ \t]*\.[ \t]*portctl[ \t]*[\].]", re.MULTILINE)
_MAX_BYTES = 1024 * 1024


def holds_one(folder: str) -> bool:
    """Whether ``folder`` holds a project file."""
    if os.path.isfile(os.path.join(folder, "portctl.toml")) or os.path.isfile(os.path.join(folder, "Procfile")):
        return True
    raw = _read_regular(os.path.join(folder, "pyproject.toml"))
    return raw is not None and _TABLE.search(raw) is not None


def nearest(start: str) -> Optional[str]:
    """The nearest of ``start`` (an absolute path) and its ancestors that holds a project file."""
    here = start
    while True:
        if holds_one(here):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _read_regular(path: str) -> Optional[bytes]:
    """The start of ``path`` if it is a regular file (a project's own file: the run files'
    ownership rules do not apply), opened without blocking: a FIFO in its place is never
    waited on."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        return os.read(fd, _MAX_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None
    finally:
        os.close(fd)
