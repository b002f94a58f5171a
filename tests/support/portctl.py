"""``Portctl``: the real CLI (``python -m portctl``) against one run dir, started through the
test's tracker, with readers for the run files it writes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

from support.processes import Popen
from support.waits import HANG_GUARD_S, accepts, lock_held, wait_until


def finish(proc: Popen, sig: int = signal.SIGINT, timeout: float = HANG_GUARD_S) -> tuple[int, str, str]:
    """Send ``sig`` (0: none) to a foreground portctl and collect (code, stdout, stderr)."""
    if sig and proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out or "", err or ""


class Portctl:
    """Runs the real CLI (``python -m portctl``) against one run dir, through the tracker."""

    def __init__(self, run_dir: Path, spawn: Callable[..., Popen]) -> None:
        self.run_dir = run_dir
        self._spawn = spawn

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "portctl", "--run-dir", str(self.run_dir), *map(str, args)]

    def run(self, *args: object, env: Optional[dict[str, str]] = None,
            timeout: float = 60) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """Run one portctl command to completion: (args, returncode, stdout, stderr)."""
        proc = self._spawn(self.argv(*map(str, args)), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"portctl {' '.join(map(str, args))} hung; stdout={out!r} stderr={err!r}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def launch(self, *args: object, env: Optional[dict[str, str]] = None) -> Popen:
        """Any portctl command, in the background of the test (stdout/stderr piped)."""
        return self._spawn(self.argv(*map(str, args)), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start(self, *args: object, env: Optional[dict[str, str]] = None) -> Popen:
        """A foreground ``start`` in the background of the test (stdout/stderr piped)."""
        return self.launch("start", *args, env=env)

    def serve(self, port: int, *args: object, env: Optional[dict[str, str]] = None,
              host: str = "127.0.0.1", timeout: float = HANG_GUARD_S) -> Popen:
        """``start --port PORT ARGS...`` and wait until the port accepts, the pid file names it
        and the record says it serves."""
        proc = self.start("--port", port, *args, env=env)

        def up() -> bool:
            if proc.poll() is not None:
                return True
            return accepts(port, host) and self.read_pid(port) == proc.pid \
                and self.record(port).get("state") == "running"

        wait_until(up, timeout, f"portctl to serve port {port}")
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"portctl start exited {proc.returncode}: stdout={out!r} stderr={err!r}")
        return proc

    def pid_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.pid"

    def record_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.json"

    def lock_file(self, port: int) -> Path:
        return self.run_dir / f".server_{port}.lock"

    def read_pid(self, port: int) -> Optional[int]:
        try:
            return int(self.pid_file(port).read_text())
        except (OSError, ValueError):
            return None

    def record(self, port: int) -> dict[str, Any]:
        """The run record, or {} when it is missing or being replaced."""
        try:
            data = json.loads(self.record_file(port).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def lock_held(self, port: int) -> bool:
        return lock_held(self.lock_file(port))

    def nothing_left(self, port: int) -> bool:
        """No pid file, no record, lock not held (the lock FILE may stay, by design)."""
        return not self.pid_file(port).exists() and not self.record_file(port).exists() \
            and not self.lock_held(port)


# ------------------------------------------------------------- a listeners' project, from its root
def write_listeners_project(root: Path, ports: list[int], *, chained: bool = False) -> None:
    """``root/portctl.toml``: services s0, s1, … each a listener on its fixed port; ``chained``:
    s1 depends on s0 being ready."""
    from support.apps import app

    lines = []
    for i, port in enumerate(ports):
        lines += [f"[services.s{i}]", f"command = {json.dumps(app('listener', '{port}'))}", f"port = {port}", ""]
    if chained:
        lines += ['[services.s1.depends_on]', 's0 = "ready"', ""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "portctl.toml").write_text("\n".join(lines))


PROJECT_COMMAND_S = 90.0  # a project's start or stop: several services, each with its own deadlines


def _in_project_env() -> dict[str, str]:
    """Ours without PORTCTL_RUN_DIR: the run dir is found from the current directory."""
    return {k: v for k, v in os.environ.items() if k != "PORTCTL_RUN_DIR"}


def run_in(spawn: Callable[..., Popen], root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m portctl ARGS`` run in ``root`` (its run dir found from there)."""
    proc = spawn([sys.executable, "-m", "portctl", *args], cwd=root, env=_in_project_env(),
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=PROJECT_COMMAND_S)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class EntryRun(NamedTuple):
    """What ``run_entry`` saw: the command's outcome, the modules it had loaded at exit and
    every file it opened with ``open``, in order."""

    result: subprocess.CompletedProcess[str]
    modules: set[str]
    opened: list[str]


_ENTRY_SPY = """import atexit, builtins, sys
opened = []
real = builtins.open
def spy(file, *a, **k):
    opened.append(str(file))
    return real(file, *a, **k)
builtins.open = spy
atexit.register(lambda: sys.stderr.write("MODULES " + " ".join(sys.modules) + "\\n"
                                         + "OPENED " + " ".join(opened) + "\\n"))
from portctl.face.entry import main
sys.argv = ["portctl", *sys.argv[1:]]
main()
"""


def run_entry(spawn: Callable[..., Popen], root: Path, *args: str) -> EntryRun:
    """The console entry point with ARGS, run in ``root`` in a fresh interpreter that reports
    what it loaded and opened (on stderr, at exit; taken out of the result's stderr)."""
    proc = spawn([sys.executable, "-c", _ENTRY_SPY, *args], cwd=root, env=_in_project_env(),
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=PROJECT_COMMAND_S)
    reports = {ln.split(" ", 1)[0]: ln.split()[1:] for ln in err.splitlines() if ln.startswith(("MODULES ", "OPENED "))}
    assert set(reports) == {"MODULES", "OPENED"}, err
    rest = "".join(ln + "\n" for ln in err.splitlines() if not ln.startswith(("MODULES ", "OPENED ")))
    return EntryRun(subprocess.CompletedProcess(proc.args, proc.returncode, out, rest),
                    set(reports["MODULES"]), reports["OPENED"])
