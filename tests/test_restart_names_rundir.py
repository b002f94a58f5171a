"""`restart` keeps its promise (recorded executable, environment and cwd; start's options;
a check before stopping), NAME arguments and bare `stop`/`restart`, unique live names,
`--port-range` alone, and the run dir found upward (and never the child's cwd). Real
processes, end to end."""
from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator, Optional

import psutil
import pytest

from portctl.core.events import read_events

from support.apps import APPS, app
from support.portctl import Portctl, finish
from support.ports import free_block, free_ports, unused_port
from support.processes import Popen
from support.waits import accepts

pytestmark = pytest.mark.timeout(180)


# ----------------------------------------------------------------------------- helpers

@pytest.fixture
def stops(portctl: Portctl) -> Iterator[list[int]]:
    """Ports whose detached instances the test started: stopped at the end, whatever happened."""
    ports: list[int] = []
    yield ports
    for port in ports:
        portctl.run("stop", "--port", port)


def child(portctl: Portctl, port: int) -> Optional[int]:
    return (portctl.record(port).get("child") or {}).get("pid")


def detached(portctl: Portctl, port: int, *args: object, env: Optional[dict[str, str]] = None) -> int:
    """``start -d --port PORT ARGS``; returns the child's pid."""
    result = portctl.run("start", "-d", "--port", port, *args, env=env)
    assert result.returncode == 0, result.stderr
    pid = child(portctl, port)
    assert pid is not None and accepts(port)
    return pid


def run_in(spawn: Callable[..., Popen], cwd: Path, *args: object, run_dir: Optional[Path] = None,
           env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """portctl ARGS from ``cwd``; without ``run_dir``, no --run-dir and no PORTCTL_RUN_DIR."""
    where = ["--run-dir", str(run_dir)] if run_dir else []
    full_env = {"PORTCTL_RUN_DIR": "", **(env or {})}
    proc = spawn([sys.executable, "-m", "portctl", *where, *map(str, args)], env=full_env, cwd=cwd,
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=90)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A bin dir holding `myserver` (the listener app), as a venv's bin holds `uvicorn`."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "myserver"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
                      f"{shlex.quote(str(APPS / 'listener.py'))} \"$@\"\n")
    script.chmod(0o755)
    return bin_dir, script


def venv_shell(bin_dir: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}", **extra}


# ----------------------------------------------------------------------------- 1. restart's promise

@pytest.mark.skipif(os.name != "posix", reason="a shell script stands for the venv's entry point")
def test_restart_from_a_shell_without_the_venv_runs_the_recorded_executable_and_env(
        portctl: Portctl, tmp_path: Path, stops: list[int]) -> None:
    """Seen: `restart` from a shell without the venv stopped the healthy server, then failed
    with `cannot run 'myserver'`. The executable and environment recorded at start are used."""
    bin_dir, _ = fake_venv(tmp_path)
    port, secret = unused_port(), uuid.uuid4().hex
    stops.append(port)
    first = detached(portctl, port, "--", "myserver", "{port}", env=venv_shell(bin_dir, APP_SECRET=secret))
    result = portctl.run("restart", "--port", port)  # this shell: no venv on PATH, no APP_SECRET
    assert result.returncode == 0, result.stderr
    second = child(portctl, port)
    assert second not in (None, first) and accepts(port)
    env = psutil.Process(second).environ()
    assert env.get("APP_SECRET") == secret and str(bin_dir) in env["PATH"]
    assert portctl.record(port)["command"][0] == "myserver"  # shown as it was given


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands for the venv's entry point")
def test_restart_update_env_takes_this_shells_environment(portctl: Portctl, tmp_path: Path,
                                                          stops: list[int]) -> None:
    bin_dir, _ = fake_venv(tmp_path)
    port = unused_port()
    stops.append(port)
    first = detached(portctl, port, "--", "myserver", "{port}", env=venv_shell(bin_dir, APP_SECRET="one"))
    # this shell cannot run it: refused before anything is stopped
    refused = portctl.run("restart", "--port", port, "--update-env")
    assert refused.returncode == 1 and "myserver" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert child(portctl, port) == first and accepts(port)
    result = portctl.run("restart", "--port", port, "--update-env", env=venv_shell(bin_dir, APP_SECRET="two"))
    assert result.returncode == 0, result.stderr
    assert psutil.Process(child(portctl, port)).environ().get("APP_SECRET") == "two"


