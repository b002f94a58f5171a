"""The console entry point. `--version`, `who`, `status`, `port`, `url`, `stop` and a
project's `start` in their plain forms run without importing click (Makefiles and scripts
call them in loops, and click's import alone costs more than Python's start-up; a project
start waits on it before anything launches): ``SHAPES`` declares those forms,
and each maps to the function of ``commands`` the click CLI calls, with the values click
would pass (tests/test_app_layer.py checks both against click's own parse). Any other
form, `--help` or a doubt about the arguments goes to the click CLI, which stays the one
definition of the interface."""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Callable, Optional, Sequence, Union

    Values = dict[str, Any]

# Kinds of value in a shape. After the command word: positional arguments; an option
# followed by a kind takes a value of that kind, an option alone is a flag.
PORT = "PORT"  # 1-65535 in ASCII digits, as cli.PORT takes it
NAME = "NAME"  # one word that is not an option
NAMES = "NAMES"  # any number of those
KINDS = (PORT, NAME, NAMES)

# (command word, argument and option slots) -> the function of ``commands`` it runs
SHAPES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("who", PORT, "--json"), "who"),
    (("status", NAMES, "--port", PORT, "--json"), "status"),
    (("stop", NAMES, "--port", PORT), "stop"),
    (("port", NAME), "port_of"),
    (("url", NAME), "url"),
    (("start", NAMES, "-d", "--detach", "--force", "--keep-going"), "start_project"),  # None: not a project's
)
# The short forms cli declares for the options of SHAPES (`-p 8001` is `--port 8001`)
ALIASES = {"-p": "--port"}
_KEYWORD = {PORT: "port", NAME: "name", NAMES: "names", "--json": "as_json", "-d": "detach",
            "--keep-going": "keep_going"}  # else the option's name
# Set by the shell for completion (click derives it from the program's name): click answers
COMPLETE_VAR = "_PORTCTL_COMPLETE"


def main() -> None:
    if _may_start_a_project(sys.argv[1:]):
        from ..core.forkserver import start_early

        start_early()
    code = _fast(sys.argv[1:])
    if code is None:
        from .cli import main as cli_main

        cli_main()
        return
    from ..base.exiting import leave  # a fast command's end: no interpreter teardown

    leave(code)


_PROJECT_FLAGS = {"-d", "--detach", "--force", "--keep-going"}  # the options `start NAME...` takes in a project


def _may_start_a_project(argv: list[str]) -> bool:
    """`start` or `restart` with service names at most and no option a project refuses, here
    or below a project file: the supervisors' fork server is worth starting before anything
    is parsed. A guess, by file names alone; a wrong one (the words were a command to run)
    costs a process that waits, idle, until this one ends."""
    words = argv[2:] if argv[:1] == ["--run-dir"] else argv
    if words[:1] not in (["start"], ["restart"]) \
            or any(w.startswith("-") and w not in _PROJECT_FLAGS for w in words[1:]):
        return False
    from ..base.projectfile import nearest

    return nearest(os.getcwd()) is not None


def _fast(argv: list[str]) -> Optional[int]:
    """Run ``argv`` when it has one of the SHAPES (or is ``--version``): its exit code; None
    to let click handle these arguments (also when the command answers None: a `start`
    whose words are no project's services)."""
    if COMPLETE_VAR in os.environ:  # the shell asks for completions: only click knows them
        return None
    run_dir = os.environ.get("PORTCTL_RUN_DIR") or ""  # "": found from the current directory
    if len(argv) >= 2 and argv[0] == "--run-dir":
        run_dir, argv = argv[1], argv[2:]
    if argv == ["--version"]:
        from .. import __version__

        print(f"portctl, version {__version__}")
        return 0
    call = parse(argv)
    if call is None:
        return None
    from . import commands, render

    name, values = call
    function: Callable[..., Optional[int]] = getattr(commands, name)
    try:
        return function(run_dir=_path(run_dir), **values)
    except Exception as exc:  # a library error, a bug of ours or an OS refusal: one line
        return render.report(exc)


def parse(argv: Sequence[str]) -> Optional[tuple[str, Values]]:
    """(the name of the ``commands`` function, its keyword values) for the first shape
    ``argv`` has, or None."""
    for shape, function in SHAPES:
        if argv and argv[0] == shape[0]:
            values = _match(shape[1:], list(argv[1:]))
            if values is not None:
                return function, values
    return None


def _match(slots: tuple[str, ...], words: list[str]) -> Optional[Values]:
    """``words`` read as click reads them against ``slots`` (options anywhere, a repeated
    option's last value wins), or None when click might read them otherwise or refuse them."""
    positional = slots[:_first_option(slots)]
    options = {s: (slots[i + 1] if slots[i + 1:i + 2] and slots[i + 1] in KINDS else None)
               for i, s in enumerate(slots) if s.startswith("-")}
    values: Values = {_keyword(s): (() if s == NAMES else None) for s in positional}
    values.update({_keyword(o): (False if kind is None else None) for o, kind in options.items()})
    taken = 0
    given = iter(words)
    for word in given:
        word = ALIASES.get(word, word)
        if word in options:
            kind = options[word]
            value = True if kind is None else _value(kind, next(given, None))
            if value is None:
                return None
            values[_keyword(word)] = value
        elif taken < len(positional) and _value(positional[taken], word) is not None:
            kind = positional[taken]
            if kind == NAMES:
                values[_keyword(kind)] += (word,)
            else:
                values[_keyword(kind)] = _value(kind, word)
                taken += 1
        else:
            return None
    if any(values[_keyword(s)] is None for s in positional):  # a required argument is missing
        return None
    return values


def _first_option(slots: tuple[str, ...]) -> int:
    return next((i for i, s in enumerate(slots) if s.startswith("-")), len(slots))


def _keyword(slot: str) -> str:
    return _KEYWORD.get(slot) or slot[2:]


def _value(kind: str, word: Optional[str]) -> Union[int, str, None]:
    """``word`` as a value of ``kind``, or None when click would refuse it or read it otherwise."""
    if word is None or not word or word.startswith("-"):
        return None
    if kind == PORT:  # not "²" or "٣": Python's int() takes them, click's PORT refuses them
        return int(word) if word.isascii() and word.isdigit() and 1 <= int(word) <= 65535 else None
    return word


def _path(text: str) -> Path:
    from pathlib import Path

    if text:
        return Path(text)
    from ..core.runfiles import find_run_dir

    return find_run_dir()
