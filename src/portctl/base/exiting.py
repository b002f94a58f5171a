"""``leave``: exit without the interpreter's teardown, for processes whose last moments are on
someone's clock (a fast command ending, a supervisor the `stop` waits for)."""
from __future__ import annotations

import os
import sys


def leave(code: int) -> None:
    """Run the atexit handlers (logging's flush among them) and flush stdout and stderr, then
    exit at once: unloading psutil and the rest costs 10–20 ms of CPU, and nothing of ours
    needs it (no buffered file of ours stays open)."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the exit code still tells
            pass
    os._exit(code)
