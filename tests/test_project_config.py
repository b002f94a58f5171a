"""Projects, section 1: the model (start order, placeholders, environment, ServerSpec), the
loader (portctl.toml, [tool.portctl], Procfile, .env) with its errors pointing at the line,
and `portctl config check/show`. Pure, but for the CLI tests (CliRunner, one real process)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from portctl.cli import cli
from portctl.errors import BadInput
from portctl.project.config import ConfigError, find_project, load_project, procfile_command
from portctl.project.model import AUTO, Project, Service, env_var_name, placeholders, substitute

SRC = Path(__file__).resolve().parent.parent / "src"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(tmp_path: Path, text: str) -> Project:
    return load_project(write(tmp_path / "portctl.toml", text))


def error(tmp_path: Path, text: str, name: str = "portctl.toml") -> ConfigError:
    file = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as caught:
        load_project(file)
    assert caught.value.file == file.resolve()
    assert caught.value.exit_code == 2
    return caught.value


EXAMPLE = """
    [defaults]
    grace = 3
    env = { LOG_LEVEL = "info" }

    [services.api]
    command = "uvicorn main:app --port {port}"
    port = "auto"
    port_range = "1421-1500"
    health = "/health"

    [services.web]
    command = ["node", "server.js", "--api", "{services.api.url}"]
    cwd = "web"
    depends_on = { api = "healthy" }

    [services.web.env]
    VITE_API_URL = "{services.api.url}"
    LOG_LEVEL = "debug"
"""


def example(tmp_path: Path) -> Project:
    (tmp_path / "web").mkdir(exist_ok=True)
    return load(tmp_path, EXAMPLE)


# ------------------------------------------------------------------ finding the file

def test_found_upward_from_a_subdirectory(tmp_path: Path) -> None:
    project = example(tmp_path)
    deep = tmp_path / "web" / "src" / "deep"
    deep.mkdir(parents=True)
    found = find_project(deep)
    assert found == project
    assert found is not None and found.root == tmp_path.resolve()
    assert found.file == (tmp_path / "portctl.toml").resolve()


def no_project_above(path: Path) -> None:
    for directory in [path, *path.parents]:
        for name in ("portctl.toml", "pyproject.toml", "Procfile"):
            if (directory / name).exists():
                pytest.skip(f"{directory / name} exists above the test's directory")


def test_nothing_found_is_none(tmp_path: Path) -> None:
    no_project_above(tmp_path)
    assert find_project(tmp_path) is None


def test_pyproject_tool_portctl_and_lines_under_its_prefix(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
        [project]
        name = "x"

        [tool.portctl.services.api]
        command = "python -m http.server {port}"
        port = 8001
    """)
    project = find_project(tmp_path)
    assert project is not None and project.names() == ("api",)
    assert project.service("api").port == 8001
    err = error(tmp_path, """
        [project]
        name = "x"
        [tool.portctl.services.api]
        command = "x"
        prot = 8001
    """, "pyproject.toml")
    assert (err.line, err.key) == (5, "tool.portctl.services.api.prot")


def test_a_pyproject_without_tool_portctl_is_passed_over(tmp_path: Path) -> None:
    example(tmp_path)
    write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "pkg"  # not in [tool.portctl]\n')
    found = find_project(tmp_path / "pkg")
    assert found is not None and found.file.name == "portctl.toml"


def test_the_nearest_file_wins_and_portctl_toml_before_procfile(tmp_path: Path) -> None:
    example(tmp_path)
    write(tmp_path / "web" / "Procfile", "ui: node ui.js\n")
    assert find_project(tmp_path / "web").names() == ("ui",)  # type: ignore[union-attr]
    write(tmp_path / "Procfile", "other: x\n")
    assert find_project(tmp_path).file.name == "portctl.toml"  # type: ignore[union-attr]


# ------------------------------------------------------------------ parsing

def test_services_defaults_and_types(tmp_path: Path) -> None:
    project = example(tmp_path)
    api, web = project.services
    assert api.command == ("uvicorn", "main:app", "--port", "{port}")
    assert api.port == AUTO and api.auto and api.port_range == (1421, 1500)
    assert api.grace_s == web.grace_s == 3.0  # from [defaults]
    assert api.env == {"LOG_LEVEL": "info"}
    assert web.env == {"LOG_LEVEL": "debug", "VITE_API_URL": "{services.api.url}"}  # merged, service wins
    assert web.cwd == (tmp_path / "web").resolve() and api.cwd == tmp_path.resolve()
    assert web.depends_on == {"api": "healthy"}


