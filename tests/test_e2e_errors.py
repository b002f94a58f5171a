"""End to end: bad input, children that fail, stale and tampered run files, exit codes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from support.apps import app, untouched
from support.portctl import Portctl, finish
from support.ports import unused_port
from support.processes import is_gone
from support.waits import accepts, wait_file, wait_until

pytestmark = pytest.mark.timeout(60)


def assert_one_clean_error(result) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.strip(), "an error says what went wrong"


# ----------------------------------------------------------------------------- bad input: 2

@pytest.mark.parametrize("args", [
    ["start", "--port", "0"],
    ["start", "--port", "70000"],
    ["start", "--port", "-1"],
    ["start", "--port", "abc"],
    ["start", "--host", "no.such.host.invalid"],
    ["start", "--frobnicate"],
    ["start", "--grace", "-1"],
    ["start", "--ready-timeout", "soon"],
    ["stop", "--port", "abc"],
    ["stop", "--port", "70000"],
    ["status", "--port", "0"],
    ["who", "abc"],
    ["who", "70000"],
    ["free", "0"],
    ["free", "abc"],
    ["frobnicate"],
], ids=lambda a: " ".join(a))
def test_bad_input_exits_2_creating_nothing(portctl: Portctl, args: list[str]) -> None:
    result = portctl.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_one_clean_error(result)
    assert list(portctl.run_dir.iterdir()) == []


def test_bad_input_with_a_port_in_range_still_creates_nothing(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", port, "--host", "no.such.host.invalid", "--", *app("listener", "{port}"))
    assert result.returncode == 2 and list(portctl.run_dir.iterdir()) == []
    assert not accepts(port)


def test_a_missing_run_dir_is_bad_input_or_created_never_a_traceback(tmp_path: Path, portctl: Portctl) -> None:
    missing = Portctl(tmp_path / "does" / "not" / "exist", portctl._spawn)
    result = missing.run("status", "--json")
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- children that fail

@pytest.mark.parametrize("after", [0, 0.5])
def test_a_child_exiting_3_makes_start_exit_3(portctl: Portctl, after: float) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", port, "--", *app("exiter", 3, "--after", after))
    assert result.returncode == 3, result.stderr
    assert_one_clean_error(result)
    assert "code 3" in result.stderr
    assert portctl.nothing_left(port)


def test_a_child_exiting_0_before_it_ever_listened_is_a_failure(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", port, "--", *app("exiter", 0))
    assert result.returncode == 1, result.stderr
    assert_one_clean_error(result)
    assert "code 0" in result.stderr
    assert portctl.nothing_left(port)


@pytest.mark.parametrize("code", [0, 3])
def test_a_child_exiting_after_it_served_passes_its_code_on(portctl: Portctl, tmp_path: Path, code: int) -> None:
    port, quit_file = unused_port(), tmp_path / "quit"
    proc = portctl.serve(port, "--", *app("listener", "{port}", "--exit-on-file", quit_file, "--exit-code", code))
    wait_until(lambda: portctl.record(port).get("state") == "running", what="the instance to be running")
    quit_file.write_text("now")
    result, _, err = finish(proc, sig=0)
    assert result == code, err
    assert not accepts(port) and portctl.nothing_left(port)


def test_a_command_that_does_not_exist_fails_cleanly(portctl: Portctl, tmp_path: Path) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", port, "--", str(tmp_path / "no-such-program"))
    assert result.returncode > 0 and result.returncode not in (6, 7), result.stderr
    assert_one_clean_error(result)
    assert portctl.nothing_left(port)


@pytest.mark.parametrize("stubborn", [False, True], ids=["obeys-term", "ignores-term"])
def test_ready_timeout_exits_7_leaving_nothing(portctl: Portctl, tmp_path: Path, stubborn: bool) -> None:
    port, pid_file = unused_port(), tmp_path / "slow.pid"
    extra = ["--ignore-term"] if stubborn else []
    result = portctl.run("start", "--port", port, "--ready-timeout", 1, "--grace", 1,
                         "--", *app("slow", "--pid-file", pid_file, *extra))
    assert result.returncode == 7, result.stderr
    assert_one_clean_error(result)
    assert portctl.nothing_left(port)
    assert is_gone(int(wait_file(pid_file).read_text()))


# ----------------------------------------------------------------------------- already running: 6

def test_a_second_start_on_a_running_port_exits_6_and_changes_nothing(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    before = (portctl.pid_file(port).read_text(), portctl.record(port))
    result = portctl.run("start", "--port", port)
    assert result.returncode == 6, result.stderr
    assert_one_clean_error(result)
    assert (portctl.pid_file(port).read_text(), portctl.record(port)) == before
    assert proc.poll() is None and accepts(port)
    forced = portctl.run("start", "--port", port, "--force")
    assert forced.returncode == 6 and proc.poll() is None  # --force never steals from our own instance
    assert finish(proc)[0] == 0


# ----------------------------------------------------------------------------- stale and tampered files

def test_a_stale_pid_file_naming_a_live_bystander_is_replaced_with_a_warning(portctl: Portctl, bystander) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    portctl.pid_file(port).write_text(f"{bystander.pid}\n")
    proc = portctl.serve(port)
    assert portctl.pid_file(port).read_text() == f"{proc.pid}\n"
    assert untouched(bystander)
    code, out, err = finish(proc)
    assert code == 0 and "stale" in err.lower()  # the warning goes to stderr
    assert untouched(bystander)


def test_a_stale_record_naming_a_live_bystander_is_never_obeyed(portctl: Portctl, bystander) -> None:  # type: ignore[no-untyped-def]
    """A dead instance's record whose child pid now belongs to an unrelated process (same pid,
    same creation time, but not ours: no token) must not be 'reclaimed'."""
    import psutil

    port = unused_port()
    proc = portctl.serve(port)
    record = portctl.record(port)
    assert finish(proc)[0] == 0
    ident = {"pid": bystander.pid, "create_time": psutil.Process(bystander.pid).create_time()}
    record.update(supervisor=ident, child=ident)
    portctl.record_file(port).write_text(json.dumps(record))
    portctl.pid_file(port).write_text(f"{bystander.pid}\n")
    for args in (["status", "--json"], ["stop", "--port", port], ["clean"]):
        result = portctl.run(*args)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
    again = portctl.serve(port)
    assert finish(again)[0] == 0
    assert untouched(bystander)


def test_stop_with_a_stale_pid_file_signals_nothing(portctl: Portctl, bystander) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    portctl.pid_file(port).write_text(f"{bystander.pid}\n")
    result = portctl.run("stop", "--port", port)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert untouched(bystander) and not portctl.pid_file(port).exists()


def test_a_tampered_pid_file_cannot_aim_stop_at_a_bystander(portctl: Portctl, bystander) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    proc = portctl.serve(port)
    portctl.pid_file(port).write_text(f"{bystander.pid}\n")
    result = portctl.run("stop", "--port", port)
    assert result.returncode == 1, result.stderr
    assert str(bystander.pid) in result.stderr and str(proc.pid) in result.stderr
    assert_one_clean_error(result)
    assert untouched(bystander) and proc.poll() is None and accepts(port)
    assert finish(proc)[0] == 0  # the real instance still stops on its own signal
    assert untouched(bystander)


def test_a_tampered_record_cannot_aim_stop_at_a_bystander(portctl: Portctl, bystander) -> None:  # type: ignore[no-untyped-def]
    """Contract: a pid file edited to point at another process is refused, never obeyed. Here the
    record is edited too, consistently: the target is still not the process portctl recorded."""
    import psutil

    port = unused_port()
    proc = portctl.serve(port)
    record = portctl.record(port)
    record["supervisor"] = {"pid": bystander.pid, "create_time": psutil.Process(bystander.pid).create_time()}
    portctl.record_file(port).write_text(json.dumps(record))
    portctl.pid_file(port).write_text(f"{bystander.pid}\n")
    result = portctl.run("stop", "--port", port)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert untouched(bystander) and proc.poll() is None and accepts(port)
    assert finish(proc)[0] == 0
    assert untouched(bystander)


# ----------------------------------------------------------------------------- clean

def test_clean_removes_stale_files_and_dry_run_removes_nothing(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port, other = unused_port(), unused_port()
    dead = spawn([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    portctl.pid_file(port).write_text(f"{dead.pid}\n")
    portctl.record_file(port).write_text("{damaged")
    portctl.lock_file(port).write_text("")
    portctl.lock_file(other).write_text("")  # an unheld lock alone
    before = sorted(p.name for p in portctl.run_dir.iterdir())

    dry = portctl.run("clean", "--dry-run")
    assert dry.returncode == 0 and "Traceback" not in dry.stderr
    assert sorted(p.name for p in portctl.run_dir.iterdir()) == before
    assert str(port) in dry.stdout and "would remove" in dry.stdout

    real = portctl.run("clean")
    assert real.returncode == 0 and "Traceback" not in real.stderr
    assert list(portctl.run_dir.iterdir()) == []
    assert portctl.run("clean").returncode == 0  # nothing to do is success


def test_clean_keeps_a_running_instance(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    result = portctl.run("clean")
    assert result.returncode == 0
    assert portctl.read_pid(port) == proc.pid and portctl.lock_held(port) and accepts(port)
    assert portctl.record(port)["supervisor"]["pid"] == proc.pid
    assert finish(proc)[0] == 0


@pytest.mark.linux_refined  # uses the Linux death signal race-free
def test_clean_after_a_killed_supervisor_leaves_a_usable_port(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    proc.kill()
    proc.wait(timeout=30)
    wait_until(lambda: not accepts(port), what="the port to be released")
    result = portctl.run("clean")
    assert result.returncode == 0 and portctl.nothing_left(port)
    again = portctl.serve(port)
    assert finish(again)[0] == 0
