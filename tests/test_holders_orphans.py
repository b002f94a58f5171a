"""Every holder, every orphan, and instances of other run dirs (issue 8, items 1, 2 and 6).

Real processes throughout: a master forking workers that share its listening socket
(tests/apps/workers.py), portctl supervisors SIGKILLed so their descendants are orphaned,
and two run dirs. Processes that outlive their parent are no longer in the tracker's trees:
``strays`` kills them (after checking this test's marker) whatever the outcome.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pytest

from support.apps import app
from support.portctl import Portctl
from support.ports import unused_port
from support.processes import TEST_MARKER, is_gone, reap
from support.waits import accepts, wait_file, wait_port_accepting, wait_port_refusing, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process trees")

PRODUCTION = {"ENVIRONMENT": "production"}


@pytest.fixture
def strays() -> Iterator[list[int]]:
    """Pids a test expects portctl to stop; whatever is left of them is killed at teardown."""
    pids: list[int] = []
    yield pids
    mine = os.environ.get(TEST_MARKER)
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.environ().get(TEST_MARKER) == mine:
                procs.append(proc)
        except psutil.Error:
            pass
    reap(procs)


def read_pids(path: Path) -> list[int]:
    return [int(word) for word in wait_file(path).read_text().split()]


def ss_pids(port: int) -> set[int]:
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+),", out)}


def who_pids(portctl: Portctl, port: int) -> set[int]:
    result = portctl.run("who", port, "--json")
    assert result.returncode == 0, result.stderr
    return {holder["pid"] for holder in json.loads(result.stdout)}


def all_gone(pids: list[int]) -> bool:
    return all(is_gone(pid) for pid in pids)


def carrying(token: str) -> list[int]:
    """Live processes whose environment carries PORTCTL_TOKEN=token."""
    found = []
    for proc in psutil.process_iter(["environ"], ad_value=None):
        if (proc.info["environ"] or {}).get("PORTCTL_TOKEN") == token and not is_gone(proc):
            found.append(proc.pid)
    return found


def orphaned_workers(spawn: Callable[..., subprocess.Popen], strays: list[int], port: int,
                     pidfile: Path, count: int = 3) -> list[int]:
    """A master that forks ``count`` workers on ``port`` and exits: siblings reparented away."""
    master = spawn(app("workers", port, count, pidfile, "--master-exits", "--life", 60))
    workers = read_pids(pidfile)
    strays.extend(workers)
    master.wait(timeout=30)
    wait_port_accepting(port)
    return workers


# --------------------------------------------------------------------------- every holder

def test_who_lists_every_worker_of_a_dead_master(portctl: Portctl, spawn, strays, tmp_path: Path) -> None:
    port = unused_port()
    workers = orphaned_workers(spawn, strays, port, tmp_path / "workers")
    assert who_pids(portctl, port) == set(workers)
    if shutil.which("ss"):
        assert ss_pids(port) == set(workers)
    import portctl as library
    from portctl import _psutil_net

    assert {pid for pid, _, _ in _psutil_net.listeners(port)} == set(workers)  # the portable path
    assert {h.pid for h in library.port_holders(port)} == set(workers)


def test_ensure_port_available_frees_every_worker(spawn, strays, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import portctl as library

    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.delenv("PORTCTL_ENV", raising=False)
    monkeypatch.setenv("PORTCTL_RUN_DIR", str(tmp_path))
    port = unused_port()
    workers = orphaned_workers(spawn, strays, port, tmp_path / "workers")
    assert library.ensure_port_available(port, grace_s=2)
    assert all_gone(workers) and not accepts(port)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the /proc/net fallback is Linux's")
def test_procfs_fallback_maps_every_holder(spawn, strays, tmp_path: Path) -> None:
    from portctl import _linux_net

    port = unused_port()
    workers = orphaned_workers(spawn, strays, port, tmp_path / "workers")
    sockets = _linux_net._listening_sockets_procfs(port)
    assert sockets == _linux_net.listening_sockets(port)
    owners = _linux_net.pids_for_inodes({s.inode for s in sockets})
    assert sorted(pid for pids in owners.values() for pid in pids) == sorted(workers)


def test_free_stops_every_worker_in_one_call(portctl: Portctl, spawn, strays, tmp_path: Path) -> None:
    port = unused_port()
    workers = orphaned_workers(spawn, strays, port, tmp_path / "workers")
    result = portctl.run("free", port, "--grace", 2)
    assert result.returncode == 0, result.stderr
    assert all_gone(workers)
    assert not accepts(port)


def test_start_force_evicts_every_worker(portctl: Portctl, spawn, strays, tmp_path: Path) -> None:
    port = unused_port()
    workers = orphaned_workers(spawn, strays, port, tmp_path / "workers")
    result = portctl.run("start", "-d", "--force", "--grace", 2, "--port", port, "--",
                         *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    assert all_gone(workers)
    assert portctl.run("stop", "--port", port).returncode == 0


# --------------------------------------------------------------------------- every orphan

def start_workers_instance(portctl: Portctl, port: int, tmp_path: Path, *extra: object) -> dict:
    """``start -d`` a master with 2 workers (and whatever ``extra`` adds); its record once ready."""
    result = portctl.run("start", "-d", "--grace", 2, "--port", port, "--",
                         *app("workers", "{port}", 2, tmp_path / "workers", "--life", 60, *extra))
    assert result.returncode == 0, result.stderr
    return portctl.record(port)


def kill_supervisor(portctl: Portctl, port: int, record: dict, strays: list[int]) -> None:
    """SIGKILL the supervisor; its child dies with it (PDEATHSIG), the rest is orphaned."""
    strays.extend(carrying(record["token"]))
    os.kill(record["supervisor"]["pid"], signal.SIGKILL)
    wait_until(lambda: is_gone(record["supervisor"]["pid"]) and is_gone(record["child"]["pid"]),
               what="the supervisor and its child to die")
    wait_until(lambda: not portctl.lock_held(port), what="the lock to be released")


def test_clean_reclaims_every_orphan_carrying_the_token(portctl: Portctl, strays, tmp_path: Path) -> None:
    port = unused_port()
    record = start_workers_instance(portctl, port, tmp_path, "--helper", tmp_path / "helper")
    helper = read_pids(tmp_path / "helper")[0]
    kill_supervisor(portctl, port, record, strays)
    assert helper in carrying(record["token"])  # setsid'd, holds no socket: found by its token
    dry = portctl.run("clean", "--dry-run")
    assert dry.returncode == 0 and f"pid {helper}" in dry.stdout, dry.stdout + dry.stderr
    assert helper in carrying(record["token"])
    result = portctl.run("clean")
    assert result.returncode == 0, result.stderr
    assert carrying(record["token"]) == []
    assert not accepts(port) and not portctl.record_file(port).exists()


def test_start_reclaims_every_orphan_before_it_serves(portctl: Portctl, strays, tmp_path: Path) -> None:
    port = unused_port()
    record = start_workers_instance(portctl, port, tmp_path, "--helper", tmp_path / "helper")
    kill_supervisor(portctl, port, record, strays)
    result = portctl.run("start", "-d", "--port", port, "--", *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    assert carrying(record["token"]) == []
    assert portctl.record(port)["token"] != record["token"]
    assert portctl.run("stop", "--port", port).returncode == 0


def test_clean_spares_a_live_instance_named_by_a_stale_record(portctl: Portctl, tmp_path: Path) -> None:
    live_port, stale_port = unused_port(), unused_port()
    result = portctl.run("start", "-d", "--port", live_port, "--", *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    live = portctl.record(live_port)
    copied = dict(live, port=stale_port)  # another port's record, with the live child and token
    portctl.record_file(stale_port).write_text(json.dumps(copied))
    result = portctl.run("clean")
    assert result.returncode == 0, result.stderr
    assert not is_gone(live["child"]["pid"]) and accepts(live_port)
    assert not portctl.record_file(stale_port).exists()
    assert portctl.record(live_port)["child"] == live["child"]
    assert portctl.run("stop", "--port", live_port).returncode == 0


# --------------------------------------------------------------------------- production

def test_production_frees_workers_of_a_deleted_record(portctl: Portctl, strays, tmp_path: Path) -> None:
    port = unused_port()
    record = start_workers_instance(portctl, port, tmp_path)
    workers = read_pids(tmp_path / "workers")
    kill_supervisor(portctl, port, record, strays)
    for path in (portctl.pid_file(port), portctl.record_file(port)):
        path.unlink()
    assert who_pids(portctl, port) == set(workers)
    result = portctl.run("free", port, "--grace", 2, env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert all_gone(workers) and not accepts(port)


def test_production_start_force_evicts_workers_of_a_deleted_record(portctl: Portctl, strays,
                                                                  tmp_path: Path) -> None:
    port = unused_port()
    record = start_workers_instance(portctl, port, tmp_path)
    workers = read_pids(tmp_path / "workers")
    kill_supervisor(portctl, port, record, strays)
    for path in (portctl.pid_file(port), portctl.record_file(port)):
        path.unlink()
    result = portctl.run("start", "-d", "--force", "--grace", 2, "--port", port, "--",
                         *app("listener", "{port}", "--life", 60), env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert all_gone(workers)
    assert portctl.run("stop", "--port", port).returncode == 0


def test_production_refuses_a_token_of_another_run_dir(portctl: Portctl, strays, tmp_path: Path,
                                                       spawn) -> None:
    """Another run dir's orphan is not ours: production refuses it (exit 5), touching nothing."""
    other = Portctl(tmp_path / "other", spawn)
    other.run_dir.mkdir()
    port = unused_port()
    record = start_workers_instance(other, port, tmp_path)
    kill_supervisor(other, port, record, strays)
    workers = read_pids(tmp_path / "workers")
    result = portctl.run("free", port, "--grace", 2, env=PRODUCTION)
    assert result.returncode == 5, result.stderr
    assert not any(is_gone(pid) for pid in workers)