@pytest.mark.skipif(os.name != "posix", reason="the execute bit")
@pytest.mark.parametrize("breakage", ["not executable", "removed"])
def test_restart_checks_the_command_before_stopping_a_healthy_instance(
        portctl: Portctl, tmp_path: Path, stops: list[int], breakage: str) -> None:
    bin_dir, script = fake_venv(tmp_path)
    port = unused_port()
    stops.append(port)
    first = detached(portctl, port, "--", "myserver", "{port}", env=venv_shell(bin_dir))
    if breakage == "removed":
        script.unlink()
    else:
        script.chmod(0o644)
    result = portctl.run("restart", "--port", port, env=venv_shell(bin_dir))
    assert result.returncode == 1, result.stderr
    assert str(script) in result.stderr and "left as it is" in result.stderr
    assert child(portctl, port) == first and accepts(port)  # still the same healthy instance


def test_the_saved_spec_holds_the_environment_readable_by_its_owner_only(portctl: Portctl,
                                                                         stops: list[int]) -> None:
    port, secret = unused_port(), uuid.uuid4().hex
    stops.append(port)
    detached(portctl, port, "--", *app("listener", "{port}"), env={"APP_SECRET": secret})
    spec_file = portctl.run_dir / ".portctl" / "specs" / f"{port}.json"
    assert stat.S_IMODE(spec_file.stat().st_mode) == 0o600
    saved = json.loads(spec_file.read_text())
    assert saved["env"]["APP_SECRET"] == secret and Path(saved["executable"]).is_absolute()
    assert secret not in portctl.record_file(port).read_text()  # the record is not 0600: no env there


# ----------------------------------------------------------------------------- 2. start's options

def test_restart_takes_start_options_and_a_new_command(portctl: Portctl, stops: list[int]) -> None:
    port = unused_port()
    stops.append(port)
    foreground = portctl.serve(port, "--name", "one", "--grace", "3", "--", *app("listener", "{port}"))
    result = portctl.run("restart", "--port", port, "--force", "-d", "--grace", "1",
                         "--", *app("listener", "{port}", "--exit-after", "90"))
    assert result.returncode == 0, result.stderr
    assert finish(foreground, sig=0)[0] == 0  # the foreground supervisor was stopped gracefully
    record = portctl.record(port)
    assert record["detached"] is True and record["restart"] == "on-failure"  # -d's default follows
    assert record["grace_s"] == 1.0 and record["name"] == "one"  # given replaced, others kept
    assert record["command"][-2:] == ["--exit-after", "90"] and accepts(port)


def test_restart_with_nothing_recorded_and_a_command_starts_it(portctl: Portctl, stops: list[int]) -> None:
    port = unused_port()
    stops.append(port)
    result = portctl.run("restart", "--port", port, "-d", "--name", "fresh", "--", *app("listener", "{port}"))
    assert result.returncode == 0, result.stderr
    assert accepts(port) and portctl.record(port)["name"] == "fresh"


# ----------------------------------------------------------------------------- 3. which instance

def test_bare_stop_and_restart_act_on_the_only_instance(portctl: Portctl, stops: list[int]) -> None:
    """Seen: bare `stop` said "nothing running on port 8000" while another port served."""
    port = unused_port()
    stops.append(port)
    first = detached(portctl, port, "--name", "solo", "--", *app("listener", "{port}"))
    result = portctl.run("restart")
    assert result.returncode == 0, result.stderr
    assert child(portctl, port) not in (None, first) and accepts(port)
    result = portctl.run("stop")
    assert result.returncode == 0 and f"port {port} stopped" in result.stdout, result.stdout
    assert not accepts(port) and portctl.nothing_left(port)


