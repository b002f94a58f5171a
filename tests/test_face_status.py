"""`status` and `events` as people read them (issue 11): compact columns that fit 80, relative
uptimes, a reason and the command that helps under rows in trouble, "no instances in DIR",
--wide, plain byte-stable text when piped or with NO_COLOR, and events as one human line each
(--json keeps the JSON lines). Real instances (`start -d`) make the run dirs; the rendering
itself is checked on rows too, where a real instance would be slow to get (unhealthy, 4 days)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil
import pytest
from click.testing import CliRunner

from portctl.core.events import EventLog
from portctl.face import statusview as view
from portctl.face.cli import cli
from support.apps import app
from support.portctl import Portctl, finish
from support.ports import unused_port
from support.processes import Popen
from support.waits import wait_until

WIDTH = 80
ESCAPE = "\x1b"
BOX = set("─│┃━┏┓┗┛┡┩╇╋┼├┤┬┴╭╮╰╯═║")


def cli_status(run_dir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """`status` in-process, as a pipe sees it (CliRunner's stdout is no terminal), 80 columns."""
    return CliRunner().invoke(cli, ["--run-dir", str(run_dir), "status", *args], env={"COLUMNS": "80", **(env or {})})


def long_command(port_arg: str = "{port}") -> list[str]:
    """A realistic long command line: an interpreter in a deep virtualenv and many options."""
    return [*app("listener", port_arg, "--exit-after", "120"), "--exit-code", "0"]


def started(portctl: Portctl, name: str, *args: object) -> int:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--name", name, *args)
    assert result.returncode == 0, result.stderr
    return port


@pytest.fixture
def three(portctl: Portctl) -> Iterator[dict[str, int]]:
    """A run dir with a running instance (a long command), a fatal one and a stale one."""
    ports = {"frontend-dev": started(portctl, "frontend-dev", "--", *long_command())}
    ports["worker"] = started(portctl, "worker", "--max-restarts", "0", "--",
                              *app("listener", "{port}", "--exit-after", "1", "--exit-code", "3"))
    ports["ghost"] = started(portctl, "ghost", "--", *app("listener", "{port}", "--exit-after", "60"))
    try:
        wait_until(lambda: portctl.record(ports["worker"]).get("state") == "fatal", what="worker to turn fatal")
        supervisor = portctl.read_pid(ports["ghost"])
        assert supervisor is not None
        os.kill(supervisor, signal.SIGKILL)
        wait_until(lambda: not portctl.lock_held(ports["ghost"]), what="the ghost's lock to drop")
        yield ports
    finally:
        for port in ports.values():
            portctl.run("stop", "--port", port)
        portctl.run("clean")


# ------------------------------------------------------------------ pure rendering
def row(**changes: Any) -> dict[str, Any]:
    base = {"port": 8001, "name": "api", "host": "127.0.0.1", "state": "running", "pid": 4012345,
            "child_pid": 4012350, "started_at": "2026-11-23T14:02:00+00:00", "uptime_s": 192.0,
            "restarts": 0, "last_exit": None, "last_health": None, "reason": "", "log": "/x/api.log",
            "command": ["/home/someone/.virtualenvs/shop-backend-py312/bin/python3.12", "-m", "uvicorn",
                        "shop.main:app", "--host", "{host}", "--port", "{port}", "--reload"]}
    return {**base, **changes}


def test_uptime_is_relative() -> None:
    assert [view.uptime(s) for s in (None, 0, 42.9, 192, 7500, 4 * 86400 + 3600)] == \
        ["-", "0s", "42s", "3m12s", "2h05m", "4d"]


def test_the_host_shows_only_when_it_is_not_the_default() -> None:
    assert view.port_text(row()) == "8001"
    assert view.port_text(row(host="0.0.0.0")) == "0.0.0.0:8001"
    assert view.port_text(row(host="::1")) == "[::1]:8001"
    assert view.port_text(row(port=None)) == "auto"


def test_realistic_rows_fit_80_columns_and_the_command_is_cut_with_an_ellipsis() -> None:
    rows = [row(name="frontend-dev", port=51234, pid=81234, uptime_s=4 * 86400, restarts=12),
            row(name="api", host="0.0.0.0", pid=81240)]
    lines = [view.GAP.join(line).rstrip() for line in view.table(rows, WIDTH)]
    assert all(len(line) <= WIDTH for line in lines), "\n".join(lines)
    assert lines[0].split() == ["NAME", "PORT", "STATE", "PID", "UPTIME", "RESTARTS", "COMMAND"]  # no health checks
    assert lines[1].split()[:7] == ["frontend-dev", "51234", "running", "81234", "4d", "12", "python3.12"]
    assert lines[1].endswith("…") and len(lines[1]) == WIDTH
    assert lines[2].split()[:7] == ["api", "0.0.0.0:8001", "running", "81240", "3m12s", "0", "python3.12"]
    checked = view.table([*rows, row(name="web", last_health={"ok": True, "latency_ms": 3})], WIDTH)
    assert [line[6].strip() for line in checked] == ["HEALTH", "-", "-", "ok"]
    wide = [view.GAP.join(line).rstrip() for line in view.table(rows, WIDTH, wide=True)]
    assert wide[2].endswith("/bin/python3.12 -m uvicorn shop.main:app --host 0.0.0.0 --port 8001 --reload")


def test_rows_in_trouble_fit_80_columns_with_their_reasons_and_fixes() -> None:
    rows = [row(name="payments-worker", port=51234, host="0.0.0.0", state="unhealthy", restarts=12,
                reason="3 failed health checks (timeout)", last_health={"ok": False, "detail": "timeout"}),
            row(name="api", state="backoff", uptime_s=None, reason="exited with code 1"),
            row(name="db-admin", state="fatal", pid=None, uptime_s=None, reason="gave up after 5 restarts within 60 s",
                last_exit={"code": 137, "at": "2026-11-23T14:02:05+00:00"}),
            row(name="old", state="stale", uptime_s=None, log=None)]
    lines = [view.GAP.join(line).rstrip() for line in view.table(rows, WIDTH)]
    assert all(len(line) <= WIDTH for line in lines), "\n".join(lines)
    assert lines[0].split()[-1] == "HEALTH"  # no room left for a useful command: see --wide
    assert lines[1].split() == ["payments-worker", "0.0.0.0:51234", "unhealthy", "4012345", "3m12s", "12", "failing"]
    wide = [view.GAP.join(line).rstrip() for line in view.table(rows, WIDTH, wide=True)]
    assert "137 (SIGKILL) at" in wide[3] and "failed (timeout)" in wide[1]
    names = view.targets(rows)
    notes = []
    for i, r in enumerate(rows):
        found = view.note(r, names[i])
        if found:
            notes += view.note_lines(r["name"], *found, WIDTH)
    assert all(len(line) <= WIDTH for line in notes), "\n".join(notes)
    assert notes[:3] == ["payments-worker: 3 failed health checks (timeout)", "  try `portctl logs payments-worker`",
                         "api: restarting after: exited with code 1; try `portctl logs api`"]
    assert notes[3] == "db-admin: gave up after 5 restarts within 60 s; last exit code 137 (SIGKILL) at " \
        f"{view.clock('2026-11-23T14:02:05+00:00')}"[:WIDTH - 1] + "…"
    assert notes[4:] == ["  try `portctl restart db-admin`",
                         "old: supervisor 4012345 is gone; its files are left; try `portctl clean`"]


def test_a_narrow_terminal_loses_the_command_never_a_name() -> None:
    lines = view.table([row(name="a-rather-long-service-name")], 60)
    assert lines[0][-1].strip() == "RESTARTS" and lines[1][0].strip() == "a-rather-long-service-name"


def test_an_instance_named_twice_is_helped_by_port() -> None:
    rows = [row(state="stale"), row(port=8002, state="fatal", pid=None)]
    assert view.targets(rows) == {0: "--port 8001", 1: "--port 8002"}


def test_event_lines_say_time_name_event_and_details() -> None:
    today = datetime(2026, 11, 23, 14, 2, 5, tzinfo=timezone.utc).astimezone()
    at = today.isoformat()
    line = view.event_line(view.event_columns({"time": at, "event": "exited", "name": "api", "port": 8001, "code": 137},
                                              today.date()))
    assert line == f"{today:%H:%M:%S}  api           exited         code 137 (SIGKILL)"
    another_day = today.date() + timedelta(days=1)
    line = view.event_line(view.event_columns({"time": at, "event": "restarting", "port": 8001, "delay_s": 0.5,
                                               "reason": "exited with code 1", "restarts": 2}, another_day))
    assert line == f"{today:%Y-%m-%d %H:%M:%S}  :8001         restarting     in 0.5 s (restart 2): exited with code 1"
    assert view.event_detail({"event": "ready", "elapsed_ms": 1234.0}) == "in 1.2 s"
    assert view.event_detail({"event": "ready", "elapsed_ms": 35.3}) == "in 35 ms"
    assert view.event_detail({"event": "port_changed", "port": 8002, "previous": 8001, "reason": "busy"}) == \
        "8001 -> 8002: busy"
    assert view.event_detail({"event": "health_failed", "detail": "HTTP 500", "failures": 2}) == "HTTP 500 (2 in a row)"
    assert view.event_severity("fatal") == "error" and view.event_severity("ready") == "ok"


# ------------------------------------------------------------------ the command, on real run dirs
def test_an_empty_run_dir_says_so(tmp_path: Path) -> None:
    result = cli_status(tmp_path)
    assert result.exit_code == 0 and result.output == f"no instances in {tmp_path}\n"
    assert cli_status(tmp_path, "--json").output == "[]\n"
    named = cli_status(tmp_path, "--port", "8123")
    assert named.exit_code == 3 and "no instances" not in named.output


def test_status_of_real_instances_fits_80_columns_with_reasons_and_fixes(portctl: Portctl,
                                                                        three: dict[str, int]) -> None:
    result = cli_status(portctl.run_dir)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= WIDTH for line in lines), result.output
    assert ESCAPE not in result.output and not BOX & set(result.output)
    states = {line.split()[0]: line.split()[2] for line in lines[1:4]}
    assert states == {"frontend-dev": "running", "worker": "fatal", "ghost": "stale"}
    running = next(line for line in lines if line.startswith("frontend-dev"))
    assert f"  {three['frontend-dev']}  " in running and "127.0.0.1" not in running
    assert re.search(r"  \d+s  ", running) and running.endswith("…")
    assert lines[4] == ""
    assert any(line.startswith("worker: gave up after 0 restarts") and "code 3" in line for line in lines)
    assert "try `portctl restart worker`" in result.output
    ghost = portctl.read_pid(three["ghost"])
    assert f"ghost: supervisor {ghost} is gone; its files are left; try `portctl clean`" in lines