# --------------------------------------------------------------------------- other run dirs

@pytest.fixture
def other(tmp_path: Path, spawn) -> Portctl:
    path = tmp_path / "other run"
    path.mkdir()
    return Portctl(path, spawn)


def start_listener(runner: Portctl, port: int) -> dict:
    result = runner.run("start", "-d", "--name", "api", "--port", port, "--",
                        *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    return runner.record(port)


def test_stop_names_the_other_run_dir_and_touches_nothing(portctl: Portctl, other: Portctl) -> None:
    port = unused_port()
    record = start_listener(other, port)
    result = portctl.run("stop", "--port", port)
    assert result.returncode == 1
    assert str(other.run_dir) in result.stderr
    assert "--run-dir" in result.stderr and f"stop --port {port}" in result.stderr
    assert other.record(port) == record and other.lock_held(port)
    assert not is_gone(record["child"]["pid"]) and accepts(port)
    assert other.run("stop", "--port", port).returncode == 0


def test_free_stops_another_run_dirs_instance_through_its_supervisor(portctl: Portctl, other: Portctl) -> None:
    port = unused_port()
    record = start_listener(other, port)
    result = portctl.run("free", port, "--grace", 2)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: is_gone(record["supervisor"]["pid"]), what="the other supervisor to exit")
    assert other.nothing_left(port) and not accepts(port)


