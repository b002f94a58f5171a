"""Command wiring through click's CliRunner: options, exit codes, output shapes.
Behaviour with real processes lives in the e2e tests."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from portctl import __version__
from portctl.face.cli import cli


def run(tmp_path: Path, *args: str) -> "object":
    return CliRunner().invoke(cli, ["--run-dir", str(tmp_path), *args])


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand the group declares, read from click itself: a command
    added later is covered without editing this file."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
    return paths


def test_the_help_list_reaches_subcommands() -> None:
    paths = command_paths(cli)
    assert ("start",) in paths and ("config",) in paths and ("config", "show") in paths


@pytest.mark.parametrize("path", command_paths(cli), ids=" ".join)
def test_every_command_has_help(tmp_path: Path, path: tuple[str, ...]) -> None:
    result = run(tmp_path, *path, "--help")
    assert result.exit_code == 0, result.output
    assert f" {' '.join(path)} [OPTIONS]" in result.output.splitlines()[0], result.output
    assert list(tmp_path.iterdir()) == []  # asking for help creates nothing


@pytest.mark.parametrize(
    "args",
    [
        ["start", "--port", "0"],
        ["start", "--port", "65536"],
        ["start", "--port", "abc"],
        ["start", "--grace", "-1"],
        ["start", "--bogus"],
        ["stop", "--port", "70000"],
        ["who", "abc"],
        ["who"],
        ["free"],
        ["nosuchcommand"],
    ],
)
def test_bad_input_exits_2_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    result = run(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_unknown_host_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "start", "--port", str(unused_port()), "--host", "no.such.host.invalid")
    assert result.exit_code == 2
    assert "no.such.host.invalid" in result.output
    assert list(tmp_path.iterdir()) == []


def test_status_json_of_empty_run_dir(tmp_path: Path) -> None:
    result = run(tmp_path, "status", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_status_of_a_port_not_running_exits_3(tmp_path: Path) -> None:
    result = run(tmp_path, "status", "--port", "8123")
    assert result.exit_code == 3


def test_stop_of_nothing_is_success(tmp_path: Path) -> None:
    result = run(tmp_path, "stop", "--port", str(unused_port()))
    assert result.exit_code == 0


def test_restart_without_record_exits_1(tmp_path: Path) -> None:
    result = run(tmp_path, "restart", "--port", str(unused_port()))
    assert result.exit_code == 1 and "no instance" in result.output


def test_who_free_port_json_is_empty_list_and_exit_1(tmp_path: Path) -> None:
    result = run(tmp_path, "who", str(unused_port()), "--json")
    assert result.exit_code == 1 and json.loads(result.output) == []


def test_who_json_lists_this_process_as_holder(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run(tmp_path, "who", str(port), "--json")
    assert result.exit_code == 0
    (row,) = json.loads(result.output)
    import os

    assert row["pid"] == os.getpid() and row["address"] == "127.0.0.1"
    assert isinstance(row["cmdline"], list) and row["name"] and row["username"]


def test_clean_in_empty_dir(tmp_path: Path) -> None:
    result = run(tmp_path, "clean")
    assert result.exit_code == 0 and "nothing to clean" in result.output


def test_status_cells_show_restarts_last_exit_and_health() -> None:
    from portctl.face import statusview as view

    row = {"port": 8001, "name": "api", "host": "127.0.0.1", "state": "running", "pid": 10, "child_pid": 11,
           "uptime_s": 42.4, "restarts": 2, "started_at": "2026-11-23T14:02:00+00:00",
           "last_exit": {"code": 137, "at": "2026-11-23T14:02:05+00:00", "reason": "exited"},
           "last_health": {"ok": True, "latency_ms": 3.4, "detail": "200", "at": "2026-11-23T14:02:09+00:00"},
           "command": ["/usr/bin/uvicorn", "app:app", "--port", "{port}"]}
    assert view.cells(row, wide=False) == ["api", "8001", "running", "10", "42s", "2", "ok",
                                           "uvicorn app:app --port 8001"]
    wide = view.cells(row, wide=True)
    assert wide[5] == "11" and wide[9].startswith("137 (SIGKILL) at ") and wide[10] == "ok 3 ms"
    assert wide[11] == "/usr/bin/uvicorn app:app --port 8001"
    row.update(last_exit={"code": None, "at": "2026-11-23T14:03:00+00:00", "reason": "health"},
               last_health={"ok": False, "latency_ms": 1000.0, "detail": "TimeoutError", "at": "x"})
    assert view.cells(row, wide=True)[9:11] == [f"- at {view.clock('2026-11-23T14:03:00+00:00')}",
                                                "failed (TimeoutError)"]
    row.update(last_exit=None, last_health=None, restarts=0, uptime_s=None)
    assert view.cells(row, wide=False)[4:7] == ["-", "0", "-"]
    assert len(view.cells(row, wide=True)) == len(view.WIDE_COLUMNS)


@pytest.mark.posix_only
def test_in_process_start_gives_signal_dispositions_back(tmp_path: Path) -> None:
    """The foreground supervisor ignores stop signals outside its run; called in-process it
    must hand them back, or every process started later inherits SIG_IGN."""
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    result = run(tmp_path, "start", "--port", str(unused_port()), "--host", "no.such.host.invalid")
    assert result.exit_code == 2
    assert {sig: signal.getsignal(sig) for sig in before} == before