def test_plain_output_is_byte_stable_piped_and_with_no_color(portctl: Portctl, three: dict[str, int],
                                                              spawn: Callable[..., Popen]) -> None:
    assert portctl.run("stop", "--port", three["frontend-dev"]).returncode == 0  # no uptime ticking
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    piped = [portctl.run("status", env=env).stdout for _ in range(2)]
    no_color = portctl.run("status", env={**env, "NO_COLOR": "1", "TERM": "dumb"}).stdout
    assert piped[0] == piped[1] == no_color == cli_status(portctl.run_dir).output
    assert ESCAPE not in piped[0] and not BOX & set(piped[0])
    assert sorted(line.split()[:3] for line in piped[0].splitlines()[1:3]) == [
        ["ghost", str(three["ghost"]), "stale"], ["worker", str(three["worker"]), "fatal"]]


def test_wide_shows_everything(portctl: Portctl, three: dict[str, int]) -> None:
    result = cli_status(portctl.run_dir, "--wide")
    assert result.exit_code == 0
    header, *rows = result.output.splitlines()
    assert header.split() == ["NAME", "PORT", "HOST", "STATE", "PID", "CHILD", "STARTED", "UPTIME", "RESTARTS",
                              "LAST", "EXIT", "HEALTH", "COMMAND"]
    running = next(line for line in rows if line.startswith("frontend-dev"))
    command = " ".join(long_command(str(three["frontend-dev"])))
    assert running.endswith(command) and "127.0.0.1" in running
    record = portctl.record(three["frontend-dev"])
    assert f"  {record['child']['pid']}  " in running
    assert re.search(r"  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  ", running)
    worker = next(line for line in rows if line.startswith("worker"))
    assert re.search(r"  3 at \d\d:\d\d:\d\d  ", worker)