def test_start_force_stops_another_run_dirs_instance(portctl: Portctl, other: Portctl) -> None:
    port = unused_port()
    record = start_listener(other, port)
    result = portctl.run("start", "-d", "--force", "--port", port, "--",
                         *app("listener", "{port}", "--life", 60))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: is_gone(record["supervisor"]["pid"]), what="the other supervisor to exit")
    assert other.nothing_left(port)
    assert portctl.record(port)["child"]["pid"] in who_pids(portctl, port)
    assert portctl.run("stop", "--port", port).returncode == 0
    wait_port_refusing(port)


# --------------------------------------------------------------------------- narrowed lookups

def test_listeners_among_some_pids_only(spawn, strays, tmp_path: Path) -> None:
    """``among``: holders looked up among those pids only (readiness: our own tree); ``()``:
    sockets only (is the port busy?). Both routes agree."""
    from portctl import _psutil_net
    from portctl._platform import platform

    port = unused_port()
    workers = orphaned_workers(spawn, strays, port, tmp_path / "workers")
    for route in (platform.listeners, _psutil_net.listeners):
        assert route(port, among=()) == [(None, "127.0.0.1", "IPv4")]
        assert {pid for pid, _, _ in route(port, among=workers[:1] + [os.getpid()])} == {workers[0]}
        assert {pid for pid, _, _ in route(port)} == set(workers)
