"""``Terminal``: a real terminal for tests, driven through tmux (send keys, read the screen).

Each Terminal runs its own tmux server on a unique socket (``-L``), with no user config
(``-f /dev/null``), one detached session of a fixed size, and the pane kept after its command
exits (so the last screen and the exit status can still be read). The server is a daemon, not
our child: ``close()`` kills it and reaps every process it had (the server, the command, its
children), so the leak check finds nothing. The server inherits this process's environment, so
everything in the pane carries the test markers.

    term = Terminal()
    try:
        term.start([sys.executable, "-m", "portctl", "start", ...])
        term.wait_for("ready at", deadline=30)
        term.send("C-c")
        screen = term.wait_for("stopped;")
    finally:
        term.close()

``tmux_missing()`` says whether to skip (no tmux on PATH, or Windows).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Mapping, Optional, Sequence

import psutil

from support.processes import reap
from support.waits import HANG_GUARD_S, wait_until

SESSION = "t"
EXITED = "portctl-test-exited"  # the pane's title once the command exited
# The pane runs the command under this wrapper, which writes its exit status (-N: killed by
# signal N) to a file: tmux's own #{pane_dead_status} is sometimes never filled in. A caught
# SIGINT (not an ignored one) is reset by exec, so the command gets Ctrl+C as it would. Before
# that, it sets the pane's title (an escape, after everything the command wrote): once tmux
# shows that title, the screen holds all the command's output.
_WRAPPER = f"""import os, signal, subprocess, sys
signal.signal(signal.SIGINT, lambda *_: None)
code = subprocess.call(sys.argv[2:])
sys.stdout.write("\\x1b]2;{EXITED}\\x07")
sys.stdout.flush()
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(str(code))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
sys.exit(code if code >= 0 else 128 - code)
"""


def tmux_missing() -> bool:
    return sys.platform == "win32" or shutil.which("tmux") is None


class Terminal:
    """One tmux server with one ``width`` x ``height`` pane running one command."""

    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.width = width
        self.height = height
        self.socket = f"portctl-test-{uuid.uuid4().hex[:12]}"
        self._env: dict[str, str] = {}
        self._procs: list[psutil.Process] = []  # the server and what it ran, seen while alive
        self._dir = Path(tempfile.mkdtemp(prefix="portctl-terminal-"))
        self._status = self._dir / "status"

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-f", "/dev/null", "-L", self.socket, *args], env=self._env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=HANG_GUARD_S)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def start(self, cmd: Sequence[str], env: Optional[Mapping[str, str]] = None,
              cwd: Optional[Path] = None) -> None:
        """Run ``cmd`` (an argv) in a new pane, in ``cwd`` (default: ours). Its environment:
        ours, without NO_COLOR and TMUX, TERM set by tmux, no COLUMNS or LINES (the size is
        the pane's), plus ``env``."""
        drop = ("NO_COLOR", "TMUX", "TERM", "COLUMNS", "LINES")
        base = {k: v for k, v in os.environ.items() if k not in drop}
        self._env = {**base, **(env or {})}
        argv = [sys.executable, "-c", _WRAPPER, str(self._status), *map(str, cmd)]
        line = "exec " + " ".join(shlex.quote(a) for a in argv)
        # One client call: the options are set before the pane's command can exit.
        self._tmux("set-option", "-g", "remain-on-exit", "on", ";",
                   "new-session", "-d", "-s", SESSION, "-x", str(self.width), "-y", str(self.height),
                   "-c", str(cwd or os.getcwd()), line)
        self._remember()

    def _remember(self) -> None:
        """Note the server's process tree now (it may be dead by the time ``close`` runs)."""
        out = self._tmux("display-message", "-p", "-t", SESSION, "#{pid}", check=False).strip()
        if not out.isdigit():
            return
        try:
            server = psutil.Process(int(out))
            tree = [server, *server.children(recursive=True)]
        except psutil.Error:
            return
        known = {p.pid for p in self._procs}
        self._procs.extend(p for p in tree if p.pid not in known)

    def send(self, *keys: str) -> None:
        """Keys as tmux names them: ``"C-c"``, ``"Enter"``, or literal text."""
        self._remember()
        self._tmux("send-keys", "-t", SESSION, *keys)

    def capture(self, joined: bool = False, escapes: bool = False) -> str:
        """The screen and the lines scrolled off it, one line per row, trailing blanks stripped;
        ``joined``: one line per line written (the rows it wrapped onto joined again);
        ``escapes``: with the escape sequences of the colours and attributes shown."""
        self._remember()
        flags = (["-J"] if joined else []) + (["-e"] if escapes else [])
        out = self._tmux("capture-pane", "-p", *flags, "-S", "-", "-t", SESSION)
        return "\n".join(row.rstrip() for row in out.splitlines()).rstrip("\n")

    def wait_for(self, text: str, deadline: float = HANG_GUARD_S) -> str:
        """Wait until ``text`` shows on the screen and return the screen; fail showing it."""
        screen = [""]

        def shown() -> bool:
            screen[0] = self.capture()
            return text in screen[0]

        try:
            wait_until(shown, deadline, f"{text!r} on the terminal", interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{screen[0]}") from None
        return screen[0]

    def exit_status(self) -> Optional[int]:
        """The command's exit status once it exited (``-N`` when signal N killed it), else None."""
        try:
            return int(self._status.read_text())
        except (OSError, ValueError):
            return None

    def wait_exit(self, deadline: float = HANG_GUARD_S) -> int:
        """Wait until the command exited and tmux shows all it wrote; its exit status."""
        codes: list[int] = []

        def exited() -> bool:
            code = self.exit_status()
            if code is None or self._tmux("display-message", "-p", "-t", SESSION,
                                          "#{pane_title}").strip() != EXITED:
                return False
            codes.append(code)
            return True

        wait_until(exited, deadline, "the command in the terminal to exit", interval=0.05)
        return codes[-1]

    def close(self) -> None:
        """Kill the server and reap everything it ran (idempotent)."""
        if self._env:
            self._remember()
            self._tmux("kill-server", check=False)
        reap(self._procs)
        self._procs.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
