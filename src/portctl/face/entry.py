"""The console entry point. `--version`, `who`, `status`, `port`, `url` and `stop` in their
plain forms run without importing click (Makefiles and scripts call them in loops, and
click's import alone costs more than Python's start-up); any other form, `--help` or a doubt
about the arguments goes to the click CLI, which stays the one definition of the interface."""
from __future__ import annotations

import os
import sys


def main() -> None:
    code = _fast(sys.argv[1:])
    if code is None:
        from .cli import main as cli_main

        cli_main()
        return
    _leave(code)


def _leave(code: int) -> None:
    """Exit after a fast command: run the atexit handlers and flush, then skip the interpreter's
    teardown. Unloading psutil and the rest costs ~10 ms, more than everything `stop` does from
    the child's exit to its return; nothing of ours needs it (no buffered file stays open)."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the exit code still tells
            pass
    os._exit(code)


def _fast(argv: list) -> "int | None":  # type: ignore[type-arg]
    run_dir = os.environ.get("PORTCTL_RUN_DIR") or ""  # "": found from the current directory
    if len(argv) >= 2 and argv[0] == "--run-dir":
        run_dir, argv = argv[1], argv[2:]
    if argv == ["--version"]:
        from .. import __version__

        print(f"portctl, version {__version__}")
        return 0
    call = _parse(argv)
    if call is None:
        return None
    from . import output
    from ..base.errors import PortctlError

    try:
        return call(run_dir)
    except PortctlError as exc:
        output.error(exc.message, exc.hint)
        return exc.exit_code
    except Exception as exc:  # a bug of ours or an OS refusal: one line, as the click CLI does
        output.error(*output.internal_error(exc))
        return 1


def _parse(argv: list):  # type: ignore[no-untyped-def,type-arg]
    """A command to run, or None to let click handle these arguments."""
    from . import commands

    if not argv:
        return None
    name, rest = argv[0], argv[1:]
    as_json = "--json" in rest
    rest = [a for a in rest if a != "--json"]
    if name == "who" and len(rest) == 1 and _port(rest[0]):
        return lambda run_dir: commands.who(int(rest[0]), as_json, _path(run_dir))
    if name in ("status", "stop"):
        names, port = _targets(rest)
        if names is None or (name == "stop" and as_json):
            return None
        if name == "status":
            return lambda run_dir: commands.status(_path(run_dir), port, as_json, names)
        return lambda run_dir: commands.stop(_path(run_dir), names, port, None)
    if name in ("port", "url") and not as_json and len(rest) == 1 and not rest[0].startswith("-"):
        command = commands.port_of if name == "port" else commands.url
        return lambda run_dir: command(_path(run_dir), rest[0])
    return None


def _targets(rest: list):  # type: ignore[no-untyped-def,type-arg]
    """``[NAME...] [--port P]`` as (names, port), or (None, None) for click to judge."""
    names, port = [], None
    words = iter(rest)
    for word in words:
        if word == "--port" and port is None:
            port = next(words, "")
            if not _port(port):
                return None, None
        elif word.startswith("-") or not word:
            return None, None
        else:
            names.append(word)
    return tuple(names), None if port is None else int(port)


def _port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535  # not "²": click says why


def _path(text: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    if text:
        return Path(text)
    from ..core.runfiles import find_run_dir

    return find_run_dir()
