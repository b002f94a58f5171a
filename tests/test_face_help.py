"""Issue 11, help and errors: help that teaches (`start --help`, every option described, whole
sentences in `portctl --help`, exit codes and environment in its epilog), one metavar and `-p`
for ports, usage errors in portctl's one-line style, and shell completion of instance names,
service names and ports (run for real: portctl as a subprocess, as the shell calls it)."""
from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator, Optional

import click
import pytest
from click.testing import CliRunner, Result

from portctl.base import errors
from portctl.face import entry
from portctl.face.cli import EPILOG, cli
from support.apps import app
from support.ports import free_ports
from support.processes import Popen

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, width: int = 80) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="portctl", terminal_width=width)


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and subcommand, read from click (one added later is covered too)."""
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


# ----------------------------------------------------------------------------- help that teaches

def test_start_help_explains_the_placeholders_with_examples_kept_as_written() -> None:
    result = invoke("start", "--help")
    assert result.exit_code == 0
    text = result.output
    for word in ("{port}", "{host}", "PORT and HOST", "demo app"):
        assert word in text, word
    lines = [line.strip() for line in text.splitlines()]
    assert "portctl start -p 8001 -- uvicorn app:app --port {port}" in lines  # not re-wrapped
    assert "portctl start" in lines  # no command: the demo app
    assert "Usage: portctl start [OPTIONS] [NAME... | -- CMD...]" in text


def test_every_option_of_every_command_has_a_description() -> None:
    missing = [f"{' '.join(path) or 'portctl'} {option.opts[-1]}"
               for path, command in [((), cli), *commands()]
               for option in command.params if isinstance(option, click.Option) and not option.help]
    assert missing == []


@pytest.mark.parametrize("width", [80, 50])
def test_group_help_gives_each_command_a_whole_sentence(width: int) -> None:
    """click cuts a long first sentence to "..." to fit the terminal: each command says what it
    does in a whole sentence instead, at any width."""
    for path, group in [((), cli), *((p, c) for p, c in commands() if isinstance(c, click.Group))]:
        text = invoke(*path, "--help", width=width).output
        listing = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
        rows: dict[str, str] = {}
        name = ""
        for line in listing.splitlines():
            first, _, rest = line.strip().partition(" ")
            if line.startswith("  ") and not line.startswith("   "):
                name, rows[first] = first, rest.strip()
            else:
                rows[name] += " " + line.strip()
        assert set(rows) == set(group.commands), text
        for command_name, sentence in rows.items():
            assert sentence == group.commands[command_name].short_help, (command_name, sentence)
            assert sentence.endswith(".") and not sentence.endswith("..."), (command_name, sentence)


def _epilog_codes(text: str) -> set[int]:
    block = text.split("Exit codes:", 1)[1].split("\n\n", 1)[0]
    return {int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s{2,}\S", block, re.MULTILINE)}


def test_the_epilog_lists_the_exit_codes_of_the_errors_and_of_the_readme() -> None:
    text = invoke("--help").output
    listed = _epilog_codes(text)
    raised = {cls.exit_code for cls in vars(errors).values()
              if inspect.isclass(cls) and issubclass(cls, errors.PortctlError)}
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    documented = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", readme, re.MULTILINE)}
    assert listed == {0} | raised | documented, (listed, raised, documented)
    assert "child's code" in text
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_the_epilog_names_every_environment_variable_portctl_reads() -> None:
    text = invoke("--help").output.split("Environment:", 1)[1]
    for variable in ("PORTCTL_RUN_DIR", "PORTCTL_ENV", "ENVIRONMENT", "NO_COLOR", "PORTCTL_PORTABLE",
                     entry.COMPLETE_VAR):
        assert variable in text, variable
    # Any variable the source reads by name is listed, or is one portctl sets for its children
    internal = {"PORT", "PORTCTL_TOKEN", "PORTCTL_NAME", "PORTCTL_PORT", "PATH", "PWD", "PYTHONUNBUFFERED"}
    read = set()
    for path in (ROOT / "src" / "portctl").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        read |= set(re.findall(r"environ(?:\.get\(|\[)\"([A-Z_]+)\"", source))
        read |= set(re.findall(r"\"([A-Z_]+)\" (?:not )?in os\.environ", source))
    assert read - internal <= set(re.findall(r"[A-Z_]{3,}", EPILOG)), read - internal


# ----------------------------------------------------------------------------- ports: one metavar, -p

def test_every_port_is_shown_as_port_and_every_port_option_has_p() -> None:
    for path, command in commands():
        options = [p for p in command.params if isinstance(p, click.Option) and "--port" in p.opts]
        for option in options:
            assert "-p" in option.opts, path
        text = invoke(*path, "--help").output
        if options:
            assert re.search(r"^  -p, --port PORT\b", text, re.MULTILINE), text
    assert invoke("who", "--help").output.startswith("Usage: portctl who [OPTIONS] PORT\n")
    assert invoke("free", "--help").output.startswith("Usage: portctl free [OPTIONS] PORT\n")


def test_p_is_port(tmp_path: Path) -> None:
    port = str(free_ports(1)[0])
    for args in (["status", "-p", port], ["status", "--port", port]):
        result = invoke("--run-dir", str(tmp_path), *args)
        assert result.exit_code == 3, result.output  # not running, on that port
    stopped = invoke("--run-dir", str(tmp_path), "stop", "-p", port)
    assert stopped.exit_code == 0, stopped.output
    assert invoke("start", "-p", "abc").stderr == "portctl: error: invalid port 'abc' (a number 1–65535, or auto)\n"


def test_the_fast_path_takes_p_as_click_does() -> None:
    assert entry.parse(["stop", "-p", "8001"]) == ("stop", {"names": (), "port": 8001})
    assert entry.parse(["status", "api", "-p", "8001", "--json"]) == (
        "status", {"names": ("api",), "port": 8001, "as_json": True})
    assert entry.parse(["who", "-p", "8001"]) is None  # who has no --port: click says so
    assert entry.parse(["stop", "-p8001"]) is None  # click's own spelling: click reads it


# ----------------------------------------------------------------------------- usage errors: one line

ONE_LINERS = [
    (["start", "--prot", "8001"], "no such option --prot (did you mean --port? see portctl start --help)"),
    (["start", "--port", "abc"], "invalid port 'abc' (a number 1–65535, or auto)"),
    (["start", "--port", "70000"], "invalid port '70000' (a number 1–65535, or auto)"),
    (["stop", "--port", "abc"], "invalid port 'abc' (a number 1–65535)"),
    (["who", "٣"], "invalid port '٣' (a number 1–65535)"),
    (["who"], "missing argument PORT (see portctl who --help)"),
    (["who", "80", "81"], "unexpected argument 81 (see portctl who --help)"),
    (["frobnicate"], "no such command 'frobnicate' (see portctl --help)"),
    (["--frobnicate"], "no such option --frobnicate (see portctl --help)"),
    (["start", "--port"], "option --port needs a value (see portctl start --help)"),
    (["status", "--json=yes"], "option --json takes no value (see portctl status --help)"),
    (["config", "show", "--x"], "no such option --x (see portctl config show --help)"),
    (["-v", "who", "abc"], "invalid port 'abc' (a number 1–65535)"),
    (["-v"], "missing command (see portctl --help)"),
    (["clean", "api"], "NAME, --anywhere and --force go with --sweep (see portctl clean --help)"),
]


@pytest.mark.parametrize("args, line", ONE_LINERS, ids=[" ".join(args) for args, _ in ONE_LINERS])
def test_a_usage_error_is_one_line_in_portctls_words(args: list[str], line: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"portctl: error: {line}\n"
    assert result.stdout == ""


BAD_VALUES = [
    (["start", "--restart", "sometimes"], ["invalid --restart", "'sometimes'", "on-failure", "portctl start --help"]),
    (["start", "--grace", "nan"], ["invalid --grace", "'nan'", "portctl start --help"]),
    (["logs", "-n", "abc"], ["invalid --lines: 'abc' is not a whole number", "portctl logs --help"]),
    (["export", "nowhere"], ["invalid TARGET", "'nowhere'", "kubernetes"]),
    (["stat"], ["no such command 'stat'", "see portctl --help"]),
]


@pytest.mark.parametrize("args, words", BAD_VALUES, ids=[" ".join(args) for args, _ in BAD_VALUES])
def test_bad_values_and_choices_are_one_line_too(args: list[str], words: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("portctl: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Usage:" not in result.output and "Try " not in result.output
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_no_arguments_is_still_the_help() -> None:
    for args in ([], ["config"]):
        result = invoke(*args)
        assert result.output.startswith(f"Usage: portctl {' '.join(args)}".rstrip() + " [OPTIONS] COMMAND")


def test_a_real_process_prints_the_one_line(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    for args, line in ((["start", "--prot", "1"], "no such option --prot (did you mean --port? see portctl start --help)"),
                       (["who", "abc"], "invalid port 'abc' (a number 1–65535)")):
        result = run_portctl(spawn, tmp_path, *args)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", f"portctl: error: {line}\n")


# ----------------------------------------------------------------------------- shell completion

def run_portctl(spawn: Callable[..., Popen], cwd: Path, *args: str,
                env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    proc = spawn([sys.executable, "-m", "portctl", *args], cwd=cwd, env={"PORTCTL_RUN_DIR": "", **(env or {})},
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def offered(spawn: Callable[..., Popen], cwd: Path, line: str, *args: str) -> list[str]:
    """What bash completion offers for the command line ``line`` (the word after its last
    space is the one being completed), asked as the bash script click writes asks it."""
    words = line.split(" ")
    result = run_portctl(spawn, cwd, *args, env={entry.COMPLETE_VAR: "bash_complete", "COMP_WORDS": line,
                                                 "COMP_CWORD": str(len(words) - 1)})
    assert result.returncode == 0 and result.stderr == "", result
    return [row.split(",", 1)[1] for row in result.stdout.splitlines() if row]


PROJECT = """\
[services.web]
command = ["python", "-m", "http.server", "{port}"]
port = "auto"