def test_json_keeps_the_contract_fields(portctl: Portctl, three: dict[str, int]) -> None:
    rows = json.loads(cli_status(portctl.run_dir, "--json").output)
    assert {r["name"]: r["state"] for r in rows} == {"frontend-dev": "running", "worker": "fatal", "ghost": "stale"}
    for r in rows:
        assert {"port", "host", "state", "pid", "child_pid", "started_at", "command"} <= set(r)
        assert isinstance(r["command"], list)


def test_status_of_a_named_instance_that_is_not_running_exits_3(portctl: Portctl, three: dict[str, int]) -> None:
    assert cli_status(portctl.run_dir, "worker").exit_code == 3
    assert cli_status(portctl.run_dir, "frontend-dev").exit_code == 0
    assert cli_status(portctl.run_dir).exit_code == 0  # bare: today's exit code, whatever the states


def test_project_status_fits_80_columns(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "portctl.toml").write_text(f'[services.storefront-web]\ncommand = {json.dumps(long_command())}\n'
                                       f'port = {unused_port()}\n[services.api]\ncommand = {json.dumps(long_command())}\n'
                                       'port = "auto"\n')
    proc = spawn([sys.executable, "-m", "portctl", "status"], cwd=root, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code, out, err = finish(proc, sig=0)
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(line) <= WIDTH for line in lines), out
    assert [line.split()[:3] for line in lines[1:]] == [["storefront-web", lines[1].split()[1], "stopped"],
                                                        ["api", "auto", "stopped"]]


