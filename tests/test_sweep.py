"""`portctl clean --sweep`: the strays of a project's services, found by their command line
and working directory, listed, and stopped only with --force; portctl's own processes never.
Real processes through the tracker: each stray runs a look-alike `python main.py TAG` whose TAG
(unique per test) keeps other processes of the machine out of the patterns' reach."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Callable

import psutil
import pytest

from support.portctl import Portctl
from support.ports import unused_port
from support.processes import Popen, is_gone
from support.waits import accepts, wait_file, wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.posix_only]

MAIN = "import os, sys, time\nopen(sys.argv[2], 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
LISTENING_MAIN = ("import socket, sys, time\nsock = socket.socket()\nsock.bind(('127.0.0.1', int(sys.argv[2])))\n"
                  "sock.listen()\ntime.sleep(60)\n")


class Project:
    """A project in ``root`` (the run dir too) whose service ``backend`` sweeps
    ``python.*main\\.py TAG``, and a way to start look-alike strays in any directory."""

    def __init__(self, root: Path, spawn: Callable[..., Popen], portctl: Portctl) -> None:
        self.root, self._spawn, self.portctl = root, spawn, portctl
        self.tag = f"sweep-{uuid.uuid4().hex}"
        (root / "backend").mkdir()
        (root / "portctl.toml").write_text(textwrap.dedent(f"""
            [services.backend]
            command = "python main.py"
            cwd = "backend"
            grace = 2
            sweep = ['[Pp]ython.*main\\.py {self.tag}', 'never-matches-{self.tag}']

            [services.frontend]
            command = "node server.js"
            """))

    def stray(self, where: Path) -> Popen:
        """``python main.py TAG PIDFILE`` running in ``where``; returns once it runs."""
        where.mkdir(parents=True, exist_ok=True)
        (where / "main.py").write_text(MAIN)
        pid_file = where / f"{uuid.uuid4().hex}.pid"
        proc = self._spawn([sys.executable, "main.py", self.tag, str(pid_file)], cwd=where)
        wait_file(pid_file)
        return proc

    def clean(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """`portctl clean --sweep ARGS` run from ``cwd`` (default: a subdirectory of the root)."""
        proc = self._spawn(self.portctl.argv("clean", "--sweep", *args), cwd=cwd or self.root / "backend",
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def project(run_dir: Path, spawn: Callable[..., Popen], portctl: Portctl) -> Project:
    return Project(run_dir, spawn, portctl)


def gone(proc: Popen) -> bool:
    wait_until(lambda: is_gone(proc), 30, f"pid {proc.pid} to exit")
    return True


def test_force_stops_a_stray_inside_the_project_and_spares_one_elsewhere(project: Project, tmp_path: Path) -> None:
    inside = project.stray(project.root / "backend")
    elsewhere = project.stray(tmp_path / "elsewhere")
    result = project.clean("backend", "--force")
    assert result.returncode == 0, result.stderr
    assert str(inside.pid) in result.stdout and str(elsewhere.pid) not in result.stdout
    assert "stopped 1 stray" in result.stdout and str(project.root / "backend") in result.stdout
    assert gone(inside)
    assert inside.returncode is not None  # TERM ended it: python's default action
    assert not is_gone(elsewhere)


def test_anywhere_reaches_the_same_command_line_in_another_directory(project: Project, tmp_path: Path) -> None:
    elsewhere = project.stray(tmp_path / "elsewhere")
    assert project.clean("--force").returncode == 0 and not is_gone(elsewhere)
    result = project.clean("--anywhere", "--force")
    assert result.returncode == 0, result.stderr
    assert str(elsewhere.pid) in result.stdout and gone(elsewhere)


@pytest.mark.parametrize("args", [(), ("--dry-run",), ("--dry-run", "--force")])
def test_without_force_or_with_dry_run_it_only_lists(project: Project, args: tuple[str, ...]) -> None:
    stray = project.stray(project.root / "backend" / "deep")
    result = project.clean(*args)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(str(stray.pid)))
    assert "backend" in line and "main.py" in line and project.tag in line
    assert "nothing stopped" in result.stdout if "--dry-run" in args else "add --force" in result.stdout
    assert not is_gone(stray)


def test_a_whole_tree_is_stopped(project: Project) -> None:
    """A stray's children go with it, even those that do not match."""
    where = project.root / "backend"
    (where / "main.py").write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[2], 'w').write(str(child.pid))\n"
        "time.sleep(60)\n")
    pid_file = where / "child.pid"
    parent = project._spawn([sys.executable, "main.py", project.tag, str(pid_file)], cwd=where)
    child = int(wait_file(pid_file).read_text())
    assert project.clean("--force").returncode == 0
    assert gone(parent) and wait_until(lambda: is_gone(child), 30, "the stray's child to exit")