def test_bare_stop_and_restart_never_guess_among_several(portctl: Portctl, stops: list[int]) -> None:
    api, web = free_ports(2)
    stops.extend([api, web])
    children = {api: detached(portctl, api, "--name", "api"), web: detached(portctl, web, "--name", "web")}
    for verb in ("stop", "restart"):
        result = portctl.run(verb)
        assert result.returncode == 2, (verb, result.stderr)
        assert all(word in result.stderr for word in ("api", "web", str(api), str(web)))
    assert {port: child(portctl, port) for port in children} == children  # nothing was touched
    result = portctl.run("restart", "api", "web")  # detached ones restart together
    assert result.returncode == 0, result.stderr
    assert all(child(portctl, port) not in (None, pid) for port, pid in children.items())
    status = portctl.run("status", "api", "--json")
    assert status.returncode == 0 and [row["port"] for row in json.loads(status.stdout)] == [api]
    assert portctl.run("status", "nope").returncode == 3
    assert portctl.run("-v", "status", "web").returncode == 0  # the click path agrees
    result = portctl.run("stop", "api", "web")
    assert result.returncode == 0, result.stderr
    assert not accepts(api) and not accepts(web)
    assert portctl.run("status", "api").returncode == 3


def test_bare_stop_and_restart_with_nothing_running(portctl: Portctl) -> None:
    result = portctl.run("stop")
    assert result.returncode == 0 and "nothing running in" in result.stdout
    result = portctl.run("restart")
    assert result.returncode == 1 and "nothing is running in" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_restart_by_name_after_a_stop(portctl: Portctl, stops: list[int]) -> None:
    port = unused_port()
    stops.append(port)
    detached(portctl, port, "--name", "api")
    assert portctl.run("stop", "api").returncode == 0 and not accepts(port)
    result = portctl.run("restart", "api")  # the spec saved under that name
    assert result.returncode == 0, result.stderr
    assert accepts(port) and portctl.record(port)["name"] == "api"
    result = portctl.run("restart", "api", "--", *app("listener", "{port}", "--exit-after", "77"))
    assert result.returncode == 0, result.stderr  # NAME before --, the new command after it
    assert portctl.record(port)["command"][-2:] == ["--exit-after", "77"]
    assert portctl.record(port)["name"] == "api" and accepts(port)


# ----------------------------------------------------------------------------- 4. unique names

def test_a_second_live_instance_with_the_same_name_is_refused(portctl: Portctl, stops: list[int]) -> None:
    first_port, second_port, third_port = free_ports(3)
    stops.extend([first_port, second_port])
    detached(portctl, first_port, "--name", "api")
    supervisor = portctl.read_pid(first_port)
    again = portctl.run("start", "-d", "--port", second_port, "--name", "api")
    assert again.returncode == 6, again.stderr
    assert str(first_port) in again.stderr and str(supervisor) in again.stderr
    assert not accepts(second_port) and not portctl.pid_file(second_port).exists()
    foreground = portctl.run("start", "--port", third_port, "--name", "api")
    assert foreground.returncode == 6 and not accepts(third_port)
    assert portctl.run("stop", "api").returncode == 0
    detached(portctl, second_port, "--name", "api")  # free again once the first is gone


