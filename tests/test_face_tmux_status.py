"""`portctl status` in a real 80x24 terminal (tmux): every instance on one unwrapped line, the
states coloured (green running, red fatal), and with NO_COLOR or TERM=dumb no colour at all
(issue 11).

The tmux driver here is minimal on purpose (the lead unifies it with tests/support/terminal.py):
a server of our own on a unique socket, no user config, a pane that stays after its command
exits; ``close`` kills the server and reaps everything it ran."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from typing import Iterator, Optional, Sequence

import psutil
import pytest

from support.apps import app
from support.portctl import Portctl
from support.ports import unused_port
from support.processes import reap
from support.waits import HANG_GUARD_S, wait_until

EXIT = "[exit status] "
pytestmark = pytest.mark.skipif(sys.platform == "win32" or shutil.which("tmux") is None, reason="needs tmux")


class Pane:
    """One tmux server (socket ``-L``), one ``width`` x ``height`` pane running one command."""

    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.size = (str(width), str(height))
        self.socket = f"portctl-status-{uuid.uuid4().hex[:12]}"
        self.env: dict[str, str] = {}
        self.seen: list[psutil.Process] = []

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-f", "/dev/null", "-L", self.socket, *args], env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=HANG_GUARD_S)
        assert done.returncode == 0, f"tmux {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    def run(self, argv: Sequence[str], **env: str) -> int:
        """Run ``argv`` in the pane (our environment without NO_COLOR, TMUX, TERM, COLUMNS,
        plus ``env``) until it exits; its exit status (a shell around it prints it: tmux's
        own pane_dead_status is sometimes never set for a command that exits at once)."""
        drop = ("NO_COLOR", "TMUX", "TERM", "COLUMNS", "LINES")
        self.env = {**{k: v for k, v in os.environ.items() if k not in drop}, **env}
        line = shlex.join(["sh", "-c", f'"$@"; echo "{EXIT}$?"', "sh", *argv])
        self.tmux("set-option", "-g", "remain-on-exit", "on", ";", "new-session", "-d", "-s", "t",
                  "-x", self.size[0], "-y", self.size[1], "exec " + line)
        self._remember()
        found: list[str] = []

        def exited() -> bool:
            found[:] = [line for line in self.tmux("capture-pane", "-p", "-S", "-", "-t", "t").splitlines()
                        if line.startswith(EXIT)]
            return bool(found)

        wait_until(exited, what="the command in the pane to exit", interval=0.05)
        return int(found[0][len(EXIT):])

    def _remember(self) -> None:
        pid = self.tmux("display-message", "-p", "-t", "t", "#{pid}").strip()
        try:
            server = psutil.Process(int(pid))
            self.seen += [server, *server.children(recursive=True)]
        except (psutil.Error, ValueError):
            pass

    def screen(self, *, colours: bool = False) -> list[str]:
        """The pane's lines, wrapped lines joined (``-J``: a line the terminal wrapped shows as
        one longer than the pane), with the colour escapes when ``colours``."""
        out = self.tmux("capture-pane", "-p", "-J", "-S", "-", *(["-e"] if colours else []), "-t", "t")
        lines = [line.rstrip() for line in out.splitlines() if line.strip() and "Pane is dead" not in line]
        return [line for line in lines if not line.startswith(EXIT)]

    def close(self) -> None:
        if self.env:
            subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True,
                           timeout=HANG_GUARD_S)
        reap(self.seen)


@pytest.fixture
def pane() -> Iterator[Pane]:
    term = Pane()
    try:
        yield term
    finally:
        term.close()


def started(portctl: Portctl, name: str, *args: object) -> int:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--name", name, *args)
    assert result.returncode == 0, result.stderr
    return port


def row_of(lines: list[str], name: str) -> Optional[str]:
    return next((line for line in lines if line.split()[:1] == [name]), None)


def test_status_in_an_80_column_terminal(portctl: Portctl, pane: Pane) -> None:
    ports = {}
    try:
        ports["storefront-web"] = started(portctl, "storefront-web", "--", *app(
            "listener", "{port}", "--exit-after", "120", "--host", "127.0.0.1", "--exit-code", "0"))
        ports["api"] = started(portctl, "api", "--", *app("listener", "{port}", "--exit-after", "120"))
        ports["worker"] = started(portctl, "worker", "--max-restarts", "0", "--",
                                  *app("listener", "{port}", "--exit-after", "1", "--exit-code", "3"))
        wait_until(lambda: portctl.record(ports["worker"]).get("state") == "fatal", what="worker to turn fatal")
        assert pane.run(portctl.argv("status")) == 0
        lines = pane.screen()
        assert all(len(line) <= 80 for line in lines), "\n".join(lines)  # nothing wrapped
        assert lines[0].split()[:3] == ["NAME", "PORT", "STATE"]
        for name, state in (("storefront-web", "running"), ("api", "running"), ("worker", "fatal")):
            line = row_of(lines, name)
            assert line is not None and line.split()[1:3] == [str(ports[name]), state], "\n".join(lines)
        assert row_of(lines, "storefront-web").endswith("…")  # type: ignore[union-attr]
        assert "  try `portctl restart worker`" in lines or any(
            line.startswith("worker: ") and line.endswith("try `portctl restart worker`") for line in lines)
        coloured = "\n".join(pane.screen(colours=True))
        assert re.search(r"\x1b\[32mrunning", coloured) and re.search(r"\x1b\[31mfatal", coloured), coloured
    finally:
        for port in ports.values():
            portctl.run("stop", "--port", port)
        portctl.run("clean")


@pytest.mark.parametrize("setting", ["NO_COLOR=1", "TERM=dumb"])
def test_no_color_or_a_dumb_terminal_is_plain(portctl: Portctl, pane: Pane, setting: str) -> None:
    port = started(portctl, "api", "--", *app("listener", "{port}", "--exit-after", "120"))
    try:
        assert pane.run(["env", setting, *portctl.argv("status")]) == 0
        lines = pane.screen(colours=True)
        assert "\x1b" not in "\n".join(lines) and row_of(lines, "api") is not None
    finally:
        portctl.run("stop", "--port", port)


def test_wide_in_a_terminal_colours_the_state_column(portctl: Portctl, pane: Pane) -> None:
    port = started(portctl, "api", "--", *app("listener", "{port}", "--exit-after", "120"))
    try:
        assert pane.run(portctl.argv("status", "--wide")) == 0
        coloured = "\n".join(pane.screen(colours=True))
        assert re.search(rf"{port}  127\.0\.0\.1  \x1b\[32mrunning\x1b", coloured), coloured
    finally:
        portctl.run("stop", "--port", port)