def test_portctl_instances_are_never_swept(project: Project) -> None:
    """An instance whose child and whose supervisor's command line match the patterns stays;
    a stray beside it goes."""
    port = unused_port()
    where = project.root / "backend"
    (where / "main.py").write_text(LISTENING_MAIN)
    supervisor = project.portctl.serve(port, "--name", "backend", "--cwd", str(where), "--",
                                       sys.executable, "main.py", project.tag, str(port))
    child = project.portctl.record(port)["child"]["pid"]
    stray = project.stray(project.root / "backend" / "stray")
    result = project.clean("--force", "--anywhere")
    assert result.returncode == 0, result.stderr
    assert str(stray.pid) in result.stdout and gone(stray)
    assert "stopped 1 stray" in result.stdout
    assert str(supervisor.pid) not in result.stdout and str(child) not in result.stdout
    assert supervisor.poll() is None and not is_gone(child) and accepts(port)
    assert project.portctl.run("stop", "--port", port).returncode == 0


def test_production_lists_but_refuses_to_stop(project: Project) -> None:
    stray = project.stray(project.root / "backend")
    proc = project._spawn(project.portctl.argv("clean", "--sweep", "--force"), cwd=project.root,
                          env={"ENVIRONMENT": "production"}, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert str(stray.pid) in out and f"refusing to stop pid {stray.pid}" in err
    assert not is_gone(stray)


def test_nothing_found(project: Project) -> None:
    result = project.clean()
    assert result.returncode == 0 and f"no strays of backend under {project.root}" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("frontend",), "no sweep patterns for frontend"),
    (("bakend",), "did you mean 'backend'?"),
])
def test_bad_names(project: Project, args: tuple[str, ...], message: str) -> None:
    result = project.clean(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_options_need_sweep_and_a_project(project: Project, portctl: Portctl, tmp_path: Path) -> None:
    misuse = portctl.run("clean", "--force")
    assert misuse.returncode == 2 and "--sweep" in misuse.stderr
    outside = tmp_path / "outside"
    outside.mkdir()
    result = project.clean(cwd=outside)
    assert result.returncode == 2 and "no project file" in result.stderr


def test_runs_portctl() -> None:
    from portctl.project.sweep import age, runs_portctl

    assert runs_portctl(["/usr/bin/python3", "-m", "portctl", "start"])
    assert runs_portctl(["/usr/bin/python3", "-m", "portctl.daemon", "/run"])
    assert runs_portctl(["/home/me/.venv/bin/portctl", "start", "-d"])
    assert runs_portctl(["python3", "/home/me/.venv/bin/portctl", "start"])
    assert runs_portctl(["C:\\Py\\Scripts\\portctl.exe", "start"])
    assert not runs_portctl(["python", "main.py", "--portctl"])
    assert not runs_portctl(["python", "/home/me/portctl-demo/main.py"])
    assert [age(s) for s in (0, 42, 307, 3 * 3600 + 720, 2 * 86400 + 4 * 3600)] == \
        ["0s", "42s", "5m07s", "3h12m", "2d04h"]


def test_the_caller_of_portctl_is_never_swept(project: Project) -> None:
    """`python main.py TAG` matches, but it is the ancestor running the sweep."""
    where = project.root / "backend"
    argv = project.portctl.argv("clean", "--sweep", "--force", "--anywhere")
    (where / "main.py").write_text(f"import subprocess, sys\nsys.exit(subprocess.run({argv!r}).returncode)\n")
    caller = project._spawn([sys.executable, "main.py", project.tag], cwd=where,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = caller.communicate(timeout=60)
    assert caller.returncode == 0, err
    assert "no strays of backend anywhere" in out


def test_a_portctl_command_is_never_swept(project: Project) -> None:
    """A long-running portctl (here `events -f`) whose command line matches a pattern."""
    watched = project.root / f"never-matches-{project.tag}"
    watched.mkdir()
    follower = project._spawn([sys.executable, "-m", "portctl", "--run-dir", str(watched), "events", "-f"],
                              cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: any(str(watched) in arg for arg in psutil.Process(follower.pid).cmdline()), 30,
               "the follower to run")
    result = project.clean("--force")
    assert result.returncode == 0, result.stderr
    assert "no strays of backend" in result.stdout and follower.poll() is None
