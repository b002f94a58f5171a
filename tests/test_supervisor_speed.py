"""The supervisor's own costs on the paths the supervision benchmark times (issue 8, "faster
where the supervisor is the cost"): what it burns while its child starts, and what it does
between a child's exit and the next step. Real processes; the limits are far from the
measured values, so a loaded machine does not make them flaky."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

from support.apps import app
from support.portctl import Portctl, finish
from support.ports import unused_port
from support.processes import Popen
from support.waits import wait_file, wait_until
from portctl.platform import current as _platform

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux")
WINDOW_S = 1.0


def test_a_starting_child_costs_the_supervisor_little_cpu(portctl: Portctl, tmp_path: Path) -> None:
    """While the child starts, the supervisor checks readiness every few ms; each look must stay
    cheap. Each reaped adopted orphans with psutil's walk of every process: ~2 ms per look,
    half a core busy for the whole start-up of the child (and of each restarted child)."""
    port, pid_file = unused_port(), tmp_path / "slow.pid"
    proc = portctl.start("--port", port, "--ready-timeout", 30, "--grace", 1, "--",
                         *app("slow", "--pid-file", pid_file, "--life", 30))
    wait_file(pid_file)
    supervisor = psutil.Process(proc.pid)
    before = supervisor.cpu_times()
    time.sleep(WINDOW_S)  # the measured window (no synchronisation): the child is still starting
    after = supervisor.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    assert portctl.record(port).get("state") == "starting"
    assert used < 0.2 * WINDOW_S, f"the supervisor used {used:.3f} s of CPU in {WINDOW_S} s"
    code, _, err = finish(proc)
    assert code == 0, err


@linux_only
@pytest.mark.linux_refined
def test_reaping_adopted_children_does_not_walk_every_process(
        spawn: Callable[..., Popen], monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux the supervisor's children come from /proc/self/task/*/children."""
    child = spawn([sys.executable, "-c", "pass"])
    wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, what="the child to exit")

    def walk(self: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
        raise AssertionError("psutil walked every process to find our children")

    monkeypatch.setattr(psutil.Process, "children", walk)
    _platform.platform.reap_adopted(exclude=-1)
    assert not psutil.pid_exists(child.pid)
    child.wait(timeout=10)  # reaped already: Popen takes ECHILD as exit 0

