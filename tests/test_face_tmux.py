"""The terminal experience as a person sees it: portctl in a real terminal (tmux, 80 x 24),
driven with keys and read from the screen (tests/support/terminal.py). Skipped without tmux."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.apps import app
from support.portctl import Portctl
from support.ports import free_ports, unused_port
from support.processes import is_gone
from support.terminal import Terminal, tmux_missing
from support.waits import accepts

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(tmux_missing(), reason="needs tmux (and a POSIX terminal)")]


# ----------------------------------------------------------------------------- the driver itself

def test_the_terminal_shows_output_takes_keys_and_reports_the_exit() -> None:
    term = Terminal()
    try:
        term.start([sys.executable, "-c",
                    "import sys; print('hello', flush=True); line = sys.stdin.readline(); "
                    "print('got', line.strip(), 'x' * 90); sys.exit(3)"])
        term.wait_for("hello", deadline=10)
        term.send("abc", "Enter")
        screen = term.wait_for("got abc")
        assert screen.splitlines()[0] == "hello"
        assert all(len(row) <= 80 for row in screen.splitlines())  # the long line wrapped at 80
        assert term.wait_exit() == 3
    finally:
        term.close()


def test_closing_the_terminal_reaps_the_server_and_its_command() -> None:
    term = Terminal()
    try:
        term.start([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
        term.wait_for("up", deadline=10)
        procs = list(term._procs)
        assert len(procs) >= 2  # the tmux server and the command
    finally:
        term.close()
    assert all(is_gone(p) for p in procs)


def test_ctrl_c_reaches_the_command() -> None:
    term = Terminal()
    try:
        term.start([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
        term.wait_for("up", deadline=10)
        term.send("C-c")
        assert term.wait_exit() in (-2, 130)  # SIGINT (Python re-raises it to die by it)
    finally:
        term.close()


def test_the_command_gets_the_pane_size_and_its_last_output_shows_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # ours, not the pane's: the command must not see them
    monkeypatch.setenv("LINES", "50")
    term = Terminal()
    try:
        term.start([sys.executable, "-c", "import os, shutil\nfor i in range(300): print('row', i)\n"
                    "print('size', tuple(shutil.get_terminal_size()), os.environ.get('COLUMNS'))"])
        assert term.wait_exit() == 0
        rows = term.capture().splitlines()
        assert "row 299" in rows and "size (80, 24) None" in rows, rows[-5:]
    finally:
        term.close()


# ----------------------------------------------------------------------------- start and stop
def portctl_argv(portctl: Portctl, *args: object) -> list[str]:
    return portctl.argv(*map(str, args))


def test_start_d_spins_while_it_waits_then_leads_with_the_url(portctl: Portctl) -> None:
    port = unused_port()
    term = Terminal()
    try:
        term.start(portctl_argv(portctl, "start", "-d", "--port", port, "--name", "slow", "--",
                                *app("listener", "{port}", "--listen-after", "1.5")))
        waiting = term.wait_for(f"waiting for slow on :{port}", deadline=20)
        assert re.search(rf"waiting for slow on :{port} … [0-9]+\.[0-9] s", waiting), waiting
        screen = term.wait_for("ready at", deadline=30)
        assert term.wait_exit() == 0
        screen = term.capture()
        rows = screen.splitlines()
        lead = [row for row in rows if "ready at" in row]
        assert lead == [lead[0]] and re.fullmatch(
            rf"✓ slow ready at http://127\.0\.0\.1:{port} in [0-9]+\.[0-9] s", lead[0]), screen
        assert len(lead[0]) <= 80
        assert "waiting for" not in screen  # the spinner is gone before the ready line
        assert rows[1].startswith("  supervisor pid "), screen
        assert "\x1b[" in term.capture(escapes=True)  # coloured on a terminal
    finally:
        term.close()
        portctl.run("stop", "slow")


def test_no_color_on_a_terminal_gets_the_plain_lines_and_no_spinner(portctl: Portctl) -> None:
    port = unused_port()
    term = Terminal()
    try:
        term.start(portctl_argv(portctl, "start", "-d", "--port", port, "--name", "plain", "--",
                                *app("listener", "{port}", "--listen-after", "1")), env={"NO_COLOR": "1"})
        assert term.wait_exit() == 0
        screen = term.capture(escapes=True)
        rows = [row for row in screen.splitlines() if row and "Pane is dead" not in row]  # tmux's own line
        assert re.fullmatch(rf"plain ready at http://127\.0\.0\.1:{port} in [0-9]+\.[0-9] s", rows[0]), screen
        ours = "\n".join(rows)
        assert "\x1b[" not in ours and "waiting for" not in ours and "✓" not in ours
    finally:
        term.close()
        portctl.run("stop", "plain")


def test_ctrl_c_while_start_d_waits_says_the_instance_goes_on(portctl: Portctl) -> None:
    port = unused_port()
    term = Terminal()
    try:
        term.start(portctl_argv(portctl, "start", "-d", "--port", port, "--name", "late", "--",
                                *app("listener", "{port}", "--listen-after", "3")))
        term.wait_for("waiting for late", deadline=20)
        term.send("C-c")
        assert term.wait_exit() == 130
        screen = term.capture(joined=True)
        assert "waiting for" not in screen
        said = [row for row in screen.splitlines() if row and not row.startswith("Pane is dead")]
        assert len(said) == 1 and said[0].startswith("portctl: warning: interrupted; late goes on"), screen
    finally:
        term.close()
        portctl.run("stop", "late")


def test_ctrl_c_in_the_foreground_says_stopping_then_stopped_and_free(portctl: Portctl) -> None:
    port = unused_port()
    term = Terminal()
    try:
        term.start(portctl_argv(portctl, "start", "--port", port, "--name", "fg", "--", *app("listener", "{port}")))
        screen = term.wait_for("Ctrl+C to stop", deadline=30)
        assert re.search(rf"^✓ fg ready at http://127\.0\.0\.1:{port} in [0-9.]+ s$", screen, re.M), screen
        term.send("C-c")
        screen = term.wait_for(f"stopped; port {port} free")
        assert "stopping (Ctrl+C again to kill now)..." in screen
        assert term.wait_exit() == 0
        assert not accepts(port)
    finally:
        term.close()


def test_a_project_start_d_spins_naming_the_services_still_waited_on(tmp_path: Path) -> None:
    root, (fast, slow) = tmp_path / "proj", free_ports(2)
    root.mkdir()
    (root / "portctl.toml").write_text(
        f'[services.fast]\ncommand = {json.dumps(app("listener", "{port}"))}\nport = {fast}\n\n'
        f'[services.slow]\ncommand = {json.dumps(app("listener", "{port}", "--listen-after", "2"))}\n'
        f'port = {slow}\n')
    term = Terminal()
    try:
        term.start([sys.executable, "-m", "portctl", "start", "-d"], cwd=root)
        term.wait_for("waiting for slow …", deadline=30)  # fast is ready: only slow is waited on
        screen = term.wait_for("slow ready at")
        assert term.wait_exit() == 0
        screen = term.capture()
        assert "waiting for" not in screen
        assert f"✓ fast ready at http://127.0.0.1:{fast}" in screen.splitlines()
    finally:
        term.close()
        subprocess.run([sys.executable, "-m", "portctl", "stop"], cwd=root, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
