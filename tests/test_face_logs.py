"""Logs people can read: stdout and stderr in the order written, the child's first lines after
the `started` line, optional timestamps on the child's lines (`start --timestamps`, a project's
`timestamps = true`), and `logs` showing several instances at once, each line after its name.
Real processes for what the supervisor writes; CliRunner for how `logs` shows files."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from portctl.core.logs import RotatingLog, stamp_lines
from portctl.face.cli import cli
from support.apps import app
from support.portctl import Portctl, finish
from support.ports import free_ports, unused_port
from support.processes import Popen, StdoutLines
from support.waits import accepts, wait_until

pytestmark = pytest.mark.timeout(120)

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"  # ISO 8601, local, with its offset
STAMPED = re.compile(STAMP + " ")
LIFECYCLE = re.compile(r"\[portctl [^\]]+\] ")


def log_lines(portctl: Portctl, name: str) -> list[str]:
    return (portctl.run_dir / ".portctl" / "logs" / f"{name}.log").read_text().splitlines()


def child_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if not LIFECYCLE.match(line)]


@pytest.fixture
def start_detached(portctl: Portctl) -> Iterator[Callable[..., int]]:
    """``start_detached(name, *args)``: `start -d --name NAME ARGS` on a free port, returned;
    every one is stopped after the test, whatever happened."""
    names: list[str] = []

    def start(name: str, *args: object) -> int:
        port = unused_port()
        names.append(name)
        done = portctl.run("start", "-d", "--port", port, "--name", name, *args)
        assert done.returncode == 0, done.stderr
        return port

    yield start
    if names:
        assert portctl.run("stop", *names).returncode == 0


# ---------------------------------------------------------------- stamping, pure
def test_stamp_lines_puts_one_stamp_at_the_start_of_each_line() -> None:
    assert stamp_lines(b"a\nb\n", True, b"T ") == b"T a\nT b\n"
    assert stamp_lines(b"half ", True, b"T ") == b"T half "
    assert stamp_lines(b"line\nnext", False, b"T ") == b"line\nT next"  # a continuation: no stamp
    assert stamp_lines(b"\n", True, b"T ") == b"T \n"  # an empty line is a line
    assert stamp_lines(b"win\r\n", True, b"T ") == b"T win\r\n"
    assert stamp_lines(b"", True, b"T ") == b""


@given(st.binary(max_size=200).map(lambda b: b.replace(b"T", b"")),
       st.lists(st.integers(0, 200), max_size=8))
def test_stamping_in_chunks_is_stamping_the_whole(data: bytes, cuts: list[int]) -> None:
    """However the pipe cuts the output, each line gets one stamp, at its start."""
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    out, at_start = b"", True
    for begin, end in zip(edges, edges[1:]):
        chunk = data[begin:end]
        out += stamp_lines(chunk, at_start, b"T ")
        at_start = at_start if not chunk else chunk.endswith(b"\n")
    assert out == stamp_lines(data, True, b"T ")


def test_log_stamps_lines_not_chunks_and_lifecycle_lines_start_a_line(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "a.log", timestamps=True)
    log.write(b"half ")
    log.write(b"line\nnext")
    log.lifecycle("ready")  # after the child's partial line: on a line of its own
    log.write(b" more\n")
    log.close()
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert [STAMPED.sub("<T> ", line, count=1) for line in lines] == \
        ["<T> half line", "<T> next", lines[2], "<T>  more"]
    assert LIFECYCLE.match(lines[2]) and lines[2].endswith("] ready")


def test_without_timestamps_the_output_is_kept_as_written(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "a.log")
    log.write(b"prompt: ")
    log.lifecycle("ready")
    log.write(b"rest\n")
    log.close()
    first, second, third = (tmp_path / "a.log").read_text().splitlines()
    assert (first, third) == ("prompt: ", "rest") and LIFECYCLE.match(second)


def test_a_log_an_earlier_run_left_mid_line_gets_its_next_line_apart(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"killed mid-li")
    log = RotatingLog(tmp_path / "a.log")
    log.lifecycle("started")
    log.close()
    first, second = (tmp_path / "a.log").read_text().splitlines()
    assert first == "killed mid-li" and LIFECYCLE.match(second) and second.endswith("] started")


# ---------------------------------------------------------------- order, with real children
def test_stdout_and_stderr_keep_the_order_they_were_written_in(portctl: Portctl,
                                                                 start_detached: Callable[..., int]) -> None:
    start_detached("talker", "--", *app("talker", "{port}", "--lines", 200))
    expected = [f"{'err' if i % 2 else 'out'} {i}" for i in range(200)]
    lines = log_lines(portctl, "talker")
    assert child_lines(lines) == expected
    assert lines[0].endswith("] started")


@pytest.mark.posix_only
def test_the_first_lines_of_a_child_come_after_started(portctl: Portctl,
                                                        start_detached: Callable[..., int]) -> None:
    """A shell prints within a millisecond of its exec: before the fix its lines often came
    before the `started` line (and stderr before stdout)."""
    for n in range(3):
        start_detached(f"quick{n}", "--", "sh", "-c",
                       'printf "first\\n"; printf "second\\n" >&2; exec "$0" "$@"', *app("talker", "{port}"))
    for n in range(3):
        lines = log_lines(portctl, f"quick{n}")
        assert lines[0].endswith("] started") and child_lines(lines)[:2] == ["first", "second"], lines


# ---------------------------------------------------------------- timestamps
def runs_of(lines: list[str]) -> list[list[str]]:
    """The child's lines of each run (each begins with a `started` line)."""
    runs: list[list[str]] = []
    for line in lines:
        if LIFECYCLE.match(line):
            if line.endswith("] started"):
                runs.append([])
        elif runs:
            runs[-1].append(line)
    return runs