def test_every_start_option_has_a_key(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [services.w]
        command = "w"
        port = 9001
        host = "0.0.0.0"
        ready_timeout = 12
        restart = "always"
        stop_signal = "sigint"
        health_interval = 2
        health_timeout = 0.5
        health_failures = 4
        backoff_initial = 0.2
        backoff_max = 9
        backoff_reset = 11
        max_restarts = 3
        restart_window = 20
        log_max_bytes = 2048
        log_backups = 2
        sweep = "node .*frontend"
        depends_on = []
        env = { N = 1, B = false }
    """)
    w = project.service("w")
    assert (w.ready_timeout_s, w.restart, w.stop_signal) == (12.0, "always", "INT")
    assert (w.health_interval_s, w.health_timeout_s, w.health_failures) == (2.0, 0.5, 4)
    b = w.backoff
    assert (b.initial_s, b.max_s, b.reset_after_s, b.max_restarts, b.window_s) == (0.2, 9.0, 11.0, 3, 20.0)
    assert (w.log_max_bytes, w.log_backups, w.sweep) == (2048, 2, ("node .*frontend",))
    assert w.env == {"N": "1", "B": "false"}
    assert w.url(9001) == "http://127.0.0.1:9001"  # a wildcard host is reached on loopback


def test_depends_on_as_a_list_means_ready(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [services.a]
        command = "a"
        [services.b]
        command = "b"
        depends_on = ["a"]
    """)
    assert project.service("b").depends_on == {"a": "ready"}


# ------------------------------------------------------------------ errors at their line

@pytest.mark.parametrize("text, line, key, words", [
    ('[services.api]\ncommand = "x"\nprot = 1\n', 3, "services.api.prot", "did you mean 'port'"),
    ('[services.api]\ncommand = "x"\nready-timeout = 1\n', 3, "services.api.ready-timeout",
     "did you mean 'ready_timeout'"),
    ('[default]\ngrace = 1\n[services.a]\ncommand = "x"\n', 1, "default", "did you mean 'defaults'"),
    ('[defaults]\ncommand = "x"\n[services.a]\ncommand = "x"\n', 2, "defaults.command",
     "not a project-wide setting (set command in each [services.NAME] table"),
    ('[services.api]\ncommand = "x"\nport = "abc"\n', 3, "services.api.port", 'or "auto"'),
    ('[services.api]\ncommand = "x"\nport = 70000\n', 3, "services.api.port", "1-65535"),
    ('[services.api]\ncommand = "x"\nport_range = "9-1"\n', 3, "services.api.port_range", "LOW-HIGH"),
    ('[services.api]\ncommand = 5\n', 2, "services.api.command", "not an integer"),
    ('[services.api]\ncommand = ""\n', 2, "services.api.command", "is empty"),
    ('[services.api]\ncommand = "a \'b"\n', 2, "services.api.command", "cannot be split"),
    ('[services.api]\nport = 1\n', 1, "services.api", "no command"),
    ('[services.api]\ncommand = "x"\ngrace = "5"\n', 3, "services.api.grace", "number of seconds"),
    ('[services.api]\ncommand = "x"\nready_timeout = 0\n', 3, "services.api.ready_timeout", "must be > 0"),
    ('[services.api]\ncommand = "x"\nhealth_interval = 1e9\n', 3, "services.api.health_interval", "finite"),
    ('[services.api]\ncommand = "x"\nhealth_failures = 0\n', 3, "services.api.health_failures", ">= 1"),
    ('[services.api]\ncommand = "x"\nrestart = "on_failure"\n', 3, "services.api.restart",
     "did you mean 'on-failure'"),
    ('[services.api]\ncommand = "x"\nstop_signal = "TREM"\n', 3, "services.api.stop_signal", "did you mean 'TERM'"),
    ('[services.api]\ncommand = "x"\nhealth = "health"\n', 3, "services.api.health", "a path (/health)"),
    ('[services.api]\ncommand = "x"\nsweep = ["("]\n', 3, "services.api.sweep", "not a regular expression"),
    ('[services.api]\ncommand = "x"\ncwd = "nowhere"\n', 3, "services.api.cwd", "not a directory"),
    ('[services.api]\ncommand = "x"\nenv_file = ["nope.env"]\n', 3, "services.api.env_file", "no such file"),
    ('[services.api]\ncommand = "x"\n\n[services.api.env]\nA = "1"\nB = [1]\n', 6, "services.api.env.B",
     "must be a string"),
    ('[services.api]\ncommand = "x"\nenv = { A = "1", B = {} }\n', 3, "services.api.env.B", "must be a string"),
    ('[services]\napi = { command = "x", prot = 1 }\n', 2, "services.api.prot", "did you mean 'port'"),
    ('[services.api]\ncommand = "x"\ndepends_on = { db = "up" }\n', 3, "services.api.depends_on.db",
     "started, ready, healthy"),
    ('services = 3\n', 1, "services", "must be a table"),
    ('[defaults]\ngrace = 1\n', 1, "", "no services defined"),
    ('[services."../x"]\ncommand = "x"\n', 1, 'services.../x', "invalid name"),
    ('[services.api]\ncommand = "x"\nport = = 3\n', 3, "", "not valid TOML"),
])
def test_each_error_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str,
                                            words: str) -> None:
    err = error(tmp_path, text)
    assert (err.line, err.key) == (line, key), err.message
    assert words in f"{err.message} ({err.hint})"
    assert err.message.startswith(f"{tmp_path.resolve() / 'portctl.toml'}:{line}: ")
    assert "\n" not in err.message


