"""Atomic file writes: a leaf shared by the run dir (runfiles) and the platform's stop
requests (stoprequest), so the platform modules import nothing from the core."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def write_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Write then rename, so readers see the old file or the new one, never half of one.
    ``durable`` also syncs it to disk first: for the spec, which outlives a reboot. Pid files
    and records need not pay that (~1 ms each, on the restart path): after a crash of the
    machine no process holds their lock, so they are stale whatever they hold."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
