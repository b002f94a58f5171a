"""Shared bits of the test apps (stdlib only, imported by path-relative import).

Every app bounds its own life: it exits after ``--life`` seconds whatever happens, so a
broken test can never leave a process running forever.
"""
import os
import signal
import socket
import sys
import threading
import time

DEFAULT_LIFE_S = 60.0


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (readers see all or nothing)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def accept_until(sock: "socket.socket", life_s: float) -> None:
    """Accept and close connections on ``sock`` for ``life_s`` seconds, then return."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + life_s
    while time.monotonic() < deadline:
        try:
            sock.accept()[0].close()
        except (socket.timeout, InterruptedError):
            pass


def ignore_stop_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def log_signals(path: str) -> None:
    """Survive TERM/INT/HUP/USR1/USR2 but append each one received to ``path``."""

    def record(signum: int, _frame: object) -> None:
        with open(path, "a") as fh:
            fh.write(f"{signum}\n")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, record)


def exit_when_stdin_closes() -> None:
    """Exit as soon as stdin reaches EOF (opt-in: stdin may be /dev/null)."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def sleep_out(life_s: float) -> None:
    """Sleep until ``life_s`` has passed (signal handlers may interrupt; keep sleeping)."""
    deadline = time.monotonic() + life_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


def add_behaviour_options(parser: "argparse.ArgumentParser") -> None:  # noqa: F821
    """The options every long-lived app shares: how it treats signals and stdin."""
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--signal-log")
    parser.add_argument("--watch-stdin", action="store_true")


def apply_behaviour_options(args: object) -> None:
    """Act on ``add_behaviour_options``'s options."""
    if getattr(args, "ignore_term", False):
        ignore_stop_signals()
    if getattr(args, "signal_log", None):
        open(args.signal_log, "a").close()  # type: ignore[attr-defined]
        log_signals(args.signal_log)  # type: ignore[attr-defined]
    if getattr(args, "watch_stdin", False):
        exit_when_stdin_closes()
