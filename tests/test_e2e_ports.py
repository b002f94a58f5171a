"""End to end: ports held by others (start, --force, free, policy), `who` and `status`."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from support.apps import APPS, app, untouched
from support.portctl import Portctl, finish
from support.ports import ipv6_loopback_works, listeners, unused_port
from support.processes import is_gone
from support.waits import accepts, wait_file, wait_port_accepting, wait_port_refusing, wait_until

pytestmark = pytest.mark.timeout(60)
PRODUCTION = [{"ENVIRONMENT": "production"}, {"PORTCTL_ENV": "production"}]
TROUBLESHOOTING = re.compile(r"\b(lsof|ss|netstat|fuser)\b")


def health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
        return int(resp.status)


def our_child(portctl: Portctl, port: int) -> int:
    return int(wait_until(lambda: (portctl.record(port).get("child") or {}).get("pid"), what="the child"))


# ----------------------------------------------------------------------------- port in use

def test_port_in_use_exits_4_naming_the_holder_and_leaves_nothing(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port)
    result = portctl.run("start", "--port", port)
    assert result.returncode == 4, result.stderr
    assert str(holder.pid) in result.stderr
    assert "Traceback" not in result.stderr
    assert portctl.nothing_left(port) and untouched(holder)

    holder.kill()
    holder.wait(timeout=30)
    wait_port_refusing(port)
    again = portctl.serve(port)  # the failed start left no lock or pid file behind to trip on
    assert finish(again)[0] == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1"])
def test_a_holder_on_another_address_counts(portctl: Portctl, listener, host: str) -> None:  # type: ignore[no-untyped-def]
    if ":" in host and not ipv6_loopback_works():
        pytest.skip("no IPv6 here")
    port = unused_port()
    holder = listener(port, host=host)
    result = portctl.run("start", "--port", port)
    assert result.returncode == 4, result.stdout + result.stderr
    assert str(holder.pid) in result.stdout + result.stderr
    assert portctl.nothing_left(port) and untouched(holder)


def test_a_port_held_by_an_instance_of_another_run_dir_is_in_use(portctl: Portctl, tmp_path: Path) -> None:
    port = unused_port()
    other = Portctl(tmp_path / "other", portctl._spawn)
    other.run_dir.mkdir()
    theirs = other.serve(port)
    result = portctl.run("start", "--port", port)
    assert result.returncode == 4 and portctl.nothing_left(port)
    assert theirs.poll() is None and accepts(port)
    assert finish(theirs)[0] == 0


def test_force_frees_the_port_and_serves(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port, obey_signals=True)
    proc = portctl.start("--port", port, "--force")
    assert holder.wait(timeout=30) is not None
    wait_until(lambda: proc.poll() is not None or (portctl.read_pid(port) == proc.pid and accepts(port)),
               what="our instance to serve")
    assert proc.poll() is None, proc.communicate()
    assert health(port) == 200
    assert listeners(port) == {our_child(portctl, port)}
    assert finish(proc)[0] == 0 and portctl.nothing_left(port)


@pytest.mark.posix_only
def test_force_kills_a_holder_ignoring_sigterm_and_its_whole_tree(portctl: Portctl, spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, pids_file = unused_port(), tmp_path / "kids"
    holder = spawn(app("tree", port, pids_file, "--share-socket"))  # everything ignores SIGTERM
    kids = [int(p) for p in wait_file(pids_file).read_text().split()]
    proc = portctl.start("--port", port, "--force", "--grace", "1")
    assert holder.wait(timeout=30) == -signal.SIGKILL
    wait_until(lambda: proc.poll() is not None or (portctl.read_pid(port) == proc.pid and accepts(port)),
               what="our instance to serve")
    assert proc.poll() is None, proc.communicate()
    assert all(is_gone(k) for k in kids)
    # psutil maps sockets to pids by a walk of /proc that can miss a process mid-walk: look
    # again rather than fail on one incomplete answer (it must settle on our child alone)
    wait_until(lambda: listeners(port) == {our_child(portctl, port)}, timeout=5,
               what="our child to be the only listener")
    assert finish(proc)[0] == 0


@pytest.mark.parametrize("env", PRODUCTION, ids=lambda e: next(iter(e)))
def test_production_refuses_to_force_a_foreign_holder(portctl: Portctl, listener, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port)
    result = portctl.run("start", "--port", port, "--force", env=env)
    assert result.returncode == 5, result.stdout + result.stderr
    assert TROUBLESHOOTING.search(result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert untouched(holder) and accepts(port) and portctl.nothing_left(port)


# ----------------------------------------------------------------------------- free

@pytest.mark.posix_only
def test_free_stops_a_foreign_holder_in_development(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port, "--ignore-term", obey_signals=True)
    result = portctl.run("free", port, "--grace", "1")
    assert result.returncode == 0, result.stderr
    assert not accepts(port)  # free returns once the port refuses
    assert str(holder.pid) in result.stdout
    assert holder.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.posix_only
def test_free_stops_the_whole_tree_of_a_holder(portctl: Portctl, spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, pids_file = unused_port(), tmp_path / "kids"
    holder = spawn(app("tree", port, pids_file, "--share-socket"))
    kids = [int(p) for p in wait_file(pids_file).read_text().split()]
    result = portctl.run("free", port, "--grace", "1")
    assert result.returncode == 0, result.stderr
    assert not accepts(port)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    wait_until(lambda: all(is_gone(k) for k in kids), timeout=10, what="the holder's tree to be gone")


@pytest.mark.parametrize("env", PRODUCTION, ids=lambda e: next(iter(e)))
def test_free_refuses_a_foreign_holder_in_production(portctl: Portctl, listener, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port)
    result = portctl.run("free", port, env=env)
    assert result.returncode == 5, result.stdout + result.stderr
    assert TROUBLESHOOTING.search(result.stderr), result.stderr
    assert untouched(holder) and accepts(port)


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("runuser")),
                    reason="needs root and runuser to start another user's process")
def test_who_and_free_with_a_holder_of_another_user(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    holder = spawn(["runuser", "-u", "nobody", "--", python, str(APPS / "listener.py"), str(port)])
    wait_port_accepting(port)
    shown = json.loads(portctl.run("who", port, "--json").stdout)
    assert [row["username"] for row in shown] == ["nobody"]
    refused = portctl.run("free", port, env={"ENVIRONMENT": "production"})
    assert refused.returncode == 5 and accepts(port)
    freed = portctl.run("free", port, "--grace", "1")  # root may, in development
    assert freed.returncode == 0, freed.stderr
    assert not accepts(port)
    holder.wait(timeout=30)


def test_free_may_stop_our_own_instance_in_production(portctl: Portctl) -> None:
    """Production only forbids killing what portctl did not start."""
    port = unused_port()
    proc = portctl.serve(port)
    result = portctl.run("free", port, "--grace", "1", env={"ENVIRONMENT": "production"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not accepts(port)
    assert finish(proc, sig=0)[0] == 0 and portctl.nothing_left(port)


# ----------------------------------------------------------------------------- who

def test_who_json_describes_a_holder(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port)
    result = portctl.run("who", port, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and [row["pid"] for row in rows] == [holder.pid]
    row = rows[0]
    assert isinstance(row["name"], str) and row["name"]
    assert row["username"] == psutil.Process().username()
    assert isinstance(row["cmdline"], list) and any(a.endswith("listener.py") for a in row["cmdline"])
    assert "127.0.0.1" in str(row["address"])
    assert untouched(holder)


def test_who_human_output_names_the_holder(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port)
    result = portctl.run("who", port)
    assert result.returncode == 0 and str(holder.pid) in result.stdout


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 here")
def test_who_sees_ipv6_holders(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port, host="::1")
    result = portctl.run("who", port, "--json")
    assert result.returncode == 0
    assert [row["pid"] for row in json.loads(result.stdout)] == [holder.pid]


def test_who_of_a_free_port_exits_1_with_an_empty_list(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("who", port, "--json")
    assert result.returncode == 1 and json.loads(result.stdout) == []
    human = portctl.run("who", port)
    assert human.returncode == 1 and "Traceback" not in human.stderr


def test_who_of_our_instance_names_its_child(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    rows = json.loads(portctl.run("who", port, "--json").stdout)
    assert [row["pid"] for row in rows] == [our_child(portctl, port)]
    assert finish(proc)[0] == 0


# ----------------------------------------------------------------------------- status

def dead_pid(spawn) -> int:  # type: ignore[no-untyped-def]
    proc = spawn([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return int(proc.pid)


@pytest.mark.linux_refined  # a SIGKILLed supervisor's child dies with it on Linux only
def test_status_json_of_running_and_stale_instances(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    live_port, killed_port, pid_only_port = unused_port(), unused_port(), unused_port()
    live = portctl.serve(live_port, "--name", "api")
    killed = portctl.serve(killed_port)
    killed.kill()
    killed.wait(timeout=30)
    gone = dead_pid(spawn)
    portctl.pid_file(pid_only_port).write_text(f"{gone}\n")

    result = portctl.run("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    by_port = {row["port"]: row for row in rows}
    assert set(by_port) == {live_port, killed_port, pid_only_port}
    for row in rows:
        assert {"port", "host", "state", "pid", "child_pid", "started_at", "command"} <= set(row)

    row = by_port[live_port]
    assert row["state"] == "running" and row["pid"] == live.pid and row["host"] == "127.0.0.1"
    assert row["name"] == "api"
    assert row["child_pid"] == our_child(portctl, live_port)
    assert isinstance(row["command"], list) and all(isinstance(a, str) for a in row["command"])
    assert _iso8601(row["started_at"]) and row["started_at"].endswith("+00:00")  # UTC

    row = by_port[killed_port]
    assert row["state"] == "stale" and row["pid"] == killed.pid and isinstance(row["command"], list)
    assert by_port[pid_only_port]["state"] == "stale" and by_port[pid_only_port]["pid"] == gone

    assert portctl.run("status", "--port", live_port).returncode == 0
    assert portctl.run("status", "--port", killed_port).returncode == 3
    assert finish(live)[0] == 0


def _iso8601(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return False
    return True


def test_status_of_a_port_with_nothing_exits_3(portctl: Portctl) -> None:
    port = unused_port()
    assert portctl.run("status", "--port", port).returncode == 3
    as_json = portctl.run("status", "--port", port, "--json")
    assert as_json.returncode == 3 and "Traceback" not in as_json.stderr
    empty = portctl.run("status", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    assert list(portctl.run_dir.iterdir()) == []  # looking creates nothing


def test_status_json_is_plain_json_even_with_color_forced(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    result = portctl.run("status", "--json", env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert [row["port"] for row in json.loads(result.stdout)] == [port]
    assert finish(proc)[0] == 0


def test_status_after_stop_shows_nothing(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    assert portctl.run("stop", "--port", port).returncode == 0
    assert finish(proc, sig=0)[0] == 0
    assert portctl.run("status", "--port", port).returncode == 3
    assert json.loads(portctl.run("status", "--json").stdout) == []


def test_the_environment_variable_names_the_run_dir(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    proc = spawn([sys.executable, "-m", "portctl", "start", "--port", str(port)],
                 env={"PORTCTL_RUN_DIR": str(portctl.run_dir)}, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(portctl.run_dir))
    wait_until(lambda: proc.poll() is not None or (portctl.read_pid(port) == proc.pid and accepts(port)),
               what="the instance to serve")
    assert portctl.pid_file(port).exists()
    assert finish(proc)[0] == 0
