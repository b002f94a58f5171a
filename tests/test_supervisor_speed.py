"""The supervisor's own costs on the paths the supervision benchmark times (issue 8, "faster
where the supervisor is the cost"): what it burns while its child starts, and what it does
between a child's exit and the next step. Real processes; the limits are far from the
measured values, so a loaded machine does not make them flaky."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
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
from portctl.core.events import read_events
from portctl.core.runfiles import RunDir
from portctl.core.spec import ServerSpec
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



# --------------------------------------------------------------------------- a crash's restart

def test_a_crash_restart_tells_its_events_in_order_each_with_its_child(portctl: Portctl) -> None:
    """The events of a crash (exited, restarting) are written once the new child has forked,
    off the path from the crash to serving again; each still names the child it is about."""
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--restart", "on-failure", "--",
                         *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    first = portctl.record(port)
    os.kill(first["child"]["pid"], signal.SIGKILL)

    def restarted() -> int:
        record = portctl.record(port)
        child = int((record.get("child") or {}).get("pid", 0))
        return child if record.get("state") == "running" and child != first["child"]["pid"] else 0

    child = wait_until(restarted, what="the restarted child serving")
    after = [(e["event"], e.get("child_pid"), e.get("code")) for e in read_events(portctl.run_dir)]
    after = after[[kind for kind, _, _ in after].index("exited"):]
    assert after[:3] == [("exited", first["child"]["pid"], 137), ("restarting", None, None),
                         ("started", child, None)]
    assert after[3][:2] == ("ready", child)
    log = Path(first["log"]).read_text()
    assert log.index("exited code=137") < log.index("restarting") < log.rindex("started")
    assert portctl.run("stop", "--port", port).returncode == 0


# --------------------------------------------------------------------------- the run files on the way out

def test_set_aside_hides_the_files_until_discarded(tmp_path: Path) -> None:
    """A supervisor on its way out renames its pid file and record (cheap) while it holds the
    lock, and deletes them (up to milliseconds on ext4) once a `stop` no longer waits for it."""
    run_dir = RunDir(tmp_path)
    run_dir.write_pid(8123, 4242)
    run_dir.pid_file(8123).with_name(".server_8123.pid.gone").write_text("an older one\n")
    (tmp_path / ".server_8123.json").write_text("{}\n")
    aside = run_dir.set_aside(8123)
    assert sorted(p.name for p in aside) == [".server_8123.json.gone", ".server_8123.pid.gone"]
    assert not run_dir.pid_file(8123).exists() and not run_dir.record_file(8123).exists()
    assert run_dir.ports() == [] and run_dir.read_pid(8123) is None
    assert aside[0].read_text() == "4242\n"
    run_dir.discard(aside)
    run_dir.discard(aside)  # gone already (a later supervisor's discard): fine
    assert list(tmp_path.iterdir()) == []


def test_set_aside_removes_at_once_what_it_cannot_rename(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.write_pid(8123, 4242)
    (tmp_path / ".server_8123.pid.gone").mkdir()  # planted in the way
    assert run_dir.set_aside(8123) == []
    assert not run_dir.pid_file(8123).exists()
    assert [p.name for p in tmp_path.iterdir()] == [".server_8123.pid.gone"]


def test_a_stopped_instance_leaves_nothing_aside(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--", *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    assert portctl.run("stop", "--port", port).returncode == 0
    assert portctl.nothing_left(port)
    wait_until(lambda: not list(portctl.run_dir.glob("*.gone")), what="the set-aside files to be deleted")


@pytest.mark.parametrize("command", ["clean", "start"])
def test_files_left_aside_by_a_killed_supervisor_are_removed(portctl: Portctl, command: str) -> None:
    """A supervisor killed between ``set_aside`` and ``discard`` leaves the pair renamed aside:
    `clean`, and a `start` on that port, remove them with the other stale files."""
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--", *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    supervisor = psutil.Process(portctl.record(port)["supervisor"]["pid"])
    supervisor.kill()
    supervisor.wait(timeout=30)
    run_dir = RunDir(portctl.run_dir)
    for path in (run_dir.pid_file(port), run_dir.record_file(port)):  # as the killed one left them
        path.rename(path.with_name(f"{path.name}.gone"))
    if command == "clean":
        assert portctl.run("clean").returncode == 0
    else:
        result = portctl.run("start", "-d", "--port", port, "--", *app("listener", "{port}", "--life", 60))
        assert result.returncode == 0, result.stderr
        assert portctl.run("stop", "--port", port).returncode == 0
    assert not list(portctl.run_dir.glob("*.gone"))



# --------------------------------------------------------------------------- the detached supervisor's exit

@linux_only
def test_a_detached_supervisor_exits_without_the_interpreters_teardown(spawn: Callable[..., Popen],
                                                                      tmp_path: Path) -> None:
    """Its answer given and its lock released, the daemon exits at once: unloading psutil and
    the rest took ~20 ms of CPU, just when the `stop` that waited for it finishes."""
    spec = ServerSpec(port=unused_port(), command=(sys.executable, "-c", "raise SystemExit(3)"), detached=True)
    lags = []
    for _ in range(3):
        daemon = spawn([sys.executable, "-m", "portctl.core.daemon", str(tmp_path)], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert daemon.stdin is not None and daemon.stdout is not None
        exited = os.pidfd_open(daemon.pid)
        daemon.stdin.write(json.dumps(spec.to_dict(with_env=True)).encode())
        daemon.stdin.close()
        answer = json.loads(daemon.stdout.readline())
        answered = time.monotonic()
        select.select([exited], [], [], 30)
        lags.append(time.monotonic() - answered)
        os.close(exited)
        assert daemon.wait(timeout=30) == answer["code"] == 3
    assert min(lags) < 0.010, lags


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_supervisors_way_to_its_child_imports_no_idna_tempfile_or_random(tmp_path: Path, host: str) -> None:
    """Resolving the host, checking the port, writing run files and planning a restart load
    none of the three (~2-5 ms each): a fork server would load them for every forked
    supervisor, and a daemon on its way to the child. An ASCII host goes to the resolver as
    bytes, atomic writes make their own temporary file, the jitter comes from os.urandom."""
    port = unused_port()
    code = f"""
import sys
from pathlib import Path
from portctl.base.atomic import write_atomic
from portctl.core import backoff, ports
from portctl.platform.current import platform
ports.resolve_host({host!r})
ports.accepts({host!r}, {port}, 0.5)
ports.refuses({host!r}, {port}, 0.5)
platform.can_bind({host!r}, {port})
write_atomic(Path({str(tmp_path / "record.json")!r}), "{{}}")
backoff.RestartTracker(backoff.BackoffPolicy()).next_delay(100.0, 0.5)
print(sorted(m for m in ("encodings.idna", "tempfile", "random") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "record.json").read_text() == "{}"


def test_an_atomic_writes_temporary_file_is_new_private_and_beside_its_target(tmp_path: Path) -> None:
    from portctl.base.atomic import create_beside

    target = tmp_path / "record.json"
    names = set()
    for _ in range(3):
        fd, name = create_beside(target)
        os.close(fd)
        assert name.parent == tmp_path and name.name.startswith("record.json.") and name.suffix == ".tmp"
        assert os.stat(name).st_mode & 0o777 == 0o600
        names.add(name)
    assert len(names) == 3  # unguessable: a new name each time
    assert not target.exists()
