"""The commands scripts call in loops (`who`, `status`, `port`, `--version`) stay light: they
must not load what costs more than Python's own start-up (see docs/benchmarks.md). This checks
what is imported, not how long it takes: timing belongs to benchmarks/who.py."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from support.processes import Popen

# Each is measured at ~0.5-1x `python -c pass` on its own, or belongs to another command.
HEAVY = {"typing", "dataclasses", "inspect", "subprocess", "click", "rich", "psutil", "filelock",
         "asyncio", "uvicorn", "random", "threading"}

_REPORT = ("import atexit, sys\n"
           "atexit.register(lambda: sys.stderr.write('MODULES ' + ' '.join(sys.modules) + '\\n'))\n")


def _modules(spawn: Callable[..., Popen], code: str) -> set[str]:
    proc = spawn([sys.executable, "-c", _REPORT + code], stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    line = [ln for ln in err.splitlines() if ln.startswith("MODULES ")]
    assert line, err
    return set(line[-1].split()[1:])


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("args", [
    ["--version"],
    ["who", "{port}"],
    ["--run-dir", "{run_dir}", "status"],
    ["--run-dir", "{run_dir}", "status", "--port", "8000"],
    ["--run-dir", "{run_dir}", "port", "api"],
    ["--run-dir", "{run_dir}", "url", "api"],
])
def test_script_commands_load_nothing_heavy(args: list[str], spawn: Callable[..., Popen],
                                            run_dir: Path, listening_port: int) -> None:
    argv = [a.format(port=listening_port, run_dir=run_dir) for a in args]
    baseline = _modules(spawn, "")
    loaded = _modules(spawn, f"from portctl._entry import main\nsys.argv = {['portctl', *argv]!r}\nmain()")
    assert "portctl._entry" in loaded
    assert (loaded - baseline) & HEAVY == set()


def test_importing_the_package_loads_nothing_but_itself(spawn: Callable[..., Popen]) -> None:
    baseline = _modules(spawn, "")
    loaded = _modules(spawn, "import portctl")
    assert {m for m in loaded - baseline if m != "__future__"} == {"portctl"}