def test_timestamps_are_recorded_and_kept_by_restart(portctl: Portctl, start_detached: Callable[..., int]) -> None:
    """Each line is stamped once, at its start, a line written in two pieces too (a `ready`
    line of the supervisor may come between the pieces: the rest then starts a line)."""
    port = start_detached("stamped", "--timestamps", "--",
                          *app("talker", "{port}", "--lines", 2, "--partial"))

    def run_done(count: int) -> list[list[str]]:
        runs = runs_of(log_lines(portctl, "stamped"))
        return runs if len(runs) == count and runs[-1] and runs[-1][-1].endswith("line") else []

    def check(run: list[str], stamped: bool) -> None:
        texts = [STAMPED.sub("", line, count=1) if stamped else line for line in run]
        assert all(bool(STAMPED.match(line)) is stamped for line in run), run
        assert not any(re.search(STAMP, text) for text in texts), run  # never a stamp inside a line
        assert "".join(texts) == "out 0err 1half line", run

    check(wait_until(lambda: run_done(1), what="the child's lines")[0], stamped=True)
    assert portctl.record(port)["timestamps"] is True

    assert portctl.run("restart", "stamped").returncode == 0  # the recorded spec keeps --timestamps
    check(wait_until(lambda: run_done(2), what="the restarted child's lines")[1], stamped=True)

    assert portctl.run("restart", "stamped", "--no-timestamps").returncode == 0
    check(wait_until(lambda: run_done(3), what="the lines of the child restarted without")[2], stamped=False)
    assert portctl.record(port)["timestamps"] is False


