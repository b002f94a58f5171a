"""The application layer and its two faces (issue 10, items 2 and 3): the fast path's declared
argv shapes call exactly what click calls, with the values click parses; one mapper turns
every error into its line and exit code; exceptions word themselves; the core never loads
the renderer."""
from __future__ import annotations

import contextlib
import inspect
import io
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from portctl.base import messages
from portctl.base.errors import BadInput, ChildExited, NotRunning, PortctlError, PortInUse, exit_code_of, message_of
from portctl.face import commands, entry
from portctl.face.cli import cli
from support.processes import Popen

RUN_DIR = "/nonexistent/portctl-run-dir"  # the recording commands never touch it
FAST = sorted({function for _, function in entry.SHAPES})

Call = tuple[str, dict[str, Any]]


@contextlib.contextmanager
def recording() -> Iterator[list[Call]]:
    """The fast commands replaced by recorders of (function name, every argument's value)."""
    calls: list[Call] = []

    def recorder(name: str) -> Callable[..., int]:
        signature = inspect.signature(getattr(commands, name))

        def record(*args: Any, **kwargs: Any) -> int:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()  # what the shape leaves out (stop's --grace) is the default
            calls.append((name, dict(bound.arguments)))
            return 0
        return record

    with contextlib.ExitStack() as stack:
        for name in FAST:
            stack.enter_context(mock.patch.object(commands, name, recorder(name)))
        yield calls


def via_click(argv: list[str]) -> Optional[Call]:
    with recording() as calls:
        CliRunner().invoke(cli, ["--run-dir", RUN_DIR, *argv])
    assert len(calls) <= 1
    return calls[0] if calls else None


def via_fast_path(argv: list[str]) -> Optional[Call]:
    with recording() as calls, contextlib.redirect_stdout(io.StringIO()):
        code = entry._fast(["--run-dir", RUN_DIR, *argv])
    assert (code is None) == (not calls)
    return calls[0] if calls else None


WORDS = ["--port", "-p", "-p80", "--json", "--grace", "1.5", "-x", "-", "--", "", "api", "web", "who", "80", "8000", "0",
         "65535", "65536", "080", "+80", "٣", "²", "-1", "--port=80", "--json=1", "--help", "-h"]
word = st.sampled_from(WORDS) | st.text(max_size=4)
any_argv = st.tuples(st.sampled_from(["who", "status", "stop", "port", "url", "start", "free", "-v"]),
                     st.lists(word, max_size=6)).map(lambda t: [t[0], *t[1]])


@st.composite
def near_shapes(draw: st.DrawFn) -> list[str]:
    """A well-formed argv of one shape with one or two words replaced or inserted."""
    argv = draw(st.sampled_from(entry.SHAPES).flatmap(lambda pair: shape_argvs(pair[0])))
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(1, len(argv)))
        argv[at:at + draw(st.integers(0, 1))] = [draw(word)]
    return argv


@settings(max_examples=500, deadline=None)
@given(argv=any_argv | near_shapes())
def test_what_the_fast_path_takes_it_runs_as_click_would(argv: list[str]) -> None:
    """Any argv: when the fast path takes it, click calls the same function with the same
    values (run dir included); when click would refuse it or read it otherwise, the fast path
    declines it (and click says why)."""
    fast = via_fast_path(argv)
    if fast is not None:
        assert fast == via_click(argv), argv


def test_every_tricky_word_in_every_slot_parses_as_click_parses_it() -> None:
    """Each value slot of each shape, given each word click may read otherwise ("٣", "080",
    "65536", "-", "--"...): taken only with click's values."""
    templates = [["who", "?"], ["who", "--json", "?"], ["status", "?"], ["status", "--port", "?"],
                 ["stop", "?", "--port", "80"], ["stop", "--port", "?"], ["port", "?"], ["url", "?"]]
    taken = 0
    for template in templates:
        for value in [*WORDS, " 80", "80 ", "1e3", "0x50", "8_000", "١٢", "💥"]:
            argv = [value if w == "?" else w for w in template]
            fast = via_fast_path(argv)
            if fast is not None:
                taken += 1
                assert fast == via_click(argv), argv
    assert taken > 20  # the ordinary ones are taken


