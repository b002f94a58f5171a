"""Messages and hints that send users the right way (issue 9 §4): each hint is true under
the policy in force and copy-pasteable. CliRunner for the wiring, real processes elsewhere."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from portctl.base import messages as output
from portctl.face.cli import cli
from support.apps import APPS, app
from support.portctl import Portctl
from support.ports import free_ports, unused_port
from support.users import needs_nobody, portctl_as_nobody, system_python
from support.waits import accepts, wait_port_accepting, wait_until

pytestmark = pytest.mark.timeout(90)


def hint_command(stderr: str) -> list[str]:
    """The first `portctl ...` command quoted in backticks in ``stderr``, as argv."""
    start = stderr.index("`portctl ")
    return shlex.split(stderr[start + 1:stderr.index("`", start + 1)])


def run_hint(portctl: Portctl, stderr: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    argv = hint_command(stderr)
    assert argv[0] == "portctl"
    proc = portctl._spawn([sys.executable, "-m", "portctl", *argv[1:]], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# ----------------------------------------------------------------------------- not ready

def test_not_ready_names_the_port_the_command_listens_on(portctl: Portctl) -> None:
    wanted, actual = free_ports(2)
    result = portctl.run("start", "--port", wanted, "--ready-timeout", "3", "--", *app("listener", actual))
    assert result.returncode == 7, result.stderr
    assert f"your command listens on {actual}, not {wanted}" in result.stderr
    assert "pass --port {port} or read $PORT" in result.stderr


def test_not_ready_hint_substitutes_the_address(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "--port", port, "--ready-timeout", "1", "--",
                         sys.executable, "-c", "import time; time.sleep(20)")
    assert result.returncode == 7, result.stderr
    assert f"check that it listens on 127.0.0.1:{port}" in result.stderr
    assert "{port}" not in result.stderr and "{host}" not in result.stderr


# ----------------------------------------------------------------------------- a forgotten --

def test_a_forgotten_double_dash_says_where_the_command_goes() -> None:
    result = CliRunner().invoke(cli, ["start", "--port", "8001", "uvicorn", "app.main:app", "--port", "{port}"])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" not in result.output
    assert "put the server command after `--`: portctl start --port 8001 -- uvicorn app.main:app --port '{port}'" \
        in result.output
    plain = CliRunner().invoke(cli, ["start", "--port", "abc"])  # no command: the port is wrong
    assert plain.exit_code == 2 and "invalid port 'abc'" in plain.output


# ----------------------------------------------------------------------------- port in use

def test_port_in_use_hint_is_a_command_that_works(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    result = portctl.run("start", "-d", "--port", port, "--", *app("listener", "{port}"))
    assert result.returncode == 4, result.stderr
    assert "portctl start --force" not in result.stderr
    assert f"portctl --run-dir {portctl.run_dir} restart --port {port} --force" in result.stderr
    assert f"python {APPS / 'listener.py'} {port}" in result.stderr  # the holder, by its command
    assert "--- last lines of" not in result.stderr  # nothing ran: no log to show
    retried = run_hint(portctl, result.stderr)
    assert retried.returncode == 0, retried.stderr
    assert holder.wait(timeout=30) is not None and accepts(port)
    assert portctl.run("stop", "--port", port).returncode == 0


def test_production_hints_never_suggest_force(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    listener(port)
    result = portctl.run("start", "--port", port, "--", *app("listener", "{port}"), env={"ENVIRONMENT": "prod"})
    assert result.returncode == 4, result.stderr
    assert "--force" not in result.stderr and "portctl free" not in result.stderr
    assert "see who holds it with" in result.stderr
    who = portctl.run("who", port, env={"ENVIRONMENT": "production"})
    assert who.returncode == 0 and "--force" not in who.stdout and "portctl free" not in who.stdout
    refused = portctl.run("free", port, env={"ENVIRONMENT": "prod"})  # prod is production
    assert refused.returncode == 5 and accepts(port)


@pytest.fixture
def shared_run_dir() -> Iterator[Path]:
    """A run dir user nobody owns, below a directory it can reach."""
    base = Path(tempfile.mkdtemp(prefix="portctl-test-"))
    base.chmod(0o755)
    run = base / "run"
    run.mkdir()
    shutil.chown(run, "nobody")
    try:
        yield run
    finally:
        shutil.rmtree(base)


@needs_nobody
def test_without_the_rights_the_hint_is_sudo_who(shared_run_dir: Path, listener, spawn) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    listener(port)  # root's
    code, _, err = portctl_as_nobody(spawn, "--run-dir", str(shared_run_dir), "start", "--port", str(port),
                                     "--", system_python(), str(APPS / "listener.py"), "{port}")
    assert code == 4, err
    assert f"sudo portctl who {port}" in err
    assert "--force" not in err and "portctl free" not in err


# ----------------------------------------------------------------------------- portctl's own instances

def test_who_on_our_instance_suggests_stop_with_its_run_dir(portctl: Portctl, tmp_path: Path) -> None:
    port = unused_port()
    portctl.serve(port, "--", *app("listener", "{port}"))
    here = portctl.run("who", port)
    assert here.returncode == 0 and f"stop it with: portctl stop --port {port}" in here.stdout
    elsewhere = Portctl(tmp_path, portctl._spawn).run("who", port)
    assert f"stop it with: portctl --run-dir {portctl.run_dir} stop --port {port}" in elsewhere.stdout
    stopped = run_hint(portctl, "`" + elsewhere.stdout.split("stop it with: ")[1].strip() + "`")
    assert stopped.returncode == 0 and not accepts(port)


def test_force_on_a_running_instance_suggests_restart(portctl: Portctl) -> None:
    port = unused_port()
    portctl.serve(port, "--", *app("listener", "{port}"))
    result = portctl.run("start", "-d", "--force", "--port", port, "--", *app("listener", "{port}"))
    assert result.returncode == 6, result.stderr
    assert f"restart --port {port} --force" in result.stderr
    assert "--- last lines of" not in result.stderr  # the winner's log is not ours to show
    plain = portctl.run("start", "-d", "--port", port, "--", *app("listener", "{port}"))
    assert plain.returncode == 6 and "--- last lines of" not in plain.stderr


def test_status_on_a_fatal_instance_suggests_restart(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--max-restarts", "0", "--",
                         *app("listener", "{port}", "--exit-after", "1", "--exit-code", "3"))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: portctl.record(port).get("state") == "fatal", what="the instance to turn fatal")
    status = portctl.run("status")
    assert "fatal" in status.stdout and "try `portctl restart listener.py`" in status.stdout


# ----------------------------------------------------------------------------- commands in messages

def test_short_command_keeps_what_identifies_the_holder() -> None:
    interpreter = "/opt/very/long/path/to/some/virtualenv/with/a/deep/name/bin/python3.12"
    line = output.short_command([interpreter, "-m", "uvicorn", "app.main:app", "--port", "8001"])
    assert line == "python3.12 -m uvicorn app.main:app --port 8001"
    long = output.short_command(["node", *(f"--flag-{i}" for i in range(40)), "server.js"], limit=60)
    assert len(long) == 60 and long.startswith("node --flag-0") and long.endswith("server.js") and "..." in long
    assert output.short_command([]) == ""