def test_foreground_timestamps_stamp_the_terminal_echo(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--timestamps", "--", *app("talker", "{port}", "--lines", 4))
    code, out, _ = finish(proc)
    assert code == 0
    echoed = [line for line in out.splitlines() if STAMPED.match(line)]
    # stderr shares the pipe: on stdout too, in the order written
    assert [STAMPED.sub("", line) for line in echoed] == ["out 0", "err 1", "out 2", "err 3"], out


@pytest.mark.posix_only
def test_a_project_service_takes_timestamps_from_its_table_or_the_defaults(
        tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    from portctl.project.config import find_project

    root = tmp_path / "proj"
    root.mkdir()
    api, web = free_ports(2)
    talker = [sys.executable, str(Path(app("talker")[1])), "{port}", "--lines", "2"]
    (root / "portctl.toml").write_text(textwrap.dedent(f"""
        [defaults]
        timestamps = true

        [services.api]
        command = {json.dumps(talker)}
        port = {api}

        [services.web]
        command = {json.dumps(talker)}
        port = {web}
        timestamps = false
        """))
    project = find_project(root)
    assert project is not None
    assert [s.to_spec({}).timestamps for s in project.services] == [True, False]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = spawn([sys.executable, "-m", "portctl", *args], cwd=root,
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=90)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    try:
        assert run("start", "-d").returncode == 0
        logs = root / ".portctl" / "logs"
        wait_until(lambda: len(child_lines((logs / "api.log").read_text().splitlines())) == 2
                   and len(child_lines((logs / "web.log").read_text().splitlines())) == 2, what="both logs")
        assert all(STAMPED.match(line) for line in child_lines((logs / "api.log").read_text().splitlines()))
        assert child_lines((logs / "web.log").read_text().splitlines()) == ["out 0", "err 1"]
    finally:
        assert run("stop").returncode == 0
    assert not accepts(api) and not accepts(web)


def test_a_timestamps_key_that_is_no_boolean_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "portctl.toml").write_text('[services.api]\ncommand = "x"\ntimestamps = "yes"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 2 and "timestamps" in result.output and "true or false" in result.output


# ---------------------------------------------------------------- `logs` of several instances
def write_logs(run_dir: Path, **logs: str) -> None:
    for name, text in logs.items():
        log = RotatingLog(run_dir / ".portctl" / "logs" / f"{name}.log")
        log.write(text.encode())
        log.close()


def logs_cli(run_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--run-dir", str(run_dir), "logs", *args])
    return result.exit_code, result.output


def test_logs_shows_every_instance_each_line_after_its_name(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(run_dir)  # no project here
    write_logs(run_dir, api="a1\na2\n", webapp="w1\n")
    both = ["api    | a1", "api    | a2", "webapp | w1"]
    assert logs_cli(run_dir) == (0, "\n".join(both) + "\n")  # piped (not a terminal): plain
    assert logs_cli(run_dir, "api", "webapp", "-n", "1") == (0, "api    | a2\nwebapp | w1\n")
    assert logs_cli(run_dir, "webapp", "api", "-n", "1") == (0, "webapp | w1\napi    | a2\n")
    assert logs_cli(run_dir, "api") == (0, "a1\na2\n")  # one log: as it is, as before


def test_logs_of_an_unknown_name_lists_the_logs_there_are(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(run_dir)
    code, out = logs_cli(run_dir, "nope")
    assert code == 1 and "no log for 'nope'" in out  # no log at all: nothing to list
    write_logs(run_dir, api="a\n", web="w\n")
    code, out = logs_cli(run_dir, "api", "nope")
    assert code == 3 and "no log for 'nope'" in out and "logs here: api, web" in out
    assert out.count("\n") == 1  # one line, no traceback
    code, out = logs_cli(run_dir, "../x")
    assert code == 2


@pytest.mark.posix_only
def test_logs_prefixes_are_coloured_on_a_terminal(run_dir: Path, spawn: Callable[..., Popen]) -> None:
    import pty

    write_logs(run_dir, api="a1\n", web="w1\n")
    master, slave = pty.openpty()
    try:
        proc = spawn([sys.executable, "-m", "portctl", "--run-dir", str(run_dir), "logs"],
                            cwd=run_dir, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items() if k != "NO_COLOR"})
        os.close(slave)
        assert proc.wait(timeout=60) == 0
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    text = out.decode()
    assert "\x1b[36mapi |\x1b[0m a1" in text and "\x1b[33mweb |\x1b[0m w1" in text, text


def test_logs_follow_interleaves_several_instances(portctl: Portctl, tmp_path: Path,
                                                   start_detached: Callable[..., int]) -> None:
    go = tmp_path / "go"
    for name in ("a", "bb"):
        start_detached(name, "--", *app("talker", "{port}", "--go-file", go))
    follower = portctl.launch("logs", "-f", "-n", "1")
    reader = StdoutLines(follower)
    seen = reader.lines
    wait_until(lambda: len(seen) >= 2, what="the follower's first lines (the last line of each log)")
    go.touch()
    wait_until(lambda: any(line.endswith(" a  | after go") for line in seen)
               and any(line.endswith(" bb | after go") for line in seen), what="both logs followed")
    code, _, _ = finish(follower, signal.SIGINT)
    reader.join()
    assert code == 0
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d (a |bb) \| .*", line) for line in seen), seen
