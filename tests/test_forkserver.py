"""Issue 13 §6: a project's supervisors forked by one server (core/forkserver.py,
platform/forking.py). Each is still its own process, session, pid file and lock; none holds a
descriptor of another's or of the server's; the server forks only while single-threaded,
exits once the command is done with it, and a launch still works without it. Real processes,
the CLI as users run it (`python -m portctl`, whose entry point starts the server early)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil
import pytest

from support.apps import app
from support.ports import free_ports
from support.portctl import run_entry, run_in, write_listeners_project
from support.processes import Popen
from support.waits import accepts, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.posix_only]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="supervisors are forked on Linux")


def supervisor_of(root: Path, port: int) -> int:
    return int((root / f".server_{port}.pid").read_text())


def fd_targets(pid: int) -> dict[str, str]:
    """fd number -> what it points at, from /proc/PID/fd."""
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def lock_holders(path: Path) -> set[int]:
    """The pids holding a flock on ``path``, from /proc/locks."""
    inode = path.stat().st_ino
    holders = set()
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()
            pid_at = 4 if fields[1] != "->" else 5
            if fields[pid_at + 1].split(":")[-1] == str(inode):
                holders.add(int(fields[pid_at]))
    return holders


@linux_only
def test_each_forked_supervisor_is_its_own_process_with_only_its_own_files(
        tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    root, ports = tmp_path / "proj", free_ports(3)
    write_listeners_project(root, ports)
    started = run_in(spawn, root, "start", "-d")
    try:
        assert started.returncode == 0, started.stderr
        pids = [supervisor_of(root, port) for port in ports]
        assert len(set(pids)) == 3
        command = "\0".join([sys.executable, "-m", "portctl", "start", "-d"]).encode() + b"\0"
        for pid, port in zip(pids, ports):
            # forked from the command itself (by the server the entry point forked), not a
            # daemon's interpreter nor a server's exec'd one
            assert Path(f"/proc/{pid}/cmdline").read_bytes() == command
            assert os.getsid(pid) == pid  # the leader of its own session: no terminal, no sibling's signals
            assert os.readlink(f"/proc/{pid}/cwd") == str(root)  # the run dir, as a daemon's
            assert lock_holders(root / f".server_{port}.lock") == {pid}
            targets = fd_targets(pid)
            locks = {t for t in targets.values() if ".server_" in t}
            assert locks == {str(root / f".server_{port}.lock")}, targets  # no sibling's lock file
            assert not any(t.startswith("socket:") for t in targets.values()), targets  # not the server's channel
            assert {targets[fd] for fd in ("0", "1", "2")} == {os.devnull}, targets
        # no pipe (a handshake pipe, a log pump's) is shared by two supervisors
        pipes = [{t for t in fd_targets(pid).values() if t.startswith("pipe:")} for pid in pids]
        assert not (pipes[0] & pipes[1] or pipes[0] & pipes[2] or pipes[1] & pipes[2]), pipes
        # the command and its server are gone: the only processes left with the command's
        # command line are the three supervisors, and they go on
        assert {p.pid for p in psutil.process_iter() if _cmdline(p.pid) == command} == set(pids)

        # kill $(cat .server_P.pid): that service stops, gracefully; the other two serve on
        os.kill(pids[1], signal.SIGTERM)
        wait_until(lambda: not (root / f".server_{ports[1]}.pid").exists() and not accepts(ports[1]), 30,
                   "the killed service's supervisor to stop it")
        assert accepts(ports[0]) and accepts(ports[2])
        rows = {r["name"]: r for r in json.loads(run_in(spawn, root, "status", "--json").stdout)}
        assert [rows[n]["state"] for n in ("s0", "s1", "s2")] == ["running", "stopped", "running"]
    finally:
        stopped = run_in(spawn, root, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not any(accepts(port) for port in ports)


@contextmanager
def launching_a_listener(root: Path) -> Iterator[tuple[Any, Any, int, Any]]:
    """Supervisors for the run dir ``root`` (its server started), the port and the spec of a
    detached listener to launch there; on leaving, the server is closed, the instance stopped
    and its port refusing."""
    from portctl.core.forkserver import Supervisors
    from portctl.core.runfiles import RunDir
    from portctl.core.spec import ServerSpec
    from portctl.core import stopping

    run_dir = RunDir(root)
    supervisors = Supervisors(run_dir)
    server = supervisors._server
    assert server is not None
    port = free_ports(1)[0]
    spec = ServerSpec.from_dict({"port": port, "command": app("listener", "{port}"), "name": "one",
                                 "detached": True})
    try:
        yield supervisors, server, port, spec
    finally:
        supervisors.close()
        stopping.stop(run_dir, port)
    assert not accepts(port)


@linux_only
def test_the_server_forks_single_threaded_and_exits_once_closed(tmp_path: Path) -> None:
    with launching_a_listener(tmp_path) as (supervisors, server, port, spec):
        outcome = supervisors.launch(spec, force=False)
        assert outcome.code == 0, outcome
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        assert "\nThreads:\t1\n" in status  # it forked, and still runs no thread of its own
        assert outcome.pid == supervisor_of(tmp_path, port) != server.process.pid
        supervisors.close()
        assert server.process.returncode == 0
        assert accepts(port)  # what it forked goes on


@linux_only
def test_fork_refuses_while_another_thread_runs() -> None:
    code = textwrap.dedent("""
        import socket, threading
        from portctl.platform import forking
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            forking.fork(a, b"x", b.fileno(), lambda data: 0)
        except RuntimeError as exc:
            print(exc)
        finally:
            stop.set()
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refusing to fork with 2 threads running"


