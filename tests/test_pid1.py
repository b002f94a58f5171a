"""portctl as a container's PID 1 (issue 12): in a PID namespace of its own
(``unshare --pid --fork --mount-proc``), `portctl start` in the foreground must take SIGTERM
(PID 1 has no default signal actions), reap the zombies of the orphans it adopts while it
runs, stop the whole tree (one grandchild ignores SIGTERM, in its own session) within the
grace period, and exit with the child's code when the child exits on its own.

Root only (a PID namespace needs CAP_SYS_ADMIN); skipped elsewhere, with the reason.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

from support.apps import APPS
from support.ports import free_ports
from support.processes import is_gone
from support.waits import HANG_GUARD_S, wait_file, wait_port_accepting, wait_until

UNSHARE = shutil.which("unshare")
GRACE_S = 2.0

pytestmark = [
    pytest.mark.linux_refined,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PID namespaces are Linux's"),
    pytest.mark.skipif(UNSHARE is None, reason="unshare (util-linux) is not installed"),
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="a PID namespace needs root"),
]


def in_namespace(spawn: Callable[..., subprocess.Popen], run_dir: Path, port: int, work: Path,
                 *app_args: str) -> subprocess.Popen:
    """``unshare`` running ``python -m portctl start`` as its PID namespace's init."""
    argv = [UNSHARE, "--pid", "--fork", "--mount-proc", sys.executable, "-m", "portctl",
            "--run-dir", str(run_dir), "start", "--port", str(port), "--grace", str(GRACE_S),
            "--", sys.executable, str(APPS / "zombies.py"), "{port}", str(work), *app_args]
    probe = spawn([UNSHARE, "--pid", "--fork", "--mount-proc", "true"], stdout=subprocess.DEVNULL,
                  stderr=subprocess.PIPE, text=True)
    _, err = probe.communicate(timeout=HANG_GUARD_S)
    if probe.returncode != 0:  # a container without CAP_SYS_ADMIN, a seccomp filter
        pytest.skip(f"no PID namespace here: {err.strip()}")
    return spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def namespace_init(unshare: subprocess.Popen) -> psutil.Process:
    """The namespace's PID 1 (unshare's only child), as this namespace sees it."""
    return wait_until(lambda: (psutil.Process(unshare.pid).children() or [None])[0],
                      what="unshare to fork the namespace's init")


def zombies_under(proc: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in proc.children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_pid1_reaps_forwards_sigterm_and_stops_the_whole_tree_within_the_grace(
        spawn: Callable[..., subprocess.Popen], tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    run_dir.mkdir()
    work.mkdir()
    port = free_ports(1)[0]
    unshare = in_namespace(spawn, run_dir, port, work)
    init = namespace_init(unshare)
    wait_port_accepting(port)
    wait_file(work / "pids")
    tree = [init, *init.children(recursive=True)]
    record = (run_dir / f".server_{port}.json").read_text()
    assert '"pid": 1,' in record.replace('"pid": 1}', '"pid": 1,')  # portctl is the namespace's PID 1
    # the adopted orphans exited: PID 1 reaps them while it runs, not only when it stops
    wait_until(lambda: not zombies_under(init), timeout=10.0, what="PID 1 to reap the orphans' zombies")
    sent = time.monotonic()
    init.send_signal(signal.SIGTERM)
    out, err = unshare.communicate(timeout=HANG_GUARD_S)
    elapsed = time.monotonic() - sent
    assert unshare.returncode == 0, (out, err)  # a stop on request is a clean stop
    assert all(is_gone(p) for p in tree), [p for p in tree if not is_gone(p)]
    # the stubborn grandchild ignores TERM: KILLed at the end of the grace, not at its life's end
    assert elapsed < GRACE_S + 8.0, elapsed
    assert not (run_dir / f".server_{port}.pid").exists()


def test_pid1_exits_with_the_childs_code(spawn: Callable[..., subprocess.Popen], tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    run_dir.mkdir()
    work.mkdir()
    port = free_ports(1)[0]
    unshare = in_namespace(spawn, run_dir, port, work, "--orphans", "1", "--exit-with", "3")
    init = namespace_init(unshare)
    tree = [init]
    out, err = unshare.communicate(timeout=HANG_GUARD_S)
    assert unshare.returncode == 3, (out, err)
    assert all(is_gone(p) for p in tree)