def test_unknown_dependency_with_did_you_mean(tmp_path: Path) -> None:
    err = error(tmp_path, """
        [services.backend]
        command = "x"

        [services.frontend]
        command = "y"
        depends_on = ["backnd"]
    """)
    assert (err.line, err.key) == (6, "services.frontend.depends_on")
    assert "unknown service 'backnd'" in err.message and err.hint == "did you mean 'backend'?"


def test_unknown_service_in_a_placeholder(tmp_path: Path) -> None:
    err = error(tmp_path, """
        [services.api]
        command = "x"

        [services.web]
        command = "y"
        env = { URL = "{services.apii.url}" }
    """)
    assert (err.line, err.key) == (6, "services.web.env.URL")
    assert err.hint == "did you mean 'api'?"


def test_a_cycle_is_named(tmp_path: Path) -> None:
    err = error(tmp_path, """
        [services.a]
        command = "a"
        depends_on = ["c"]

        [services.b]
        command = "b"
        depends_on = ["a"]

        [services.c]
        command = "c"
        depends_on = ["b"]
    """)
    assert "dependency cycle: a -> c -> b -> a" in err.message
    assert (err.line, err.key) == (3, "services.a.depends_on")
    err = error(tmp_path, '[services.a]\ncommand = "a"\ndepends_on = ["a"]\n')
    assert "dependency cycle: a -> a" in err.message


def test_duplicate_fixed_ports(tmp_path: Path) -> None:
    err = error(tmp_path, """
        [services.a]
        command = "a"
        port = 8001

        [services.b]
        command = "b"
        port = 8001
    """)
    assert (err.line, err.key) == (7, "services.b.port")
    assert "port 8001 is also the port of service 'a' (line 3)" in err.message


def test_two_auto_ports_are_no_duplicates(tmp_path: Path) -> None:
    project = load(tmp_path, '[services.a]\ncommand = "a"\n[services.b]\ncommand = "b"\nport = "auto"\n')
    assert [s.port for s in project.services] == [AUTO, AUTO]  # no port: auto


# ------------------------------------------------------------------ Procfile

def test_procfile_entries_ports_and_commands(tmp_path: Path) -> None:
    write(tmp_path / "Procfile", """
        # the app
        web: gunicorn -b 0.0.0.0:$PORT app:app
        worker:python worker.py

        release: ./migrate && echo done
    """)
    project = find_project(tmp_path)
    assert project is not None and project.names() == ("web", "worker", "release")
    web, worker, release = project.services
    assert web.command == ("gunicorn", "-b", "0.0.0.0:{port}", "app:app")
    assert worker.command == ("python", "worker.py")
    assert release.command == ("sh", "-c", "./migrate && echo done")
    assert [(s.port, s.port_range) for s in project.services] == [
        (5000, (5000, 5099)), (5100, (5100, 5199)), (5200, (5200, 5299))]
    assert web.to_spec({}).argv()[2] == "0.0.0.0:5000"


def test_procfile_command_forms() -> None:
    assert procfile_command("node ${PORT}") == ("node", "{port}")
    assert procfile_command("FOO=1 node x") == ("sh", "-c", "FOO=1 node x")
    assert procfile_command("echo $HOME") == ("sh", "-c", "echo $HOME")