@linux_only
def test_a_launch_without_its_server_runs_a_daemon_instead(tmp_path: Path) -> None:
    with launching_a_listener(tmp_path) as (supervisors, server, port, spec):
        server.process.kill()
        server.process.wait()
        outcome = supervisors.launch(spec, force=False)
        assert outcome.code == 0, outcome
        with open(f"/proc/{outcome.pid}/cmdline", "rb") as cmdline:
            assert b"portctl.core.daemon" in cmdline.read()


@pytest.mark.parametrize(("argv", "files", "expected"), [
    (["start", "-d"], {"portctl.toml": ""}, True),
    (["--run-dir", "x", "restart", "api"], {"Procfile": ""}, True),
    (["start", "-d"], {"pyproject.toml": "[tool.portctl.services.api]\n"}, True),
    (["start", "-d"], {"pyproject.toml": "[project]\nname = 'x'\n"}, False),
    (["start", "-d", "--", "uvicorn", "app:app"], {"portctl.toml": ""}, False),
    (["start", "--help"], {"portctl.toml": ""}, False),
    (["start", "-d", "--port", "8001"], {"portctl.toml": ""}, False),
    (["start", "api", "web", "--keep-going", "--force"], {"portctl.toml": ""}, True),
    (["stop"], {"portctl.toml": ""}, False),
    (["start"], {}, False),
])
def test_the_entry_point_guesses_a_project_start_from_file_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], files: dict[str, str],
        expected: bool) -> None:
    from portctl.face.entry import _may_start_a_project

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found upward, as the project is
    assert _may_start_a_project(argv) is expected


def test_the_entry_points_guess_never_waits_on_a_fifo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portctl.face.entry import _may_start_a_project

    os.mkfifo(tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    assert _may_start_a_project(["start", "-d"]) is False  # at once: nobody writes the FIFO


def test_a_projects_start_runs_without_click(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    """`start -d` in a project takes the entry's fast path: click is never imported (its import
    alone, ~30 ms, came before anything launched)."""
    root, ports = tmp_path / "proj", free_ports(2)
    write_listeners_project(root, ports)
    try:
        run = run_entry(spawn, root, "start", "-d")
        assert run.result.returncode == 0, run.result.stderr
        assert all(accepts(port) for port in ports)
        assert "portctl.face.entry" in run.modules and "portctl.project.run" in run.modules
        assert "click" not in run.modules and "portctl.face.cli" not in run.modules
    finally:
        stopped = run_in(spawn, root, "stop")
    assert stopped.returncode == 0, stopped.stderr


@linux_only
def test_the_server_forked_from_the_command_is_waited_for_once_closed(tmp_path: Path) -> None:
    """The entry point forks the command itself to be the server (no second interpreter);
    closing it waits for its exit, woken by a pidfd: nothing is left, not even a zombie."""
    code = textwrap.dedent("""
        import os
        from portctl.core import forkserver
        forkserver.start_early()
        server = forkserver._early
        pid = server.process.pid
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            print(pid, cmdline.read() == open("/proc/self/cmdline", "rb").read())
        server.close()
        print(os.path.exists(f"/proc/{pid}"))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.split()[1] == "True"  # the command forked, not a new interpreter
    assert second == "False"  # exited and reaped


@linux_only
def test_a_renamed_launchers_project_is_stopped_by_it(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    """Forked from the command, a supervisor carries the command's command line, and `stop`
    trusts only a supervisor whose command line names portctl. A launcher under another name
    (here `pc`) gets the exec'd server, whose command line does: its own `stop` works."""
    launcher = tmp_path / "bin" / "pc"
    launcher.parent.mkdir()
    launcher.write_text(f"#!{sys.executable}\nimport sys\nfrom portctl.face.entry import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    root, ports = tmp_path / "proj", free_ports(2)
    write_listeners_project(root, ports)
    env = {k: v for k, v in os.environ.items() if k != "PORTCTL_RUN_DIR"}

    def pc(*args: str) -> subprocess.CompletedProcess[str]:
        proc = spawn([str(launcher), *args], cwd=root, env=env, stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=90)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    started = pc("start", "-d")
    pids = [supervisor_of(root, port) for port in ports if (root / f".server_{port}.pid").exists()]
    try:
        assert started.returncode == 0, started.stderr
        for pid in pids:
            assert b"portctl" in Path(f"/proc/{pid}/cmdline").read_bytes()
        stopped = pc("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert not any(accepts(port) for port in ports)
    finally:
        for pid in pids:  # what a refused stop left running
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        wait_until(lambda: not any(accepts(port) for port in ports), 30, "the services to stop")


@linux_only
def test_a_command_running_threads_gets_the_execd_server(tmp_path: Path) -> None:
    """A program that calls the entry point from a process with other threads running must
    not fork (a lock another thread holds would stay held in the server): its server is
    `python -m portctl.core.forkserver`."""
    code = textwrap.dedent("""
        import threading, time
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        from portctl.core import forkserver
        forkserver.start_early()
        server = forkserver._early
        with open(f"/proc/{server.process.pid}/cmdline", "rb") as cmdline:
            print(cmdline.read().split(b"\\0")[1:3])
        server.close()
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[b'-m', b'portctl.core.forkserver']"
