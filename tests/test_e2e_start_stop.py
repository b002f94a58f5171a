"""End to end: a foreground `start`, and every way it stops (real processes, real sockets)."""
from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from support.apps import app
from support.portctl import Portctl, finish
from support.ports import listeners, unused_port
from support.processes import is_gone
from support.waits import accepts, wait_file, wait_port_refusing, wait_until

pytestmark = pytest.mark.timeout(60)


def get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.status, resp.read().decode()


def child_pid(portctl: Portctl, port: int) -> int:
    return int(wait_until(lambda: (portctl.record(port).get("child") or {}).get("pid"), what="the child pid"))


def test_demo_round_trip_then_ctrl_c(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    status, body = get(port, "/health")
    assert status == 200
    child = child_pid(portctl, port)
    status, body = get(port, "/")
    assert status == 200 and str(port) in body and str(child) in body

    assert portctl.pid_file(port).read_bytes() == f"{proc.pid}\n".encode()
    assert portctl.lock_held(port)
    record = portctl.record(port)
    assert record["version"] == 1 and record["port"] == port and record["host"] == "127.0.0.1"
    assert record["supervisor"]["pid"] == proc.pid and record["child"]["pid"] == child != proc.pid
    assert isinstance(record["command"], list) and all(isinstance(a, str) for a in record["command"])
    assert isinstance(record["token"], str) and record["token"]
    assert record["state"] == "running" and Path(record["run_dir"]) == portctl.run_dir
    assert child in {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    assert listeners(port) == {child}

    code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, err
    assert f"http://127.0.0.1:{port}" in out and str(proc.pid) in out
    assert "Traceback" not in err
    assert not accepts(port) and portctl.nothing_left(port) and is_gone(child)


def test_the_child_gets_port_host_and_token(portctl: Portctl, tmp_path: Path) -> None:
    port, env_file = unused_port(), tmp_path / "env.json"
    proc = portctl.serve(port, "--", *app("listener", "{port}", "--host", "{host}", "--env-file", env_file))
    seen = json.loads(wait_file(env_file).read_text())
    assert seen["argv"][:3] == [str(port), "--host", "127.0.0.1"]  # {port} and {host} substituted
    assert seen["PORT"] == str(port) and seen["HOST"] == "127.0.0.1"
    assert seen["PORTCTL_TOKEN"] and seen["PORTCTL_TOKEN"] == portctl.record(port)["token"]
    assert finish(proc)[0] == 0


@pytest.mark.posix_only
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_kill_of_the_pid_file_is_a_graceful_stop(portctl: Portctl, name: str) -> None:
    sig = getattr(signal, name)  # not at import: Windows has no SIGHUP
    port = unused_port()
    proc = portctl.serve(port)
    child = child_pid(portctl, port)
    os.kill(int(portctl.pid_file(port).read_text()), sig)  # kill -TERM $(cat .server_P.pid)
    code, _, err = finish(proc, sig=0)
    assert code == 0, err
    assert not accepts(port) and portctl.nothing_left(port) and is_gone(child)


def test_stop_twice(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    child = child_pid(portctl, port)
    first = portctl.run("stop", "--port", port)
    assert first.returncode == 0, first.stderr
    # stop returns once the lock is released and the port refuses: no waiting here.
    assert not accepts(port) and not portctl.lock_held(port)
    assert finish(proc, sig=0)[0] == 0
    assert portctl.nothing_left(port) and is_gone(child)
    second = portctl.run("stop", "--port", port)
    assert second.returncode == 0, second.stderr
    assert "nothing running" in second.stdout and "Traceback" not in second.stderr


def test_stop_of_a_port_never_used_is_success(portctl: Portctl) -> None:
    result = portctl.run("stop", "--port", unused_port())
    assert result.returncode == 0 and "Traceback" not in result.stderr


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--grace", "1", "--", *app("listener", "{port}", "--ignore-term"))
    child = child_pid(portctl, port)
    result = portctl.run("stop", "--port", port)
    assert result.returncode == 0, result.stderr
    assert not accepts(port) and is_gone(child)
    assert finish(proc, sig=0)[0] == 0 and portctl.nothing_left(port)


def test_ctrl_c_with_a_child_ignoring_sigterm(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--grace", "1", "--", *app("listener", "{port}", "--ignore-term"))
    child = child_pid(portctl, port)
    code, _, err = finish(proc, signal.SIGINT)
    assert code == 0, err
    assert is_gone(child) and not accepts(port) and portctl.nothing_left(port)


@pytest.mark.posix_only
@pytest.mark.parametrize("stopper", ["stop", "sigterm"])
def test_grandchildren_in_a_new_session_leave_no_survivor(portctl: Portctl, tmp_path: Path, stopper: str) -> None:
    port, pids_file = unused_port(), tmp_path / "kids"
    # The grandchildren ignore SIGTERM and share the listening socket: while any of them lives,
    # the port accepts. One of them is in a session of its own, out of reach of the group.
    proc = portctl.serve(port, "--grace", "1", "--",
                         *app("tree", "{port}", pids_file, "--share-socket"))
    kids = [int(p) for p in wait_file(pids_file).read_text().split()]
    tree = [child_pid(portctl, port), *kids]
    assert os.getsid(kids[1]) == kids[1] != os.getsid(kids[0])
    assert not any(is_gone(p) for p in tree)
    if stopper == "stop":
        result = portctl.run("stop", "--port", port)
        assert result.returncode == 0, result.stderr
        assert not accepts(port)
        code = finish(proc, sig=0)[0]
    else:
        code = finish(proc, signal.SIGTERM)[0]
    assert code == 0
    assert not accepts(port) and portctl.nothing_left(port)
    wait_until(lambda: all(is_gone(p) for p in tree), timeout=10, what="every grandchild to be gone")
    assert listeners(port) == set()


@pytest.mark.linux_refined  # the child dies with its parent on Linux
def test_sigkill_of_the_supervisor_frees_the_port_and_the_next_start_reclaims(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    child = child_pid(portctl, port)
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    wait_port_refusing(port, timeout=10)
    wait_until(lambda: is_gone(child), timeout=10, what="the orphaned child to die")
    assert not portctl.lock_held(port)  # the kernel dropped the lock with its holder
    stale = json.loads(portctl.run("status", "--json").stdout)
    assert [(row["port"], row["state"]) for row in stale] == [(port, "stale")]

    again = portctl.serve(port)
    assert portctl.pid_file(port).read_text() == f"{again.pid}\n"
    assert portctl.record(port)["supervisor"]["pid"] == again.pid
    code, _, err = finish(again)
    assert code == 0 and portctl.nothing_left(port)


def test_restart_of_a_foreground_instance_takes_over_in_the_foreground(portctl: Portctl) -> None:
    """README: restart starts again with the recorded command and options, detached only if it
    was; a foreground instance comes back in the foreground of `restart`."""
    port = unused_port()
    proc = portctl.serve(port, "--name", "one", "--", *app("listener", "{port}"))
    first_child = child_pid(portctl, port)
    restarted = portctl.launch("restart", "--port", port)
    assert finish(proc, sig=0)[0] == 0  # the first supervisor was stopped gracefully

    def serving_again() -> bool:
        return restarted.poll() is not None or (
            portctl.read_pid(port) == restarted.pid
            and (portctl.record(port).get("child") or {}).get("pid") not in (None, first_child)
            and accepts(port))

    wait_until(serving_again, what="the restarted instance to serve")
    assert restarted.poll() is None, restarted.communicate()
    record = portctl.record(port)
    assert record["name"] == "one" and "listener.py" in " ".join(record["command"])
    assert is_gone(first_child)
    assert portctl.run("stop", "--port", port).returncode == 0
    assert finish(restarted, sig=0)[0] == 0
    assert not accepts(port) and portctl.nothing_left(port)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_storm_of_stop_signals_still_stops_cleanly(portctl: Portctl, sig: signal.Signals) -> None:
    """Ctrl+C held down: every signal after the first only hurries the stop along."""
    import time

    port = unused_port()
    proc = portctl.serve(port, "--grace", "1", "--", *app("listener", "{port}"))
    child = child_pid(portctl, port)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            break
        time.sleep(0.002)  # the storm's rate, not a synchronisation
    code, _, err = finish(proc, sig=0)
    assert "Traceback" not in err
    assert not accepts(port) and is_gone(child)
    assert portctl.nothing_left(port), sorted(p.name for p in portctl.run_dir.iterdir())
    assert code == 0, err


def test_a_second_ctrl_c_skips_the_grace_period(portctl: Portctl) -> None:
    port = unused_port()
    # a grace period longer than the hang guard: only the second signal can end this in time
    proc = portctl.serve(port, "--grace", "120", "--", *app("listener", "{port}", "--ignore-term"))
    child = child_pid(portctl, port)
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: portctl.record(port).get("state") == "stopping", what="the stop to begin")
    code, _, err = finish(proc, signal.SIGINT, timeout=20)
    assert code == 0, err
    assert not accepts(port) and is_gone(child) and portctl.nothing_left(port)


@pytest.mark.parametrize("mode", [["--workers", "2"], ["--reload"]], ids=["workers", "reload"])
def test_uvicorn_workers_and_reloader_leave_no_survivor(portctl: Portctl, tmp_path: Path, mode: list[str]) -> None:
    """Real uvicorn: the master (or the reloader) and its workers all hold the port."""
    port = unused_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "portctl.demo:app", "--port", "{port}", *mode]
    if "--reload" in mode:
        uvicorn += ["--reload-dir", str(tmp_path)]
    proc = portctl.serve(port, "--", *uvicorn)

    def holding() -> list[int]:  # every process of the tree with the listening socket
        found = []
        for p in psutil.Process(proc.pid).children(recursive=True):
            try:
                if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in p.net_connections("tcp")):
                    found.append(p.pid)
            except psutil.Error:
                pass
        return found

    wait_until(lambda: len(holding()) >= 2, what="uvicorn's workers")
    tree = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
    assert len(tree) >= 3
    result = portctl.run("stop", "--port", port)
    assert result.returncode == 0, result.stderr
    assert finish(proc, sig=0)[0] == 0
    assert listeners(port) == set() and not accepts(port) and portctl.nothing_left(port)
    assert all(is_gone(p) for p in tree)  # a zombie counts as gone
