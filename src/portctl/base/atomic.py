"""Atomic file writes: a leaf shared by the run dir (runfiles) and the platform's stop
requests (stoprequest), so the platform modules import nothing from the core."""
from __future__ import annotations

import os

from pathlib import Path


def write_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Write then rename, so readers see the old file or the new one, never half of one.
    ``durable`` also syncs it to disk first: for the spec, which outlives a reboot. Pid files
    and records need not pay that (~1 ms each, on the restart path): after a crash of the
    machine no process holds their lock, so they are stale whatever they hold.
    The temporary file is made by mkstemp (O_EXCL, mode 0600, an unguessable name) beside
    ``path``: nothing planted there can redirect the write; the rename replaces a planted
    symlink itself, never its target."""
    import tempfile  # writers only: `status` never writes

    fd, name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