[services.worker]
command = ["python", "-c", "import time; time.sleep(60)"]
"""


@pytest.fixture
def project(tmp_path: Path, spawn: Callable[..., Popen]) -> Iterator[tuple[Path, list[int]]]:
    """A project directory (services web and worker, never started) whose run dir holds two
    real detached instances, api and db: (the directory, their ports)."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "portctl.toml").write_text(PROJECT)
    ports = free_ports(2)
    started: list[int] = []
    try:
        for name, port in zip(("api", "db"), ports):
            result = run_portctl(spawn, root, "start", "-d", "--name", name, "-p", str(port), "--",
                                 *app("listener", "{port}"))
            assert result.returncode == 0, result.stderr
            started.append(port)
        yield root, ports
    finally:
        for port in started:
            run_portctl(spawn, root, "stop", "-p", str(port))


def test_completion_offers_instances_services_and_ports(project: tuple[Path, list[int]],
                                                        spawn: Callable[..., Popen], tmp_path: Path) -> None:
    root, (api, db) = project
    ports = sorted([str(api), str(db)])
    assert offered(spawn, root, "portctl stop ") == ["api", "db", "web", "worker"]
    assert offered(spawn, root, "portctl stop a") == ["api"]
    assert offered(spawn, root, "portctl restart w") == ["web", "worker"]
    assert offered(spawn, root, "portctl status api ") == ["api", "db", "web", "worker"]
    assert offered(spawn, root, "portctl forget ") == ["api", "db"]  # instances only
    assert offered(spawn, root, "portctl start ") == ["web", "worker"]  # services only
    assert offered(spawn, root, "portctl start -- ") == []  # the server command: not ours
    assert offered(spawn, root, "portctl stop --port ") == ports
    assert offered(spawn, root, "portctl logs -p ") == ports
    assert offered(spawn, root, "portctl who ") == ports
    assert offered(spawn, root, "portctl start -p ") == ["auto", *ports]  # start's port may be auto
    assert offered(spawn, root, "portctl start --port a") == ["auto"]
    assert offered(spawn, root, f"portctl free {str(api)[:-1]}") == [p for p in ports if p.startswith(str(api)[:-1])]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert offered(spawn, root, f"portctl --run-dir {elsewhere} stop ") == ["web", "worker"]


