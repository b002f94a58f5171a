"""`portctl makefile` through real make against a real 2-service project, and the .bat
wrappers of `portctl wrappers` as text (no Windows here). The fragment and the wrapper ship
in the package: checked on what setuptools builds for the wheel."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Callable

import pytest

from support.apps import APPS
from support.portctl import Portctl
from support.ports import free_ports
from support.processes import Popen, is_gone
from support.waits import accepts, wait_file, wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(120)
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (nothing is "
                                "installed by the tests)")
# `portctl start NAME` of a project service comes with project orchestration (portctl.project.run)
needs_project_start = pytest.mark.skipif(importlib.util.find_spec("portctl.project.run") is None,
                                         reason="project start (portctl.project.run) is not in this tree")


class Project:
    """Services ``backend`` (sweeps ``python.*main\\.py TAG``) and ``frontend`` (depends on
    it), each a listener on its own fixed port, in ``root``, which is the run dir too."""

    def __init__(self, root: Path, spawn: Callable[..., Popen]) -> None:
        self.root, self._spawn = root, spawn
        self.portctl = Portctl(root, spawn)
        self.ports = dict(zip(("backend", "frontend"), free_ports(2)))
        self.tag = f"sweep-{uuid.uuid4().hex}"
        listener = APPS / "listener.py"
        (root / "portctl.toml").write_text(textwrap.dedent(f"""
            [services.backend]
            command = [{sys.executable!r}, {str(listener)!r}, "{{port}}"]
            port = {self.ports["backend"]}
            sweep = 'python.*main\\.py {self.tag}'

            [services.frontend]
            command = [{sys.executable!r}, {str(listener)!r}, "{{port}}"]
            port = {self.ports["frontend"]}
            depends_on = ["backend"]
            """))

    def portctl_cli(self, *args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """portctl run in the project root, finding the project and its run dir by itself."""
        proc = self._spawn([sys.executable, "-m", "portctl", *args], cwd=self.root, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def include(self, prefix: str = "", before: str = "", after: str = "") -> Path:
        """Write ``portctl makefile`` to portctl.mk and a Makefile including it."""
        made = self.portctl_cli("makefile", *(["--prefix", prefix] if prefix else []))
        assert made.returncode == 0, made.stderr
        (self.root / "portctl.mk").write_text(made.stdout)
        makefile = self.root / "Makefile"
        makefile.write_text(before + "include portctl.mk\n" + after)
        return makefile

    def make(self, *targets: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        proc = self._spawn(["make", "-C", str(self.root), *targets, f"PORTCTL={sys.executable} -m portctl"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=90)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def serve(self, name: str) -> None:
        """Start service ``name`` as a named instance with plain `start` (no project start needed)."""
        port = self.ports[name]
        started = self.portctl.run("start", "-d", "--port", port, "--name", name, "--",
                                   sys.executable, APPS / "listener.py", port)
        assert started.returncode == 0, started.stderr

    def stop_all(self) -> None:
        for port in self.ports.values():
            self.portctl.run("stop", "--port", port)


@pytest.fixture
def project(run_dir: Path, spawn: Callable[..., Popen]):  # type: ignore[no-untyped-def]
    made = Project(run_dir, spawn)
    try:
        yield made
    finally:
        made.stop_all()


# ------------------------------------------------------------------ the fragment under make

@needs_make
def test_the_default_goal_is_untouched_when_included_first(project: Project) -> None:
    project.include(after="all:\n\t@echo the own default goal\n")
    result = project.make()
    assert result.returncode == 0, result.stderr
    assert "the own default goal" in result.stdout and "portctl" not in result.stdout


@needs_make
def test_the_default_goal_is_untouched_when_included_after_it(project: Project) -> None:
    project.include(before="build:\n\t@echo building\n")
    assert "building" in project.make().stdout


@needs_make
def test_a_prefix_keeps_the_projects_own_status_and_clean(project: Project) -> None:
    own = "status:\n\t@echo own status\nclean:\n\t@echo own clean\n"
    project.include(prefix="pc-", after=own)
    result = project.make("status", "clean")
    assert result.returncode == 0 and "own status" in result.stdout and "own clean" in result.stdout
    assert "warning" not in result.stderr  # no recipe overridden
    project.serve("backend")
    status = project.make("pc-status-backend")
    assert status.returncode == 0, status.stderr
    assert "No rule to make target" in project.make("status-backend").stderr


def test_makefile_warns_of_clashing_targets(project: Project) -> None:
    (project.root / "Makefile").write_text("status:\n\t@echo mine\nstart-backend build:\n\techo\nX := a:b\n")
    clashing = project.portctl_cli("makefile")
    assert clashing.returncode == 0 and "status, start-backend" in clashing.stderr
    assert "--prefix" in clashing.stderr and "start-backend" in clashing.stdout
    prefixed = project.portctl_cli("makefile", "--prefix", "pc-")
    assert prefixed.returncode == 0 and prefixed.stderr == ""


@needs_make
def test_service_targets_stop_status_logs_restart(project: Project) -> None:
    project.include()
    project.serve("backend")
    project.serve("frontend")
    assert project.make("status-backend").returncode == 0
    assert "[portctl" in project.make("logs-backend").stdout
    assert project.make("restart-backend").returncode == 0 and accepts(project.ports["backend"])
    stopped = project.make("stop-backend")
    # frontend depends on backend: stopped first (docs/projects.md, "Running a project")
    assert stopped.returncode == 0 and not accepts(project.ports["backend"]) and not accepts(project.ports["frontend"])
    assert "frontend: stopped" in stopped.stdout
    not_running = project.make("status-backend")
    assert not_running.returncode != 0 and "Error 3" in not_running.stderr  # portctl's code, named by make
    assert project.make("stop").returncode == 0 and not accepts(project.ports["frontend"])


@needs_make
def test_force_clean_sweeps_the_services_strays(project: Project) -> None:
    project.include()
    where = project.root / "backend"
    where.mkdir()
    (where / "main.py").write_text("import os, sys, time\nopen(sys.argv[2], 'w').write('x')\ntime.sleep(60)\n")
    stray = project._spawn([sys.executable, "main.py", project.tag, str(where / "ready")], cwd=where)
    wait_file(where / "ready")
    result = project.make("force-clean-backend")
    assert result.returncode == 0, result.stderr
    assert "clean --sweep backend --force" in result.stdout and str(stray.pid) in result.stdout
    wait_until(lambda: is_gone(stray), 30, "the stray to exit")
    assert "No rule to make target" in project.make("force-clean-frontend").stderr  # no sweep patterns


@needs_make
@needs_project_start
def test_start_twice_is_no_error_and_stop_stops_all(project: Project) -> None:
    project.include()
    first = project.make("start")
    assert first.returncode == 0, first.stderr
    assert all(accepts(port) for port in project.ports.values())
    again = project.make("start")
    assert again.returncode == 0, again.stderr
    assert project.make("start-backend").returncode == 0
    assert project.make("status").returncode == 0
    assert project.make("stop").returncode == 0
    assert not any(accepts(port) for port in project.ports.values())


FAKE = """import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
codes = json.loads(os.environ.get("FAKE_CODES", "{}"))
sys.exit(codes.get(" ".join(sys.argv[1:]), 0))
"""


@needs_make
@pytest.mark.parametrize("codes, target, expected, calls", [
    ({"start -d backend": 6}, "start-backend", 0, ["start -d backend"]),
    ({"start -d backend": 4}, "start-backend", 4, ["start -d backend"]),
    ({"start -d backend": 6}, "start", 0, ["start -d backend", "start -d frontend"]),
    ({"start -d backend": 7}, "start", 7, ["start -d backend"]),
    ({}, "stop", 0, ["stop frontend backend"]),
])
def test_the_recipes_exit_codes(project: Project, tmp_path: Path, codes: dict[str, int], target: str,
                                expected: int, calls: list[str]) -> None:
    """The recipes' own logic, with a stand-in for portctl that logs its arguments and exits
    with the code asked: 6 (already running) is success for the start targets, in start order;
    any other failure is make's failure, with portctl's code."""
    import json

    project.include()
    fake, log = tmp_path / "fake_portctl.py", tmp_path / "calls.log"
    fake.write_text(FAKE)
    proc = project._spawn(["make", "-C", str(project.root), target, f"PORTCTL={sys.executable} {fake}"],
                          env={"FAKE_LOG": str(log), "FAKE_CODES": json.dumps(codes)}, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode == 0) == (expected == 0), err
    if expected:
        assert f"Error {expected}" in err
    assert log.read_text().splitlines() == calls


# ------------------------------------------------------------------ portctl makefile itself

def test_makefile_needs_a_project_and_a_valid_prefix(project: Project, tmp_path: Path) -> None:
    assert "start-frontend" in project.portctl_cli("makefile").stdout
    bad = project.portctl_cli("makefile", "--prefix", "a b:")
    assert bad.returncode == 2 and "invalid prefix" in bad.stderr and "Traceback" not in bad.stderr
    outside = tmp_path / "outside"
    outside.mkdir()
    proc = subprocess.run([sys.executable, "-m", "portctl", "makefile"], cwd=outside, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "no project file" in proc.stderr


def test_the_templates_ship_in_the_package(tmp_path: Path) -> None:
    """What setuptools builds for the wheel (build_py) holds the fragment and the wrapper."""
    for item in ("src", "pyproject.toml", "README.md"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, tmp_path / item)
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                    "--build-lib", str(out)], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert (out / "portctl" / "data" / "project.mk").is_file()
    assert (out / "portctl" / "data" / "service.bat").is_file()


# ------------------------------------------------------------------ the .bat wrappers, as text

def test_wrappers_are_written_for_every_service(project: Project) -> None:
    result = project.portctl_cli("wrappers")
    assert result.returncode == 0, result.stderr
    scripts = project.root / "scripts"
    names = sorted(p.name for p in scripts.iterdir())
    assert names == sorted(f"{verb}-{name}.bat" for verb in ("start", "stop", "restart")
                           for name in ("backend", "frontend"))
    texts = {(scripts / name).read_bytes() for name in names}
    assert len(texts) == 1  # one text: the file name says what it does
    raw = texts.pop()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 0  # CRLF throughout
    lines = raw.decode().splitlines()
    assert lines[0] == "@echo off"
    assert 'cd /d "%~dp0.."' in lines  # a double-click runs from the project root
    assert 'for /f "tokens=1,* delims=-" %%a in ("%~n0") do (' in lines  # VERB-NAME from the file name
    assert 'if /i "%PORTCTL_VERB%"=="start" set "PORTCTL_COMMAND=start -d %PORTCTL_SERVICE%"' in lines
    assert 'if /i "%PORTCTL_VERB%"=="restart" set "PORTCTL_COMMAND=restart %PORTCTL_SERVICE% --force"' in lines
    assert "%PORTCTL% %PORTCTL_COMMAND% %*" in lines  # arguments pass through
    assert 'if not "%PORTCTL_CODE%"=="0" call :pause_if_double_clicked' in lines
    assert 'if /i "!CMDCMDLINE:/c =!" neq "!CMDCMDLINE!" pause' in lines
    assert "exit /b %PORTCTL_CODE%" in lines
    again = project.portctl_cli("wrappers")  # its own files are rewritten
    assert again.returncode == 0, again.stderr


def test_wrappers_deeper_down_climb_to_the_root(project: Project) -> None:
    assert project.portctl_cli("wrappers", "tools/win").returncode == 0
    text = (project.root / "tools" / "win" / "start-backend.bat").read_text()
    assert 'cd /d "%~dp0..\\.."' in text.splitlines()


def test_wrappers_never_replace_a_file_of_yours_or_go_outside(project: Project, tmp_path: Path) -> None:
    scripts = project.root / "scripts"
    scripts.mkdir()
    (scripts / "stop-frontend.bat").write_text("@echo off\r\nmy own\r\n")
    refused = project.portctl_cli("wrappers")
    assert refused.returncode == 2 and "stop-frontend.bat exists" in refused.stderr
    assert sorted(p.name for p in scripts.iterdir()) == ["stop-frontend.bat"]  # nothing written
    outside = project.portctl_cli("wrappers", str(tmp_path))
    assert outside.returncode == 2 and "not inside the project root" in outside.stderr


@needs_make
@pytest.mark.parametrize("prefix", ["", "pc-"])
def test_the_single_instance_fragment_keeps_the_default_goal_and_takes_a_prefix(tmp_path: Path, prefix: str) -> None:
    """scripts/portctl.mk (one instance, no project file): included first, `make` still runs
    the including Makefile's first target; with PORTCTL_PREFIX its clean and status are its own."""
    (tmp_path / "Makefile").write_text(
        f"PORTCTL_PREFIX = {prefix}\ninclude {ROOT / 'scripts' / 'portctl.mk'}\n"
        "all:\n\t@echo own default\nstatus:\n\t@echo own status\n")
    result = subprocess.run(["make", "-C", str(tmp_path), "PORTCTL=false"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "own default" in result.stdout
    clash = subprocess.run(["make", "-C", str(tmp_path), "status", "PORTCTL=false"], capture_output=True,
                           text=True, timeout=60)
    assert "own status" in clash.stdout
    assert ("overriding recipe" in clash.stderr) == (prefix == "")
    if prefix:
        assert "Error 1" in subprocess.run(["make", "-C", str(tmp_path), "pc-status", "PORTCTL=false"],
                                           capture_output=True, text=True, timeout=60).stderr
