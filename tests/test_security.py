"""A shared run dir (issue 9, section 1): another local user (`nobody`, through runuser) plants
files, symlinks and FIFOs in a world-writable run dir; root's portctl must refuse them (exit 1,
one line naming the path and its owner), never execute, follow, overwrite or hang. Also: names
are names, and a stray `flock` on a lock file is no supervisor."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from support.apps import app
from support.portctl import Portctl
from support.ports import unused_port
from support.processes import Popen
from support.waits import lock_held, wait_until
from portctl.errors import BadInput, PortctlError
from portctl.identity import ProcRef
from portctl.lock import PortLock
from portctl.runfiles import Record, RunDir
from portctl.spec import ServerSpec

HANG_S = 20.0  # a command that takes longer is hung (on a FIFO)

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="acting as another user needs root and runuser")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A world-writable, sticky run dir (like /tmp) that `nobody` can reach."""
    path = Path(tempfile.mkdtemp(prefix="portctl-shared-", dir="/tmp"))
    os.chmod(path, 0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def as_nobody(spawn: Callable[..., Popen]) -> Callable[..., None]:
    """``as_nobody(*argv, stdin="")``: run a command as `nobody` to completion (it must succeed)."""

    def run(*argv: object, stdin: str = "") -> None:
        proc = spawn(["runuser", "-u", "nobody", "--", *map(str, argv)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(stdin, timeout=HANG_S)
        assert proc.returncode == 0, (argv, out, err)

    return run


@pytest.fixture
def shared_portctl(shared: Path, spawn: Callable[..., Popen]) -> Portctl:
    return Portctl(shared, spawn)


def refused(result: subprocess.CompletedProcess, path: Path, owner: str = "nobody") -> None:  # type: ignore[type-arg]
    """Exit 1, one line on stderr naming ``path`` and its owner, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    assert str(path) in lines[0] and owner in lines[0], lines[0]


def write_as_nobody(as_nobody: Callable[..., None], path: Path, text: str) -> None:
    as_nobody("sh", "-c", 'cat > "$1"', "sh", path, stdin=text)


def record_json(port: int, command: list[str]) -> str:
    """A well-formed record of a dead instance on ``port`` that would run ``command``."""
    spec = ServerSpec(port=port, command=tuple(command))
    dead = ProcRef(2 ** 22 - 1, 1.0)
    record = Record(spec, dead, None, "2026-01-01T00:00:00+00:00", "/nowhere", "0" * 32, "running")
    return json.dumps(record.to_dict())


def stop_quietly(portctl: Portctl, port: int) -> None:
    """Undo what the old code would have started (the test is failing anyway)."""
    portctl.run("stop", "--port", port, timeout=HANG_S)


# ----------------------------------------------------------------------------- never execute theirs

@needs_root
def test_restart_never_runs_a_record_another_user_wrote(shared_portctl: Portctl, as_nobody, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, marker = unused_port(), tmp_path / "ran-as-root"
    record = shared_portctl.record_file(port)
    write_as_nobody(as_nobody, record, record_json(port, ["/bin/sh", "-c", f"touch {marker}"]))
    result = shared_portctl.run("restart", "--port", port, timeout=HANG_S)
    refused(result, record)
    assert not marker.exists()


@needs_root
def test_restart_never_runs_a_spec_another_user_wrote(shared_portctl: Portctl, as_nobody, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, marker = unused_port(), tmp_path / "ran-as-root"
    specs = shared_portctl.run_dir / ".portctl" / "specs"
    as_nobody("mkdir", "-p", specs)
    spec = ServerSpec(port=port, command=("/bin/sh", "-c", f"touch {marker}"))
    write_as_nobody(as_nobody, specs / f"{port}.json", json.dumps(spec.to_dict()))
    result = shared_portctl.run("restart", "--port", port, timeout=HANG_S)
    refused(result, shared_portctl.run_dir / ".portctl")
    assert not marker.exists()


# ----------------------------------------------------------------------------- never follow their links

@needs_root
@pytest.mark.parametrize("planted", ["links inside", "linked .portctl"])
def test_events_and_logs_never_go_through_planted_symlinks(shared_portctl: Portctl, as_nobody,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path, planted: str) -> None:
    port, run_dir = unused_port(), shared_portctl.run_dir
    elsewhere = tmp_path / "root-only"  # root's, outside the run dir
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_text("root's data\n")
    dot = run_dir / ".portctl"
    if planted == "links inside":
        as_nobody("mkdir", "-p", dot / "logs")
        as_nobody("ln", "-s", victim, dot / "events.jsonl")
        as_nobody("ln", "-s", victim, dot / "logs" / "web.log")
    else:
        as_nobody("ln", "-s", elsewhere, dot)
    try:
        result = shared_portctl.run("start", "-d", "--port", port, "--name", "web", "--ready-timeout", 10,
                                    "--", *app("listener", "{port}"), timeout=60)
        refused(result, dot)
    finally:
        stop_quietly(shared_portctl, port)
    assert victim.read_text() == "root's data\n"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["victim"]


@needs_root
def test_a_planted_temp_name_cannot_redirect_a_write(shared: Path, as_nobody, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The old temp name was `.server_P.pid.<pid>.tmp`: predictable, so a symlink planted there
    made root overwrite its target."""
    port, victim = unused_port(), tmp_path / "victim"
    victim.write_text("root's data\n")
    as_nobody("ln", "-s", victim, shared / f".server_{port}.pid.{os.getpid()}.tmp")
    RunDir(shared).write_pid(port, 12345)
    assert victim.read_text() == "root's data\n"
    assert (shared / f".server_{port}.pid").read_text() == "12345\n"


@needs_root
def test_the_lock_files_symlink_is_never_followed(shared_portctl: Portctl, as_nobody, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, target = unused_port(), tmp_path / "made-by-root"
    lock = shared_portctl.lock_file(port)
    as_nobody("ln", "-s", target, lock)
    try:
        result = shared_portctl.run("start", "-d", "--port", port, "--ready-timeout", 10,
                                    "--", *app("listener", "{port}"), timeout=60)
        refused(result, lock)
    finally:
        stop_quietly(shared_portctl, port)
    assert not target.exists()
    with pytest.raises(PortctlError, match="symbolic link"):
        PortLock(lock).acquire()
    assert not target.exists()


# ----------------------------------------------------------------------------- refuse what is not ours

@needs_root
@pytest.mark.parametrize("kind", ["pid", "json"])
def test_a_fifo_run_file_is_refused_never_waited_on(shared_portctl: Portctl, as_nobody, kind: str) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    fifo = shared_portctl.run_dir / f".server_{port}.{kind}"
    as_nobody("mkfifo", fifo)
    try:
        for args in (["status"], ["stop", "--port", port], ["clean"],
                     ["start", "-d", "--port", port, "--ready-timeout", 2, "--grace", 1,
                      "--", *app("listener", "{port}")]):
            refused(shared_portctl.run(*args, timeout=HANG_S), fifo)
    finally:
        stop_quietly(shared_portctl, port)
    assert not lock_held(shared_portctl.lock_file(port))


@needs_root
def test_a_run_file_of_another_user_is_refused(shared_portctl: Portctl, as_nobody) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    pid_file = shared_portctl.pid_file(port)
    write_as_nobody(as_nobody, pid_file, f"{os.getpid()}\n")
    for args in (["status"], ["status", "--port", port, "--json"], ["stop", "--port", port]):
        refused(shared_portctl.run(*args, timeout=HANG_S), pid_file)


@pytest.mark.parametrize("what", ["pid file", ".portctl"])
def test_a_run_file_others_may_write_is_refused(portctl: Portctl, what: str) -> None:
    port = unused_port()
    if what == "pid file":
        path, args = portctl.pid_file(port), ["status", "--port", port]
        path.write_text(f"{os.getpid()}\n")
    else:
        path, args = portctl.run_dir / ".portctl", ["restart", "--port", port]
        (path / "specs").mkdir(parents=True)
        spec = ServerSpec(port=port, command=tuple(app("listener", "{port}")))
        (path / "specs" / f"{port}.json").write_text(json.dumps(spec.to_dict()))
    path.chmod(0o666 if path.is_file() else 0o777)
    result = portctl.run(*args, timeout=HANG_S)
    refused(result, path, owner=_me())
    assert "0666" in result.stderr or "0777" in result.stderr


# ----------------------------------------------------------------------------- names are names

@pytest.mark.parametrize("name", ["../../../escape", "/tmp/portctl-abs-escape", ".hidden", "a" * 65, "sp ace", ""])
def test_a_name_that_is_no_name_is_bad_input(portctl: Portctl, tmp_path: Path, name: str) -> None:
    port = unused_port()
    if name == "":  # the CLI's default: derived from the command; the library refuses it given
        with pytest.raises(BadInput):
            RunDir(tmp_path).log_file(name)
        return
    outside = [tmp_path / "escape.log", Path("/tmp/portctl-abs-escape.log")]
    try:
        result = portctl.run("start", "-d", "--port", port, "--name", name, "--ready-timeout", 10,
                             "--", *app("listener", "{port}"), timeout=60)
    finally:
        stop_quietly(portctl, port)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not any(p.exists() for p in outside)
    with pytest.raises(BadInput) as raised:
        ServerSpec(name=name)
    assert raised.value.exit_code == 2


def test_a_record_with_a_bad_name_is_stale_not_an_error(tmp_path: Path) -> None:
    port = unused_port()
    data = json.loads(record_json(port, ["true"]))
    data["name"] = "../../x"
    (tmp_path / f".server_{port}.json").write_text(json.dumps(data))
    assert RunDir(tmp_path).read_record(port) is None


# ----------------------------------------------------------------------------- a stray flock is no supervisor

@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("flock") is None,
                    reason="needs /proc/locks and flock(1)")
def test_a_stray_flock_over_a_stale_record_is_no_supervisor(portctl: Portctl, spawn: Callable[..., Popen]) -> None:
    port = unused_port()
    supervisor = portctl.serve(port, "--", *app("listener", "{port}"))
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait(timeout=HANG_S)
    wait_until(lambda: not portctl.lock_held(port), what="the dead supervisor's lock to go")
    assert portctl.record(port) and portctl.read_pid(port) == supervisor.pid  # a stale record
    stray = spawn(["flock", "--nonblock", portctl.lock_file(port), "sleep", "60"])
    wait_until(lambda: portctl.lock_held(port) or stray.poll() is not None, what="flock to hold the lock")
    assert stray.poll() is None

    status = portctl.run("status", "--port", port, "--json")
    assert status.returncode == 3, status.stdout + status.stderr
    assert [row["state"] for row in json.loads(status.stdout)] == ["stale"]

    start = portctl.run("start", "--port", port, "--", *app("listener", "{port}"))
    lines = start.stderr.strip().splitlines()
    assert start.returncode == 1 and len(lines) == 1, start.stderr
    assert f"pid {stray.pid}" in lines[0] and "not a portctl" in lines[0]

    stop = portctl.run("stop", "--port", port)
    lines = stop.stderr.strip().splitlines()
    assert stop.returncode == 1 and len(lines) == 1, stop.stderr
    assert (f"the lock holder (pid {stray.pid}) is not the recorded supervisor (pid {supervisor.pid})"
            in lines[0])
    assert stray.poll() is None  # nothing was signalled


# ----------------------------------------------------------------------------- reading: no symlink either

def test_a_symlinked_portctl_is_never_read_through(portctl: Portctl, tmp_path: Path) -> None:
    port, elsewhere = unused_port(), tmp_path / "elsewhere"
    (elsewhere / "specs").mkdir(parents=True)
    spec = ServerSpec(port=port, command=("/bin/sh", "-c", f"touch {tmp_path / 'ran'}"))
    (elsewhere / "specs" / f"{port}.json").write_text(json.dumps(spec.to_dict()))
    (portctl.run_dir / ".portctl").symlink_to(elsewhere)
    with pytest.raises(PortctlError, match="symbolic link"):  # safefile.UnsafeFile
        RunDir(portctl.run_dir).read_spec(port)
    result = portctl.run("restart", "--port", port, timeout=HANG_S)
    refused(result, portctl.run_dir / ".portctl", owner=_me())
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("command", [["logs", "web"], ["events"]])
def test_logs_and_events_are_never_read_through_a_symlink(portctl: Portctl, tmp_path: Path,
                                                         command: list[str]) -> None:
    secret = tmp_path / "secret"
    secret.write_text("the secret\n")
    logs = portctl.run_dir / ".portctl" / "logs"
    logs.mkdir(parents=True)
    (logs / "web.log").symlink_to(secret)
    (logs.parent / "events.jsonl").symlink_to(secret)
    result = portctl.run(*command, timeout=HANG_S)
    path = logs / "web.log" if command[0] == "logs" else logs.parent / "events.jsonl"
    refused(result, path, owner=_me())
    assert "the secret" not in result.stdout


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def test_a_consistently_edited_record_names_the_real_reason(portctl: Portctl, bystander) -> None:  # type: ignore[no-untyped-def]
    """Record and pid file both edited to name a bystander: the lock holder says who is real."""
    import psutil

    port = unused_port()
    proc = portctl.serve(port, "--", *app("listener", "{port}"))
    record = portctl.record(port)
    record["supervisor"] = {"pid": bystander.pid, "create_time": psutil.Process(bystander.pid).create_time()}
    portctl.record_file(port).write_text(json.dumps(record))
    portctl.pid_file(port).write_text(f"{bystander.pid}\n")
    result = portctl.run("stop", "--port", port, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"the lock holder (pid {proc.pid}) is not the recorded supervisor (pid {bystander.pid})" in lines[0]
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=HANG_S) == 0