@pytest.mark.parametrize("text, line, words", [
    ("web: a\nbad line\n", 2, "expected NAME: COMMAND"),
    ("web: a\nweb: b\n", 2, "defined twice (first on line 1)"),
    (".hidden: a\n", 1, "invalid name"),
    ("# nothing\n", 1, "no services defined"),
])
def test_procfile_errors(tmp_path: Path, text: str, line: int, words: str) -> None:
    err = error(tmp_path, text, "Procfile")
    assert err.line == line and words in err.message


# ------------------------------------------------------------------ .env and precedence

def test_dotenv_semantics_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "shell")
    write(tmp_path / ".env", """
        # comment
        export QUOTED="a b # not a comment"
        SINGLE='single quoted'
        EXPANDED=${FROM_SHELL}-${QUOTED}
        LEVEL=dotenv
        ONLY_DOTENV=1
    """)
    write(tmp_path / "svc.env", "LEVEL=env_file\nFILE_ONLY=yes\n")
    write(tmp_path / "more.env", "FILE_ONLY=later file wins\n")
    project = load(tmp_path, """
        [services.api]
        command = "x"
        env_file = ["svc.env", "more.env"]
        env = { LEVEL = "env" }

        [services.other]
        command = "y"
        env_file = "svc.env"
    """)
    assert project.dotenv["QUOTED"] == "a b # not a comment"
    assert project.dotenv["SINGLE"] == "single quoted"
    assert project.dotenv["EXPANDED"] == "shell-a b # not a comment"
    shell = {"LEVEL": "shell", "PATH": "/bin", "ONLY_DOTENV": "shell"}
    env = project.environment("api", {"api": 8001, "other": 8002}, shell)
    assert env["LEVEL"] == "env" and env["PATH"] == "/bin" and env["ONLY_DOTENV"] == "1"
    assert env["FILE_ONLY"] == "later file wins"
    assert project.environment("other", {}, shell)["LEVEL"] == "env_file"
    assert project.environment("other", {}, {"LEVEL": "shell"})["LEVEL"] == "env_file"
    assert load(tmp_path, '[services.a]\ncommand = "a"\n').environment("a", {}, shell)["LEVEL"] == "dotenv"


# ------------------------------------------------------------------ wiring

def test_placeholders_and_portctl_variables(tmp_path: Path) -> None:
    project = example(tmp_path)
    ports = {"api": 1425, "web": 5173}
    env = project.environment("web", ports, {})
    assert env["VITE_API_URL"] == "http://127.0.0.1:1425"
    assert env["PORTCTL_API_PORT"] == "1425" and env["PORTCTL_WEB_URL"] == "http://127.0.0.1:5173"
    spec = project.spec("web", ports, {"PATH": "/bin"})
    assert spec.command[-1] == "http://127.0.0.1:1425"
    assert (spec.port, spec.auto_port, spec.port_range, spec.name) == (5173, False, None, "web")
    assert dict(spec.env or ())["PORTCTL_API_URL"] == "http://127.0.0.1:1425"
    assert spec.cwd == str((tmp_path / "web").resolve()) and spec.grace_s == 3.0
    node = tmp_path / "bin" / "node"
    write(node, "#!/bin/sh\n").chmod(0o755)
    spec = project.spec("web", ports, {"PATH": str(node.parent)})
    assert spec.executable == str(node) and spec.argv()[0] == str(node)  # resolved as `start` records it


def test_substitute_leaves_the_rest() -> None:
    values = {"services.a.b.port": "1"}
    assert substitute("{services.a.b.port} {port} {services.x.url}", values) == "1 {port} {services.x.url}"
    assert placeholders("{services.api.url}/x{services.db.port}") == [("api", "url"), ("db", "port")]
    assert env_var_name("web-ui.v2") == "WEB_UI_V2"