def test_the_fast_path_leaves_completion_to_click(project: tuple[Path, list[int]],
                                                  spawn: Callable[..., Popen]) -> None:
    """`portctl who 8001` is a fast path shape; asked to complete, click must answer it."""
    root, (api, db) = project
    assert offered(spawn, root, "portctl who ", "who", str(api)) == sorted([str(api), str(db)])


def test_a_broken_run_dir_or_project_file_completes_nothing(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    root = tmp_path / "proj"
    (root / ".portctl" / "specs").mkdir(parents=True)
    (root / ".portctl").chmod(0o777)  # writable by others: the security model refuses it
    (root / ".portctl" / "specs" / "8001.json").write_text("{not json")
    (root / ".server_8002.json").write_text("\0garbage")
    (root / "portctl.toml").write_text("[services.web\ncommand = ")
    assert offered(spawn, root, "portctl stop ") == []
    assert offered(spawn, root, "portctl who ") == []
    (root / ".portctl").chmod(0o700)
    (root / "portctl.toml").write_text(PROJECT)
    assert offered(spawn, root, "portctl stop ") == ["web", "worker"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_readme_lines_give_each_shell_its_script(shell: str, tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"_PORTCTL_COMPLETE={shell}_source portctl" in readme
    result = run_portctl(spawn, tmp_path, env={entry.COMPLETE_VAR: f"{shell}_source"})
    assert result.returncode == 0 and result.stderr == ""
    assert f"{entry.COMPLETE_VAR}={shell}_complete" in result.stdout


@pytest.mark.posix_only
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_through_the_readme_line(project: tuple[Path, list[int]], tmp_path: Path,
                                                spawn: Callable[..., Popen]) -> None:
    """The README's bash line in a real bash, with `portctl` on the PATH: Tab after `stop`."""
    root, _ = project
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "portctl"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m portctl \"$@\"\n")
    wrapper.chmod(0o755)
    script = textwrap.dedent("""\
        eval "$(_PORTCTL_COMPLETE=bash_source portctl)"
        COMP_WORDS=(portctl stop "") COMP_CWORD=2
        _portctl_completion portctl
        printf '%s\\n' "${COMPREPLY[@]}"
        """)
    proc = spawn(["bash", "--norc", "--noprofile", "-c", script], cwd=root, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 env={"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PORTCTL_RUN_DIR": ""})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(out.split()) == ["api", "db", "web", "worker"]
