"""End to end: the foreground supervisor, stop, status, clean, free — real processes and sockets."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from support.apps import APPS, app
from support.portctl import Portctl, finish
from support.ports import unused_port
from support.processes import is_gone
from support.waits import accepts, wait_file, wait_port_accepting, wait_port_refusing, wait_until

pytestmark = pytest.mark.timeout(90)


def started(portctl: Portctl, port: int, *args: str) -> subprocess.Popen:  # type: ignore[type-arg]
    proc = portctl.start("--port", str(port), *args)
    wait_until(lambda: accepts(port) or proc.poll() is not None, what=f"port {port} to serve")
    assert proc.poll() is None, proc.communicate()
    wait_until(lambda: portctl.pid_file(port).exists(), what="the pid file")
    return proc


def no_files_left(portctl: Portctl, port: int) -> bool:
    return not portctl.pid_file(port).exists() and not portctl.record_file(port).exists() \
        and not portctl.lock_held(port)


def bystander(spawn) -> subprocess.Popen:  # type: ignore[no-untyped-def,type-arg]
    return spawn(app("silent", 60))


def test_demo_round_trip_and_ctrl_c(portctl: Portctl) -> None:
    port = unused_port()
    proc = started(portctl, port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        assert str(port) in resp.read().decode()
    assert portctl.pid_file(port).read_text() == f"{proc.pid}\n"
    record = json.loads(portctl.record_file(port).read_text())
    assert record["supervisor"]["pid"] == proc.pid and record["child"]["pid"] != proc.pid
    code, out, _ = finish(proc, signal.SIGINT)
    assert code == 0 and f"http://127.0.0.1:{port}" in out
    assert not accepts(port) and no_files_left(portctl, port)


def test_kill_of_pid_file_is_a_graceful_stop(portctl: Portctl) -> None:
    port = unused_port()
    proc = started(portctl, port)
    os.kill(int(portctl.pid_file(port).read_text()), signal.SIGTERM)
    code, _, _ = finish(proc, sig=0)
    assert code == 0 and not accepts(port) and no_files_left(portctl, port)


def test_stop_twice(portctl: Portctl) -> None:
    port = unused_port()
    proc = started(portctl, port)
    first = portctl.run("stop", "--port", str(port))
    assert first.returncode == 0 and not accepts(port)
    assert finish(proc, sig=0)[0] == 0
    second = portctl.run("stop", "--port", str(port))
    assert second.returncode == 0 and "nothing running" in second.stdout


def test_stale_pid_file_naming_a_live_bystander(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port, other = unused_port(), bystander(spawn)
    portctl.pid_file(port).write_text(f"{other.pid}\n")
    proc = started(portctl, port)
    assert psutil.Process(other.pid).is_running() and other.poll() is None
    assert portctl.pid_file(port).read_text() == f"{proc.pid}\n"
    _, _, err = finish(proc)
    assert "stale" in err and other.poll() is None


def test_stop_with_a_stale_pid_file_signals_nothing(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port, other = unused_port(), bystander(spawn)
    portctl.pid_file(port).write_text(f"{other.pid}\n")
    result = portctl.run("stop", "--port", str(port))
    assert result.returncode == 0 and other.poll() is None
    assert not portctl.pid_file(port).exists()


def test_tampered_pid_file_cannot_aim_stop_at_a_bystander(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port, other = unused_port(), bystander(spawn)
    proc = started(portctl, port)
    portctl.pid_file(port).write_text(f"{other.pid}\n")
    result = portctl.run("stop", "--port", str(port))
    assert result.returncode == 1
    assert str(other.pid) in result.stderr and str(proc.pid) in result.stderr
    assert other.poll() is None and proc.poll() is None and accepts(port)
    assert finish(proc)[0] == 0


def test_port_busy_exits_4_naming_the_holder(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    result = portctl.run("start", "--port", str(port))
    assert result.returncode == 4 and str(holder.pid) in result.stderr
    assert "Traceback" not in result.stderr and no_files_left(portctl, port)
    assert holder.poll() is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_port_busy_on_another_address_counts(portctl: Portctl, spawn, host: str) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    try:
        holder = spawn(app("listener", port, "--host", host))
        wait_until(lambda: holder.poll() is not None or bool(psutil.Process(holder.pid).net_connections()),
                   what="the listener")
    except psutil.Error:
        pytest.skip(f"cannot listen on {host}")
    if holder.poll() is not None:
        pytest.skip(f"cannot listen on {host}")
    result = portctl.run("start", "--port", str(port))
    assert result.returncode == 4 and str(holder.pid) in result.stderr


def test_force_frees_the_port(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    proc = portctl.start("--port", str(port), "--force")
    assert holder.wait(timeout=30) is not None
    wait_file(portctl.pid_file(port))
    wait_until(lambda: json.loads(portctl.record_file(port).read_text() or "{}").get("state") == "running",
               what="the instance to serve")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        assert resp.status == 200
    assert finish(proc)[0] == 0


@pytest.mark.parametrize("variable", ["ENVIRONMENT", "PORTCTL_ENV"])
def test_production_refuses_to_force(portctl: Portctl, spawn, variable: str) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    result = portctl.run("start", "--port", str(port), "--force", env={variable: "production"})
    assert result.returncode == 5 and "lsof" in result.stderr
    freed = portctl.run("free", str(port), env={variable: "production"})
    assert freed.returncode == 5
    assert holder.poll() is None and accepts(port) and no_files_left(portctl, port)


@pytest.mark.posix_only
def test_free_in_development(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = spawn(app("listener", port, "--ignore-term"))
    wait_port_accepting(port)
    result = portctl.run("free", str(port), "--grace", "0.5")
    assert result.returncode == 0 and str(holder.pid) in result.stdout
    assert holder.wait(timeout=30) == -signal.SIGKILL and not accepts(port)


def test_child_ignoring_sigterm_dies_after_grace(portctl: Portctl) -> None:
    port = unused_port()
    proc = started(portctl, port, "--grace", "1", "--", *app("listener", "{port}", "--ignore-term"))
    child = json.loads(portctl.record_file(port).read_text())["child"]["pid"]
    code, _, _ = finish(proc, signal.SIGTERM)
    assert code == 0 and not accepts(port) and is_gone(child)  # a zombie counts as gone


def test_grandchildren_in_a_new_session_leave_no_survivor(portctl: Portctl, tmp_path: Path) -> None:
    port, pids_file = unused_port(), tmp_path / "kids"
    proc = started(portctl, port, "--grace", "1", "--", *app("tree", "{port}", pids_file))
    wait_file(pids_file)
    kids = [psutil.Process(int(p)) for p in pids_file.read_text().split()]
    assert psutil.Process(kids[1].pid).pid  # alive before the stop
    assert portctl.run("stop", "--port", str(port)).returncode == 0
    assert finish(proc, sig=0)[0] == 0

    def gone(p: psutil.Process) -> bool:
        try:
            return p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(lambda: all(gone(k) for k in kids), what="grandchildren to die")


def test_eight_concurrent_starts_make_one_supervisor(portctl: Portctl) -> None:
    port = unused_port()
    procs = [portctl.start("--port", str(port)) for _ in range(8)]
    wait_until(lambda: sum(p.poll() is not None for p in procs) >= 7, timeout=60, what="7 losers")
    survivors = [p for p in procs if p.poll() is None]
    assert len(survivors) == 1
    assert sorted({p.returncode for p in procs if p not in survivors}) in ([6], [4], [4, 6])
    wait_port_accepting(port)
    from portctl.ports import holders

    assert len({h.pid for h in holders(port)}) == 1
    assert finish(survivors[0])[0] == 0


@pytest.mark.linux_refined  # PR_SET_PDEATHSIG is Linux's
def test_sigkill_of_the_supervisor_frees_the_port(portctl: Portctl) -> None:
    port = unused_port()
    proc = started(portctl, port)
    proc.kill()
    proc.communicate(timeout=30)
    wait_port_refusing(port, timeout=10)
    again = started(portctl, port)
    assert finish(again)[0] == 0


def test_child_exit_code_is_passed_on(portctl: Portctl) -> None:
    port = unused_port()
    early = portctl.run("start", "--port", str(port), "--", *app("exiter", 3))
    assert early.returncode == 3 and "code 3" in early.stderr
    zero = portctl.run("start", "--port", str(port), "--", *app("exiter", 0))
    assert zero.returncode == 1 and "code 0" in zero.stderr
    assert no_files_left(portctl, port)


def test_child_exiting_after_ready_passes_its_code(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", str(port), "--",
                         *app("flaky", "{port}", "--exit-after", "0.5", "--exit-code", "7"))
    assert result.returncode == 7 and no_files_left(portctl, port)


def test_ready_timeout_exits_7_leaving_nothing(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", str(port), "--ready-timeout", "1", "--grace", "1",
                         "--", *app("silent", 60))
    assert result.returncode == 7 and no_files_left(portctl, port)


def test_invalid_input_exits_2_creating_nothing(portctl: Portctl) -> None:
    for args in (["--port", "0"], ["--port", "70000"], ["--port", "abc"],
                 ["--host", "no.such.host.invalid"], ["--frobnicate"]):
        result = portctl.run("start", *args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
    assert list(portctl.run_dir.iterdir()) == []


def test_status_json_shapes(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port, stale_port = unused_port(), unused_port()
    proc = started(portctl, port, "--name", "api")
    portctl.pid_file(stale_port).write_text("999999\n")
    result = portctl.run("status", "--json")
    assert result.returncode == 0
    rows = {row["port"]: row for row in json.loads(result.stdout)}
    live, stale = rows[port], rows[stale_port]
    assert live["state"] == "running" and live["pid"] == proc.pid and live["name"] == "api"
    assert isinstance(live["child_pid"], int) and isinstance(live["command"], list)
    assert live["host"] == "127.0.0.1" and live["started_at"].endswith("+00:00")
    assert stale["state"] == "stale" and stale["pid"] == 999999
    assert portctl.run("status", "--port", str(port)).returncode == 0
    assert portctl.run("status", "--port", str(stale_port)).returncode == 3
    finish(proc)


def test_clean_removes_stale_files_and_dry_run_keeps_them(portctl: Portctl) -> None:
    port = unused_port()
    portctl.pid_file(port).write_text("999999\n")
    portctl.record_file(port).write_text("{damaged")
    (portctl.run_dir / f".server_{port}.lock").write_text("")
    dry = portctl.run("clean", "--dry-run")
    assert dry.returncode == 0 and "would remove" in dry.stdout and portctl.pid_file(port).exists()
    assert portctl.run("clean").returncode == 0
    assert list(portctl.run_dir.iterdir()) == []


@pytest.mark.parametrize("mode", [["--workers", "2"], ["--reload"]])
def test_uvicorn_workers_and_reloader_leave_no_survivor(portctl: Portctl, tmp_path: Path, mode: list[str]) -> None:
    port = unused_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "portctl.demo:app", "--port", "{port}", *mode]
    if "--reload" in mode:
        uvicorn += ["--reload-dir", str(tmp_path)]
    proc = started(portctl, port, "--", *uvicorn)
    from portctl.ports import holders

    wait_until(lambda: len({h.pid for h in holders(port)}) >= 2, what="uvicorn's workers")
    tree = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
    assert len(tree) >= 3
    assert portctl.run("stop", "--port", str(port)).returncode == 0
    assert finish(proc, sig=0)[0] == 0
    assert holders(port) == [] and not accepts(port)

    def gone(p: psutil.Process) -> bool:
        try:
            return p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    assert all(gone(p) for p in tree)


def test_second_ctrl_c_skips_the_grace_period(portctl: Portctl) -> None:
    port = unused_port()
    # a grace period longer than the hang guard: only the second signal can end this in time
    proc = started(portctl, port, "--grace", "120", "--", *app("listener", "{port}", "--ignore-term"))
    child = json.loads(portctl.record_file(port).read_text())["child"]["pid"]
    proc.send_signal(signal.SIGINT)

    def state() -> str:
        try:
            return str(json.loads(portctl.record_file(port).read_text()).get("state", ""))
        except (OSError, ValueError):
            return ""

    wait_until(lambda: state() == "stopping", what="the stop to begin")
    code, _, _ = finish(proc, signal.SIGINT, timeout=20)
    assert code == 0 and not accepts(port)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("runuser")),
                    reason="needs root and runuser to start another user's process")
def test_a_holder_of_another_user(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    holder = spawn(["runuser", "-u", "nobody", "--", python, str(APPS / "listener.py"), str(port)])
    wait_port_accepting(port)
    shown = json.loads(portctl.run("who", str(port), "--json").stdout)
    assert [h["username"] for h in shown] == ["nobody"]
    refused = portctl.run("free", str(port), env={"ENVIRONMENT": "production"})
    assert refused.returncode == 5 and accepts(port)
    freed = portctl.run("free", str(port), "--grace", "1")  # root may, in development
    assert freed.returncode == 0 and not accepts(port)
    holder.wait(timeout=30)