def test_a_name_derived_from_the_command_gets_the_port_when_taken(portctl: Portctl, stops: list[int]) -> None:
    """Nobody chose a derived name: the same command on two ports runs, as listener and listener-PORT,
    each with its own log (seen: three instances shared one log, and `port` picked one silently)."""
    first, second = free_ports(2)
    stops.extend([first, second])
    detached(portctl, first, "--", *app("listener", "{port}"))
    result = portctl.run("start", "-d", "--port", second, "--", *app("listener", "{port}"))
    assert result.returncode == 0, result.stderr
    name = portctl.record(first)["name"]  # listener.py
    assert f"{name}-{second}" in result.stderr  # said, once
    assert portctl.record(second)["name"] == f"{name}-{second}"
    assert portctl.record(first)["log"] != portctl.record(second)["log"]
    assert portctl.run("port", f"{name}-{second}").stdout.strip() == str(second)
    assert portctl.run("restart", f"{name}-{second}").returncode == 0
    assert portctl.record(second)["name"] == f"{name}-{second}"  # a restart keeps it


def test_concurrent_starts_with_one_name_have_one_winner(portctl: Portctl, stops: list[int]) -> None:
    ports = free_ports(4)
    stops.extend(ports)
    procs = [portctl.launch("start", "-d", "--port", port, "--name", "api") for port in ports]
    codes = [finish(proc, sig=0)[0] for proc in procs]
    assert sorted(codes) == [0, 6, 6, 6], codes
    assert sum(accepts(port) for port in ports) == 1


# ----------------------------------------------------------------------------- 5. --port-range

@pytest.mark.parametrize("port_args", [[], ["--port", "auto"]], ids=["range alone", "auto and range"])
def test_port_range_without_a_port_starts_inside_it(portctl: Portctl, stops: list[int],
                                                    port_args: list[str]) -> None:
    base = free_block(4, avoid={8000})
    stops.extend(range(base, base + 4))
    result = portctl.run("start", "-d", *port_args, "--port-range", f"{base}-{base + 3}", "--name", "front")
    assert result.returncode == 0, result.stderr
    port = int(portctl.run("port", "front").stdout)
    assert base <= port <= base + 3 and accepts(port)
    # 8000 was never the preferred port (when it is busy, the old code moved off it: an event)
    moved = [e for e in read_events(portctl.run_dir) if e["event"] == "port_changed"]
    assert not any(e.get("previous") == 8000 for e in moved), moved


def test_a_one_number_port_range_is_bad_input(portctl: Portctl) -> None:
    result = portctl.run("start", "--port-range", "1421", "--", sys.executable, "-c", "pass")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "1421" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert list(portctl.run_dir.iterdir()) == []


# ----------------------------------------------------------------------------- 6. the run dir found

@pytest.mark.parametrize("marker", [".portctl", "portctl.toml", "pyproject.toml"])
def test_commands_from_a_subdirectory_find_the_run_dir(spawn: Callable[..., Popen], tmp_path: Path,
                                                       marker: str) -> None:
    """Seen: from a subdirectory `status` was empty and `stop --port P` said "nothing running"."""
    project = tmp_path / "project"
    deeper = project / "sub" / "deeper"
    deeper.mkdir(parents=True)
    if marker == "portctl.toml":
        (project / marker).write_text("")
    elif marker == "pyproject.toml":
        (project / marker).write_text('[project]\nname = "x"\n\n[tool.portctl]\n')
    port = unused_port()
    start_in = project if marker == ".portctl" else project / "sub"  # .portctl/: made by start
    started = run_in(spawn, start_in, "start", "-d", "--port", port, "--name", "found",
                     "--", *app("listener", "{port}"))
    try:
        assert started.returncode == 0, started.stderr
        assert (project / f".server_{port}.pid").exists()
        fast = run_in(spawn, deeper, "status", "--json")
        assert [row["port"] for row in json.loads(fast.stdout)] == [port], fast.stderr
        assert run_in(spawn, deeper, "port", "found").stdout.strip() == str(port)
        slow = run_in(spawn, deeper, "-v", "status", "--json")  # the click path agrees
        assert [row["port"] for row in json.loads(slow.stdout)] == [port], slow.stderr
        stopped = run_in(spawn, deeper, "stop", "--port", port)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout
        assert not accepts(port)
    finally:
        for run_dir in (project, start_in):  # the old code took the directory it ran in
            run_in(spawn, run_dir, "stop", "--port", port, run_dir=run_dir)


