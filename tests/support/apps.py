"""The test apps in tests/apps (small servers and children with known behaviour)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APPS = Path(__file__).parent.parent / "apps"


def app(name: str, *args: object) -> list[str]:
    """argv of a test app in tests/apps."""
    return [sys.executable, str(APPS / f"{name}.py"), *map(str, args)]


def untouched(proc: subprocess.Popen) -> bool:  # type: ignore[type-arg]
    """A bystander or listener from the fixtures is alive and was sent no signal (it logs every
    signal it gets to ``proc.signal_log``)."""
    log: Path = proc.signal_log  # type: ignore[attr-defined]
    return proc.poll() is None and log.read_text() == ""