def shape_argvs(shape: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    """Well-formed argvs of ``shape``: its arguments, and its options in any order among them."""
    name = st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=8).filter(
        lambda w: not w.startswith("-"))
    port = st.integers(1, 65535).map(str)
    kind = {entry.PORT: port, entry.NAME: name}
    slots = shape[1:]
    parts: list[st.SearchStrategy[list[str]]] = []
    for i, slot in enumerate(slots):
        if slot == entry.NAMES:
            parts.append(st.lists(name.map(lambda w: [w]), max_size=3).map(lambda ws: [w for x in ws for w in x]))
        elif slot in kind and (i == 0 or not slots[i - 1].startswith("--")):
            parts.append(kind[slot].map(lambda w: [w]))
        elif slot.startswith("-"):
            value = kind.get(slots[i + 1]) if i + 1 < len(slots) and slots[i + 1] in kind else None
            spelt = st.sampled_from([slot, *(short for short, long in entry.ALIASES.items() if long == slot)])
            taken = st.tuples(spelt, value).map(list) if value is not None else st.just([slot])
            parts.append(st.one_of(st.just([]), taken, st.tuples(taken, taken).map(lambda p: p[0] + p[1])))
    return st.tuples(*parts).flatmap(lambda groups: st.permutations(groups)).map(
        lambda groups: [shape[0], *(w for g in groups for w in g)])


@pytest.mark.parametrize("shape, function", entry.SHAPES, ids=[s[0] for s, _ in entry.SHAPES])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_each_shape_is_taken_and_parses_as_click_parses_it(shape: tuple[str, ...], function: str,
                                                           data: st.DataObject) -> None:
    argv = data.draw(shape_argvs(shape))
    fast = via_fast_path(argv)
    assert fast is not None, f"the fast path declined {argv}"
    assert fast[0] == function
    assert fast == via_click(argv), argv


def test_the_shapes_name_commands_of_the_application_layer() -> None:
    for shape, function in entry.SHAPES:
        assert callable(getattr(commands, function)), function
        assert shape[0] in cli.commands, shape


@pytest.mark.parametrize("args", [["port", "nosuch"], ["status", "nosuch", "--json"], ["status", "--port", "9"]])
def test_both_entries_report_an_error_with_the_same_line_and_code(args: list[str], tmp_path: Path) -> None:
    click_result = CliRunner().invoke(cli, ["--run-dir", str(tmp_path), *args])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = entry._fast(["--run-dir", str(tmp_path), *args])
    assert code == click_result.exit_code == 3
    assert err.getvalue() == click_result.stderr
    assert err.getvalue().startswith("portctl: error: no") and err.getvalue().count("\n") == 1


def test_the_mapper_gives_library_errors_their_code_and_anything_else_one() -> None:
    assert exit_code_of(NotRunning.on_port(8001)) == 3
    assert message_of(NotRunning.on_port(8001)) == messages.not_running(8001)
    assert exit_code_of(BadInput.for_range("9-1")) == 2
    assert exit_code_of(KeyError("x")) == 1
    message, hint = message_of(KeyError("x"))
    assert message == "internal error: KeyError('x')" and "-v" in hint


def test_exceptions_word_themselves() -> None:
    busy = PortInUse.still_busy(8001)
    assert isinstance(busy, PortctlError) and busy.exit_code == 4 and "8001" in busy.message and busy.hint
    assert ChildExited.early(3).exit_code == 3 and "code 3" in ChildExited.early(3).message
    assert ChildExited.early(0).exit_code == 1 and "code 0" in ChildExited.early(0).message
    assert type(NotRunning.no_log("port 1")) is NotRunning  # a base-class wording keeps the class
    held = PortInUse.held_by(8001, [], messages.FREE_IT, run_dir="")
    assert held.holders == () and held.hint.startswith("free it with")
    assert PortInUse.held_by(8001, [], messages.PRODUCTION).hint.endswith("or pick another port")


# The face: every module but these is core, and must neither import nor load them.
FACE = {"portctl.face", "portctl.face.cli", "portctl.face.commands", "portctl.face.render", "portctl.face.entry",
        "portctl.face.statusview", "portctl.__main__"}
SRC = Path(__file__).resolve().parents[1] / "src" / "portctl"


def modules() -> set[str]:
    """Every module of the package, by its dotted name (a package by its own)."""
    found = set()
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found - {"portctl"}


def test_every_module_is_face_or_core_in_the_contract() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    core = next(c for c in config["tool"]["importlinter"]["contracts"] if c["name"].startswith("The core never"))
    sources = core["source_modules"]
    assert all(source in modules() for source in sources), sources
    for module in modules():
        in_core = any(module == source or module.startswith(source + ".") for source in sources)
        assert in_core != (module in FACE), module
    assert "portctl.face.render" in core["forbidden_modules"] and "rich" in core["forbidden_modules"]


def test_loading_the_core_loads_no_renderer(spawn: Callable[..., Popen]) -> None:
    """The contract, checked at run time too (import-linter needs Python 3.10)."""
    core = sorted(m for m in modules() if m not in FACE and m not in ("portctl.platform.windows", "portctl.demo"))
    face = ("portctl.face.render", "portctl.face.commands", "portctl.face.cli", "portctl.face.entry", "click", "rich")
    code = (f"import sys, importlib\nfor m in {core!r}: importlib.import_module(m)\n"
            f"print(' '.join(m for m in {face!r} if m in sys.modules))")
    proc = spawn([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split() == [], out  # (the demo app is left out: uvicorn loads click)
