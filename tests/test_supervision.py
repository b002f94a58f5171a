"""End to end: detached mode, logs, health checks, restarts with backoff, events."""
from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from support.apps import app
from support.portctl import Portctl, finish
from support.ports import unused_port
from support.waits import accepts, wait_port_accepting, wait_port_refusing, wait_until

pytestmark = pytest.mark.timeout(120)


def record(portctl: Portctl, port: int) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads(portctl.record_file(port).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def events(portctl: Portctl) -> list[dict]:  # type: ignore[type-arg]
    path = portctl.run_dir / ".portctl" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kinds(portctl: Portctl, port: int) -> list[str]:
    return [e["event"] for e in events(portctl) if e["port"] == port]


def start_detached(portctl: Portctl, port: int, *args: str) -> dict:  # type: ignore[type-arg]
    result = portctl.run("start", "-d", "--port", str(port), *args)
    assert result.returncode == 0, result.stderr
    assert f"http://127.0.0.1:{port}" in result.stdout and ".log" in result.stdout
    assert accepts(port)
    return record(portctl, port)


def stop(portctl: Portctl, port: int) -> None:
    assert portctl.run("stop", "--port", str(port)).returncode == 0
    assert not accepts(port)


def test_detached_round_trip(portctl: Portctl) -> None:
    port = unused_port()
    rec = start_detached(portctl, port, "--name", "api")
    assert rec["detached"] is True and rec["restart"] == "on-failure"
    supervisor = psutil.Process(rec["supervisor"]["pid"])
    assert supervisor.ppid() != os.getpid()  # really in the background
    status = json.loads(portctl.run("status", "--json").stdout)
    assert status[0]["state"] == "running" and status[0]["detached"] is True
    assert portctl.run("port", "api").stdout.strip() == str(port)
    again = portctl.run("start", "-d", "--port", str(port))
    assert again.returncode == 6
    stop(portctl, port)
    wait_until(lambda: not supervisor.is_running() or supervisor.status() == psutil.STATUS_ZOMBIE,
               what="the supervisor to exit")
    assert kinds(portctl, port) == ["started", "ready", "stopping", "stopped"]


def test_detached_restart_keeps_it_detached(portctl: Portctl) -> None:
    port = unused_port()
    first = start_detached(portctl, port)
    result = portctl.run("restart", "--port", str(port))
    assert result.returncode == 0, result.stderr
    second = record(portctl, port)
    assert second["detached"] and second["supervisor"]["pid"] != first["supervisor"]["pid"]
    assert accepts(port)
    stop(portctl, port)


def test_restart_force_with_a_foreign_holder(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    start_detached(portctl, port)
    stop(portctl, port)
    holder = spawn(app("listener", port))
    wait_until(lambda: accepts(port), what="the foreign listener")
    assert portctl.run("restart", "--port", str(port)).returncode == 4
    result = portctl.run("restart", "--port", str(port), "--force")
    assert result.returncode == 0, result.stderr
    assert holder.wait(timeout=30) is not None and accepts(port)
    stop(portctl, port)


def test_detached_failure_reports_code_and_log_tail(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", str(port), "--ready-timeout", "1", "--grace", "0.5",
                         "--", *app("flaky", 1, "--log-lines", "3"))  # listens on the wrong port
    assert result.returncode == 7
    assert "flaky line 2" in result.stderr and "flaky error stream" in result.stderr
    assert not portctl.pid_file(port).exists() and not portctl.lock_held(port)


def test_detached_child_exit_before_ready(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", str(port), "--", *app("exiter", 5))
    assert result.returncode == 5 and "code 5" in result.stderr
    assert not portctl.lock_held(port)


def test_logs_written_rotated_and_printed(portctl: Portctl) -> None:
    port = unused_port()
    start_detached(portctl, port, "--name", "chatty", "--log-max-bytes", "1024", "--log-backups", "2",
                   "--", *app("flaky", "{port}", "--log-lines", "150"))  # ~2.1 kB: 2 rotations
    log = portctl.run_dir / ".portctl" / "logs" / "chatty.log"
    wait_until(lambda: log.with_name("chatty.log.2").exists(), what="two rotations")
    assert not log.with_name("chatty.log.3").exists()
    kept = [log, log.with_name("chatty.log.1"), log.with_name("chatty.log.2")]
    # stdout and stderr are separate pipes: the stderr line may sit in any kept file
    wait_until(lambda: any("flaky error stream" in p.read_text() for p in kept if p.exists()),
               what="stderr in the log")
    assert "flaky line 149" in portctl.run("logs", "chatty", "-n", "400").stdout
    tail = portctl.run("logs", "--port", str(port), "-n", "3").stdout.splitlines()
    assert len(tail) == 3
    stop(portctl, port)
    assert "[portctl " in log.read_text()  # lifecycle lines, marked apart
    assert "stopped" in portctl.run("logs", "--port", str(port), "-n", "1").stdout  # after the stop too


def test_crash_loop_backs_off_then_goes_fatal(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.start("--port", str(port), "--restart", "on-failure", "--backoff-initial", "0.05",
                         "--max-restarts", "3", "--",
                         *app("flaky", "{port}", "--exit-after", "0.3", "--exit-code", "3"))
    code, _, err = finish(proc, sig=0, timeout=60)
    assert code == 1 and "fatal" in err
    seq = kinds(portctl, port)
    assert seq.count("restarting") == 3 and seq.count("exited") == 4 and seq[-1] == "fatal"
    delays = [e["delay_s"] for e in events(portctl) if e["event"] == "restarting"]
    assert delays[0] == 0 and 0.045 <= delays[1] <= 0.055 and 0.09 <= delays[2] <= 0.11  # ±10 % jitter
    status = json.loads(portctl.run("status", "--json").stdout)
    assert status[0]["state"] == "fatal" and "3 restarts" in status[0]["reason"]
    assert not accepts(port) and not portctl.lock_held(port)


@pytest.mark.posix_only
def test_crash_is_restarted_and_serves_again(portctl: Portctl) -> None:
    port = unused_port()
    rec = start_detached(portctl, port)
    child = psutil.Process(rec["child"]["pid"])
    child.kill()
    wait_until(lambda: record(portctl, port).get("restarts") == 1 and accepts(port)
               and record(portctl, port)["state"] == "running", what="the restart")
    assert record(portctl, port)["last_exit"]["code"] == 128 + signal.SIGKILL
    header, row = portctl.run("status").stdout.splitlines()[:2]  # plain text: not a terminal
    assert header.split()[2:6] == ["STATE", "PID", "UPTIME", "RESTARTS"]
    assert row.split()[2] == "running" and row.split()[5] == "1"
    header, row = portctl.run("status", "--wide").stdout.splitlines()[:2]
    assert header.split()[8:11] == ["RESTARTS", "LAST", "EXIT"]
    assert row.split()[8:11] == ["1", str(128 + signal.SIGKILL), "(SIGKILL)"]
    stop(portctl, port)


def test_failing_health_restarts_the_child(portctl: Portctl) -> None:
    port = unused_port()
    rec = start_detached(portctl, port, "--health", "/health", "--health-interval", "0.2",
                         "--health-failures", "2", "--backoff-initial", "0.05",
                         "--", *app("flaky", "{port}", "--fail-after", "0.5"))
    first_child = rec["child"]["pid"]
    wait_until(lambda: record(portctl, port).get("restarts", 0) >= 1, what="a health restart")
    seq = kinds(portctl, port)
    assert seq.count("health_failed") >= 2 and "restarting" in seq
    # The new child goes through readiness to running (it answers 200 for its first 0.5 s),
    # monitoring goes on, and its own illness causes a second restart.
    def running_child() -> int:
        rec = record(portctl, port)
        return int((rec.get("child") or {}).get("pid", 0)) if rec.get("state") == "running" else 0

    second = wait_until(lambda: running_child() not in (0, first_child), what="the new child running")
    wait_until(lambda: record(portctl, port).get("restarts", 0) >= 2 and running_child() not in (0, second),
               what="a second health restart, and that child running")
    stop(portctl, port)


def test_health_readiness_requires_2xx(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", str(port), "--health", "/health", "--ready-timeout", "2",
                         "--grace", "0.5", "--", *app("flaky", "{port}", "--fail-after", "0.001"))
    assert result.returncode == 7


def test_bind_failure_is_diagnosed(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    holder_port = unused_port()
    holder = spawn(app("listener", holder_port))
    wait_until(lambda: accepts(holder_port), what="the foreign listener")
    # the child is told to bind a port someone else holds: it dies, and portctl names the holder
    result = portctl.run("start", "--port", str(holder_port), "--", *app("flaky", holder_port))
    assert result.returncode == 4 and str(holder.pid) in result.stderr


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX")
def test_detached_supervisor_killed_then_next_start_reclaims(portctl: Portctl) -> None:
    port = unused_port()
    rec = start_detached(portctl, port)
    os.kill(rec["supervisor"]["pid"], signal.SIGKILL)
    wait_port_refusing(port, timeout=10)  # PR_SET_PDEATHSIG took the child
    result = portctl.run("start", "-d", "--port", str(port))
    assert result.returncode == 0 and "stale" in result.stderr
    stop(portctl, port)


def test_events_command_prints_json_lines(portctl: Portctl) -> None:
    port = unused_port()
    start_detached(portctl, port)
    stop(portctl, port)
    lines = portctl.run("events", "--json", "-n", "10").stdout.splitlines()
    assert [json.loads(line)["event"] for line in lines][-2:] == ["stopping", "stopped"]


def test_restart_blocked_by_a_foreign_holder_goes_fatal_naming_it(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    events = portctl.run_dir / ".portctl" / "events.jsonl"

    def restarting_delays() -> list[float]:
        if not events.exists():
            return []
        return [e["delay_s"] for e in map(json.loads, events.read_text().splitlines())
                if e["event"] == "restarting"]

    # The child exits twice; the second restart waits ~3 s (backoff), and meanwhile a
    # foreign listener takes the port.
    result = portctl.run("start", "-d", "--port", str(port), "--backoff-initial", "3",
                         "--", *app("flaky", "{port}", "--exit-after", "0.5", "--exit-code", "3"))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(restarting_delays()) >= 2, what="a delayed restart")
    wait_until(lambda: not accepts(port), what="the port to be released")
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    wait_until(lambda: "fatal" in events.read_text(), what="the instance to give up")
    kinds = [e["event"] for e in map(json.loads, events.read_text().splitlines())]
    assert kinds[-2:] == ["port_conflict", "fatal"]
    status = json.loads(portctl.run("status", "--json").stdout)[0]
    assert status["state"] == "fatal" and str(holder.pid) in status["reason"]
    assert holder.poll() is None  # diagnosed, never killed
