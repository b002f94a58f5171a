"""`portctl status` in a real 80x24 terminal (tmux, tests/support/terminal.py): every instance on
one unwrapped line, the states coloured (green running, red fatal), and with NO_COLOR or TERM=dumb
no colour at all (issue 11)."""
from __future__ import annotations

import re
from typing import Iterator, Optional, Sequence

import pytest

from support.apps import app
from support.portctl import Portctl
from support.ports import unused_port
from support.terminal import Terminal, tmux_missing
from support.waits import wait_until

pytestmark = pytest.mark.skipif(tmux_missing(), reason="needs tmux (and a POSIX terminal)")


@pytest.fixture
def term() -> Iterator[Terminal]:
    terminal = Terminal()
    try:
        yield terminal
    finally:
        terminal.close()


def run(term: Terminal, argv: Sequence[str]) -> int:
    """Run ``argv`` in the terminal until it exits; its exit status."""
    term.start(argv)
    return term.wait_exit()


def screen(term: Terminal, *, colours: bool = False) -> list[str]:
    """The command's lines, wrapped lines joined (a line the terminal wrapped shows as one longer
    than the terminal), with the colour escapes when ``colours``; without blank lines and tmux's
    own "Pane is dead" line."""
    out = term.capture(joined=True, escapes=colours)
    return [line for line in out.splitlines() if line.strip() and "Pane is dead" not in line]


def started(portctl: Portctl, name: str, *args: object) -> int:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--name", name, *args)
    assert result.returncode == 0, result.stderr
    return port


def row_of(lines: list[str], name: str) -> Optional[str]:
    return next((line for line in lines if line.split()[:1] == [name]), None)


def test_status_in_an_80_column_terminal(portctl: Portctl, term: Terminal) -> None:
    ports = {}
    try:
        ports["storefront-web"] = started(portctl, "storefront-web", "--", *app(
            "listener", "{port}", "--exit-after", "120", "--host", "127.0.0.1", "--exit-code", "0"))
        ports["api"] = started(portctl, "api", "--", *app("listener", "{port}", "--exit-after", "120"))
        ports["worker"] = started(portctl, "worker", "--max-restarts", "0", "--",
                                  *app("listener", "{port}", "--exit-after", "1", "--exit-code", "3"))
        wait_until(lambda: portctl.record(ports["worker"]).get("state") == "fatal", what="worker to turn fatal")
        assert run(term, portctl.argv("status")) == 0
        lines = screen(term)
        assert all(len(line) <= 80 for line in lines), "\n".join(lines)  # nothing wrapped
        assert lines[0].split()[:3] == ["NAME", "PORT", "STATE"]
        for name, state in (("storefront-web", "running"), ("api", "running"), ("worker", "fatal")):
            line = row_of(lines, name)
            assert line is not None and line.split()[1:3] == [str(ports[name]), state], "\n".join(lines)
        assert row_of(lines, "storefront-web").endswith("…")  # type: ignore[union-attr]
        assert "  try `portctl restart worker`" in lines or any(
            line.startswith("worker: ") and line.endswith("try `portctl restart worker`") for line in lines)
        coloured = "\n".join(screen(term, colours=True))
        assert re.search(r"\x1b\[32mrunning", coloured) and re.search(r"\x1b\[31mfatal", coloured), coloured
    finally:
        for port in ports.values():
            portctl.run("stop", "--port", port)
        portctl.run("clean")


@pytest.mark.parametrize("setting", ["NO_COLOR=1", "TERM=dumb"])
def test_no_color_or_a_dumb_terminal_is_plain(portctl: Portctl, term: Terminal, setting: str) -> None:
    port = started(portctl, "api", "--", *app("listener", "{port}", "--exit-after", "120"))
    try:
        assert run(term, ["env", setting, *portctl.argv("status")]) == 0
        lines = screen(term, colours=True)
        assert "\x1b" not in "\n".join(lines) and row_of(lines, "api") is not None
    finally:
        portctl.run("stop", "--port", port)


def test_wide_in_a_terminal_colours_the_state_column(portctl: Portctl, term: Terminal) -> None:
    port = started(portctl, "api", "--", *app("listener", "{port}", "--exit-after", "120"))
    try:
        assert run(term, portctl.argv("status", "--wide")) == 0
        coloured = "\n".join(screen(term, colours=True))
        assert re.search(rf"{port}  127\.0\.0\.1  \x1b\[32mrunning\x1b", coloured), coloured
    finally:
        portctl.run("stop", "--port", port)