def test_health_url_placeholder_and_ipv6_url(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [services.api]
        command = "x"
        port = 8001
        host = "::"

        [services.gw]
        command = "y"
        health = "{services.api.url}/health"
    """)
    assert project.spec("gw", {}, {}).health == "http://[::1]:8001/health"


def test_to_spec_keeps_the_services_own_port_choice_without_a_resolved_port() -> None:
    auto = Service("a", ("a",), Path("/"), port_range=(9000, 9010))
    spec = auto.to_spec({})
    assert (spec.port, spec.auto_port, spec.port_range, spec.restart) == (9000, True, (9000, 9010), "no")
    assert auto.to_spec({}, detached=True).restart == "on-failure"
    assert Service("b", ("b",), Path("/")).to_spec({}).auto_port is True
    fixed = Service("c", ("c",), Path("/"), port=7000).to_spec({})
    assert (fixed.port, fixed.auto_port, fixed.env) == (7000, False, None)


def diamond() -> Project:
    def svc(name: str, *deps: str) -> Service:
        return Service(name, (name,), Path("/"), depends_on={d: "ready" for d in deps})
    return Project(Path("/"), Path("/portctl.toml"),
                   (svc("web", "api", "auth"), svc("api", "db"), svc("auth", "db"), svc("db"), svc("cron")))


def test_start_order_levels_are_deterministic() -> None:
    project = diamond()
    assert project.start_order() == (("cron", "db"), ("api", "auth"), ("web",))
    assert project.start_order(["api"]) == (("db",), ("api",))
    assert project.stop_order() == (("web",), ("api", "auth"), ("cron", "db"))
    assert project.stop_order(["api"]) == (("web",), ("api",))  # its dependents stop first
    assert project.stop_order(["db"]) == (("web",), ("api", "auth"), ("db",))


def test_unknown_names_in_the_api(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no service 'ap'") as caught:
        diamond().start_order(["ap"])
    assert caught.value.hint == "did you mean 'api'?"


# ------------------------------------------------------------------ portctl config

def invoke(args: list[str], where: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(where)
    return CliRunner().invoke(cli, ["--run-dir", str(where), "config", *args])


def test_config_check_from_a_subdirectory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example(tmp_path)
    result = invoke(["check"], tmp_path / "web", monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.output == (f"{(tmp_path / 'portctl.toml').resolve()}: ok, 2 services (api, web), "
                             "start order: api; web\n")


def test_config_check_points_at_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "portctl.toml", '[services.api]\ncommand = "x"\nprot = 1\n')
    (tmp_path / "sub").mkdir()
    result = invoke(["check"], tmp_path / "sub", monkeypatch)
    assert result.exit_code == 2
    assert result.output == (f"portctl: error: {(tmp_path / 'portctl.toml').resolve()}:3: services.api.prot: "
                             "unknown key (did you mean 'port'?)\n")


def test_config_without_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_project_above(tmp_path)
    result = invoke(["show"], tmp_path, monkeypatch)
    assert result.exit_code == 2
    assert result.output.startswith(f"portctl: error: no project file in {tmp_path} or above (")


def test_config_show_json_and_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example(tmp_path)
    write(tmp_path / ".env", "API_TOKEN=s3cret\nDEBUG=1\n")
    result = invoke(["show", "--json"], tmp_path / "web", monkeypatch)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["start_order"] == [["api"], ["web"]] and data["root"] == str(tmp_path.resolve())
    api, web = data["services"]
    assert (api["port"], api["port_range"], api["url"]) == ("auto", "1421-1500", None)
    assert web["depends_on"] == {"api": "healthy"}
    assert web["env"]["API_TOKEN"] == "***" and web["env"]["DEBUG"] == "1"
    assert web["env"]["VITE_API_URL"] == "{services.api.url}"  # auto: known once started
    text = invoke(["show"], tmp_path / "web", monkeypatch)
    assert text.exit_code == 0
    assert "  depends on: api (healthy)" in text.output and "    API_TOKEN=***" in text.output
    assert "s3cret" not in text.output
    assert text.output.endswith("start order: api; web\n")


def test_config_check_as_a_real_process_from_a_subdirectory(tmp_path: Path, spawn: Any) -> None:
    write(tmp_path / "portctl.toml", """
        [services.api]
        command = "python -m http.server {port}"
        port = 8765

        [services.web]
        command = "node server.js"
        env = { API = "{services.api.url}" }
        depends_on = ["api"]
    """)
    (tmp_path / "a" / "b").mkdir(parents=True)
    proc = spawn([sys.executable, "-m", "portctl", "config", "show"], cwd=tmp_path / "a" / "b",
                 env={"PYTHONPATH": str(SRC)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "    API=http://127.0.0.1:8765" in out and "    PORTCTL_API_PORT=8765" in out


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (SRC.parent / "docs" / "projects.md").read_text()
    text = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "backend").mkdir()
    (tmp_path / "frontend").mkdir()
    project = load(tmp_path, text)
    assert project.start_order() == (("api",), ("web",))
    env = project.environment("web", {"api": 1421, "web": 5173}, {})
    assert env["VITE_API_URL"] == "http://127.0.0.1:1421"
    broken = text.replace('depends_on = { api = "healthy" }', 'depends_on = { apii = "healthy" }')
    err = error(tmp_path, broken)
    assert f"portctl.toml:{err.line}: services.web.depends_on: unknown service 'apii'" in doc