# ------------------------------------------------------------------ events
def test_events_are_human_lines_piped_and_json_lines_with_json(portctl: Portctl, three: dict[str, int]) -> None:
    human = portctl.run("events", "-n", "100").stdout.splitlines()
    clock = r"\d\d:\d\d:\d\d"
    assert any(re.fullmatch(rf"{clock}  frontend-dev  started        pid \d+", line) for line in human), human
    assert any(re.fullmatch(rf"{clock}  worker        exited         code 3", line) for line in human), human
    assert any(re.fullmatch(rf"{clock}  worker        fatal          gave up after 0 restarts within 60 s", line)
               for line in human), human
    assert not any(line.startswith("{") for line in human)
    raw = portctl.run("events", "--json", "-n", "100").stdout.splitlines()
    assert len(raw) == len(human) and [json.loads(line)["event"] for line in raw][:2] == ["started", "ready"]


def test_events_follow_prints_human_lines(portctl: Portctl) -> None:
    log = EventLog(portctl.run_dir)
    log.emit("started", name="api", port=8001, child_pid=42)
    with (portctl.run_dir / ".portctl" / "events.jsonl").open("a") as damaged:
        damaged.write("not json\n")  # skipped
    follower = portctl.launch("events", "-f", "-n", "5")
    lines: list[str] = []
    try:
        assert follower.stdout is not None
        lines.append(follower.stdout.readline())
        path = str(portctl.run_dir / ".portctl" / "events.jsonl")
        wait_until(lambda: any(f.path == path for f in psutil.Process(follower.pid).open_files()),
                   what="the follower to open the events file")
        log.emit("fatal", name="api", port=8001, reason="gave up after 3 restarts within 60 s")
        lines.append(follower.stdout.readline())
    finally:
        finish(follower, sig=signal.SIGINT)
    assert re.fullmatch(r"\d\d:\d\d:\d\d  api           started        pid 42\n", lines[0]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d  api           fatal          gave up after 3 restarts within 60 s\n",
                        lines[1]), lines


def test_events_of_another_day_carry_the_date(tmp_path: Path) -> None:
    (tmp_path / ".portctl").mkdir()
    then = datetime(2020, 2, 29, 23, 59, 58, tzinfo=timezone.utc)
    (tmp_path / ".portctl" / "events.jsonl").write_text(json.dumps(
        {"time": then.isoformat(), "event": "stopped", "name": "api", "port": 8001, "reason": "stop requested"}) + "\n")
    result = CliRunner().invoke(cli, ["--run-dir", str(tmp_path), "events"])
    assert result.exit_code == 0
    assert result.output == f"{then.astimezone():%Y-%m-%d %H:%M:%S}  api           stopped        stop requested\n"
    assert date.today() != then.astimezone().date()
