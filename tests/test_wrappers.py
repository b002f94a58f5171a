"""The Makefile fragment through real make, and the .bat wrappers as text."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.apps import app
from support.portctl import Portctl
from support.ports import unused_port
from support.waits import accepts, wait_port_accepting

SCRIPTS = Path(__file__).parent.parent / "scripts"
pytestmark = pytest.mark.timeout(90)
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def portctl_command() -> str:
    """The portctl of this interpreter, as a make variable (works without a console script)."""
    return f"{sys.executable} -m portctl"


@pytest.fixture
def make(tmp_path: Path, portctl: Portctl, spawn):  # type: ignore[no-untyped-def]
    (tmp_path / "Makefile").write_text(f"include {SCRIPTS / 'portctl.mk'}\n")
    port = unused_port()

    def run(target: str, **variables: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        args = [f"PORT={port}", f"RUN_DIR={portctl.run_dir}", f"PORTCTL={portctl_command()}"]
        args += [f"{k}={v}" for k, v in variables.items()]
        proc = spawn(["make", "-s", "-C", str(tmp_path), target, *args], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    run.port = port  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        portctl.run("stop", "--port", str(port))


@needs_make
def test_start_status_logs_restart_stop(make) -> None:  # type: ignore[no-untyped-def]
    port = make.port
    assert make("start").returncode == 0 and accepts(port)
    assert make("status").returncode == 0
    assert "[portctl" in make("logs").stdout
    assert make("restart").returncode == 0 and accepts(port)
    assert make("stop").returncode == 0 and not accepts(port)
    stopped = make("status")
    assert stopped.returncode != 0 and "Error 3" in stopped.stderr


@needs_make
def test_start_with_an_app_command(make) -> None:  # type: ignore[no-untyped-def]
    cmd = " ".join(app("flaky", "{port}"))
    assert make("start", APP_CMD=cmd, NAME="flaky").returncode == 0 and accepts(make.port)
    assert make("stop").returncode == 0


@needs_make
def test_show_processes_never_fails(make, spawn) -> None:  # type: ignore[no-untyped-def]
    assert make("show-processes").returncode == 0
    spawn(app("listener", make.port))
    wait_port_accepting(make.port)
    shown = make("show-processes")
    assert shown.returncode == 0 and str(make.port) in shown.stdout


@needs_make
def test_force_clean_frees_a_foreign_holder(make, spawn) -> None:  # type: ignore[no-untyped-def]
    holder = spawn(app("listener", make.port))
    wait_port_accepting(make.port)
    refused = make("start")
    assert refused.returncode != 0 and "Error 4" in refused.stderr  # make names portctl's code
    assert make("force-clean").returncode == 0
    assert holder.wait(timeout=30) is not None and not accepts(make.port)


@needs_make
def test_clean_target(make, portctl: Portctl) -> None:  # type: ignore[no-untyped-def]
    portctl.pid_file(make.port).write_text("999999\n")
    assert make("clean").returncode == 0 and not portctl.pid_file(make.port).exists()


@pytest.mark.parametrize("name", ["start-backend.bat", "stop-backend.bat", "restart-backend.bat"])
def test_bat_wrappers(name: str) -> None:
    """The repository's wrappers are the project wrapper `portctl wrappers` writes (its text is
    checked in test_project_wrappers.py): the service and the verb come from the file name."""
    from portctl.project.wrappers import bat

    assert (SCRIPTS / name).read_bytes() == bat("..").encode()