# ----------------------------------------------------------------------------- 7. the child's cwd

def test_the_child_runs_where_start_ran_not_in_the_run_dir(portctl: Portctl, spawn: Callable[..., Popen],
                                                          tmp_path: Path, stops: list[int]) -> None:
    """Seen: --run-dir silently became the child's working directory."""
    work, elsewhere, other = tmp_path / "work", tmp_path / "elsewhere", tmp_path / "other"
    for folder in (work, elsewhere, other):
        folder.mkdir()
    port = unused_port()
    stops.append(port)
    started = run_in(spawn, work, "start", "-d", "--port", port, "--", *app("listener", "{port}"),
                     run_dir=portctl.run_dir)
    assert started.returncode == 0, started.stderr
    assert psutil.Process(child(portctl, port)).cwd() == str(work)
    again = run_in(spawn, elsewhere, "restart", "--port", port, run_dir=portctl.run_dir)
    assert again.returncode == 0, again.stderr
    assert psutil.Process(child(portctl, port)).cwd() == str(work)  # recorded, not the restarting shell's
    moved = run_in(spawn, elsewhere, "restart", "--port", port, "--cwd", other, run_dir=portctl.run_dir)
    assert moved.returncode == 0, moved.stderr
    assert psutil.Process(child(portctl, port)).cwd() == str(other)


# ----------------------------------------------------------------------------- pure logic and fast path

def test_find_run_dir_walks_up_to_the_nearest_marker(tmp_path: Path) -> None:
    from portctl.core.runfiles import find_run_dir

    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    deep = inner / "a" / "b"
    deep.mkdir(parents=True)
    assert find_run_dir(deep) in (deep, *deep.parents)  # nothing marked here: here, or a marked ancestor
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n# [tool.portctl] in a comment\n')
    (outer / ".portctl").mkdir()
    assert find_run_dir(deep) == outer  # a pyproject without the table is no project file
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.portctl.services.api]\nport = 1\n')
    assert find_run_dir(deep) == inner


def test_a_restart_keeps_the_recorded_executable_unless_the_command_or_environment_changes(
        tmp_path: Path) -> None:
    from portctl.base.frozen import replace
    from portctl.core.spec import ServerSpec, restarted

    spec = ServerSpec(command=("myserver", "{port}"), cwd=str(tmp_path), executable="/opt/venv/bin/myserver",
                      env=(("PATH", "/opt/venv/bin"),), detached=False, restart="no")
    kept = restarted(spec, {"grace_s": 1.0}, shell_env=False)
    assert kept.executable == "/opt/venv/bin/myserver" and kept.env == spec.env and kept.grace_s == 1.0
    assert kept.argv()[0] == "/opt/venv/bin/myserver"
    detached = restarted(spec, {"detached": True}, shell_env=False)
    assert detached.restart == "on-failure"  # the default mode follows -d ...
    chosen = restarted(replace(spec, restart="always"), {"detached": True}, shell_env=False)
    assert chosen.restart == "always"  # ... a chosen one stays
    fresh = restarted(spec, {}, shell_env=True)
    assert dict(fresh.env or ()) == dict(os.environ) and fresh.executable != spec.executable


@pytest.mark.parametrize("args", [["status"], ["status", "api"], ["status", "api", "--port", "8000", "--json"],
                                  ["port", "api"]])
def test_the_fast_path_takes_names_and_finds_the_run_dir_without_loading_anything_heavy(
        args: list[str], spawn: Callable[..., Popen]) -> None:
    from test_fast_paths import HEAVY, _modules

    baseline = _modules(spawn, "")
    loaded = _modules(spawn, f"from portctl.face.entry import main\nsys.argv = {['portctl', *args]!r}\nmain()")
    assert "portctl.face.entry" in loaded and "portctl.face.cli" not in loaded
    assert (loaded - baseline) & HEAVY == set()
