"""The terminal experience as a person sees it: portctl in a real terminal (tmux, 80 x 24),
driven with keys and read from the screen (tests/support/terminal.py). Skipped without tmux."""
from __future__ import annotations

import sys

import pytest

from support.processes import is_gone
from support.terminal import Terminal, tmux_missing

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
