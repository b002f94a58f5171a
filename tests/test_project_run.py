"""Projects, sections 2 and 3: services started and stopped by name, in dependency order, with
their ports wired into each other; `start -d` failing as a whole; the foreground view; Procfile
plus .env; a Node frontend reading the backend's URL. Real processes, driven from a
subdirectory of the project (no --run-dir: the project root is the run dir)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from support.apps import APPS
from support.portctl import finish
from support.ports import free_ports
from support.processes import Popen, StdoutLines
from support.waits import accepts, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.posix_only]
SERVICE = APPS / "service.py"
NODE = Path("/usr/bin/node")


class Project:
    """A project directory (``root``, with an empty ``root/sub`` to run from) and its CLI."""

    def __init__(self, root: Path, spawn: Callable[..., Popen]) -> None:
        self.root, self.sub, self.events = root, root / "sub", root / "events.log"
        self.sub.mkdir(parents=True, exist_ok=True)
        self.events.touch()
        self._spawn = spawn

    def write(self, name: str, text: str) -> None:
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_text(textwrap.dedent(text).lstrip("\n"))

    def service(self, name: str, **env: str) -> str:
        """A `[services.NAME]` command running tests/apps/service.py, its env as TOML."""
        table = ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items())
        return (f"[services.{name}]\ncommand = {json.dumps([sys.executable, str(SERVICE), name, str(self.events)])}\n"
                + (f"env = {{ {table} }}\n" if env else ""))

    def launch(self, *args: object, cwd: Path | None = None) -> Popen:
        assert "PORTCTL_RUN_DIR" not in os.environ
        return self._spawn([sys.executable, "-m", "portctl", *map(str, args)], cwd=cwd or self.sub,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)

    def run(self, *args: object) -> subprocess.CompletedProcess[str]:
        proc = self.launch(*args)
        out, err = proc.communicate(timeout=90)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def status(self) -> dict[str, dict[str, Any]]:
        done = self.run("status", "--json")
        assert done.returncode == 0, done.stderr
        return {row["name"]: row for row in json.loads(done.stdout)}

    def log(self) -> list[str]:
        return self.events.read_text().splitlines()

    def nothing_runs(self) -> bool:
        rows = self.status()
        return all(r["state"] == "stopped" for r in rows.values()) \
            and not list(self.root.glob(".server_*.pid"))


@pytest.fixture
def project(tmp_path: Path, spawn: Callable[..., Popen]) -> Iterator[Project]:
    made = Project(tmp_path / "app", spawn)
    yield made
    if (made.root / "portctl.toml").exists() or (made.root / "Procfile").exists():
        made.run("stop")  # whatever a failed assertion left running


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def ports_range() -> str:
    low = free_ports(1)[0]
    return f"{low}-{min(low + 50, 65535)}"


def test_two_services_gate_order_wiring_and_stop_from_a_subdirectory(project: Project) -> None:
    span = ports_range()
    project.write("portctl.toml", f"""
        {project.service("api", DELAY="0.6")}
        port = "auto"
        port_range = "{span}"
        health = "/health"

        {project.service("web", CHECK_URL="{services.api.url}/health")}
        port = "auto"
        port_range = "{span}"
        depends_on = {{ api = "healthy" }}
        """)
    starting = project.launch("start", "-d")
    port = project.run("port", "web", "--wait", "--timeout", "60")  # while the start goes on
    out, err = starting.communicate(timeout=90)
    assert starting.returncode == 0, err
    assert port.returncode == 0, port.stderr
    # the gate: web started only once api answered /health, 0.6 s after api itself started
    assert project.log() == ["start api -", "start web ok"]
    rows = project.status()
    assert [rows["api"]["state"], rows["web"]["state"]] == ["running", "running"]
    assert int(port.stdout) == rows["web"]["port"] != rows["api"]["port"]
    assert (project.root / f".server_{rows['web']['port']}.pid").read_text() == f"{rows['web']['pid']}\n"
    assert "web ready at http://127.0.0.1:" in out
    logs = project.run("logs").stdout.splitlines()  # both, each line after its name
    assert "api | api booting" in logs and "web | web booting" in logs
    again = project.run("start", "-d")  # `make start` twice: no error
    assert again.returncode == 0 and "api: already running" in again.stdout
    typo = project.run("start", "wbe")
    assert typo.returncode == 2 and "did you mean 'web'" in typo.stderr

    done = project.run("stop")
    assert done.returncode == 0, done.stderr
    assert project.log()[2:] == ["stop web", "stop api"]
    assert not accepts(rows["api"]["port"]) and not accepts(rows["web"]["port"])
    assert project.nothing_runs()


def test_three_services_levels_stop_with_dependents_and_restart_rereads_the_file(project: Project) -> None:
    db, api, web = free_ports(3)
    text = f"""
        {project.service("db", DELAY="0.3")}
        port = {db}

        {project.service("api", GREETING="one")}
        port = {api}
        depends_on = ["db"]

        {project.service("web", CHECK_URL="{services.api.url}/hello")}
        port = {web}
        depends_on = {{ api = "ready" }}
        """
    project.write("portctl.toml", text)
    done = project.run("start", "-d", "web")  # with what it depends on
    assert done.returncode == 0, done.stderr
    assert project.log() == ["start db -", "start api -", "start web ok"]
    assert get(f"http://127.0.0.1:{api}/hello") == "hello from api one"

    done = project.run("stop", "api")  # web depends on it: stopped first; db goes on
    assert done.returncode == 0, done.stderr
    assert project.log()[3:] == ["stop web", "stop api"]
    assert accepts(db) and not accepts(api)
    rows = project.status()
    assert [rows[n]["state"] for n in ("db", "api", "web")] == ["running", "stopped", "stopped"]

    project.write("portctl.toml", text.replace('"one"', '"two"'))
    done = project.run("restart", "api")
    assert done.returncode == 0, done.stderr
    assert get(f"http://127.0.0.1:{api}/hello") == "hello from api two"
    assert "db: already running" in done.stdout

    done = project.run("stop")
    assert done.returncode == 0, done.stderr
    assert project.log()[-3:] == ["stop web", "stop api", "stop db"]
    assert project.nothing_runs()


def test_a_failing_backend_fails_start_with_its_reason_and_leaves_nothing_running(project: Project) -> None:
    worker, api, web = free_ports(3)
    project.write("portctl.toml", f"""
        {project.service("worker")}
        port = {worker}

        {project.service("api", FAIL="boom: DATABASE_URL is not set")}
        port = {api}
        ready_timeout = 20

        {project.service("web")}
        port = {web}
        depends_on = ["api"]
        """)
    done = project.run("start", "-d")
    assert done.returncode == 3, (done.stdout, done.stderr)  # the child's exit code, as `start -d` says
    assert "portctl: error: api:" in done.stderr
    assert "boom: DATABASE_URL is not set" in done.stderr  # its last log lines
    assert "web: not started" in done.stderr
    assert "start web -" not in project.log()
    assert project.nothing_runs()
    assert not accepts(worker)


def test_keep_going_leaves_the_others_running(project: Project) -> None:
    worker, api = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("worker")}
        port = {worker}

        {project.service("api", FAIL="boom")}
        port = {api}
        """)
    done = project.run("start", "-d", "--keep-going")
    assert done.returncode == 3
    assert project.status()["worker"]["state"] == "running"
    assert project.run("stop").returncode == 0
    assert project.nothing_runs()


def test_procfile_and_dotenv(project: Project) -> None:
    project.write("Procfile", f"""
        # a comment
        web: {sys.executable} {SERVICE} web {project.events}
        """)
    project.write(".env", """
        export NAME_PART=dotenv
        GREETING="from ${NAME_PART}"
        """)
    done = project.run("start", "-d")
    assert done.returncode == 0, done.stderr
    row = project.status()["web"]
    assert 5000 <= row["port"] <= 5099  # foreman's first port, or one of the 99 after it
    assert get(f"http://127.0.0.1:{row['port']}/hello") == "hello from web from dotenv"
    assert (project.root / f".server_{row['port']}.pid").exists()  # the Procfile's root is the run dir
    assert project.run("stop").returncode == 0
    assert project.nothing_runs()


@pytest.mark.skipif(not NODE.exists(), reason="no /usr/bin/node")
def test_node_frontend_proxies_to_the_backend_both_on_auto_ports(project: Project) -> None:
    project.write("frontend/server.js", """
        const http = require("http");
        const api = process.env.PORTCTL_API_URL;
        http.createServer((req, res) => {
          http.get(api + "/hello", (up) => {
            let body = "";
            up.on("data", (chunk) => { body += chunk; });
            up.on("end", () => res.end(`${process.env.VITE_API_URL} says: ${body}`));
          }).on("error", (err) => { res.statusCode = 502; res.end(String(err)); });
        }).listen(Number(process.env.PORT), process.env.HOST);
        """)
    project.write("portctl.toml", f"""
        {project.service("api", GREETING="to node")}
        port = "auto"
        health = "/health"

        [services.web]
        command = "node server.js"
        cwd = "frontend"
        port = "auto"
        depends_on = {{ api = "healthy" }}
        env = {{ VITE_API_URL = "{{services.api.url}}" }}
        """)
    done = project.run("start", "-d")
    assert done.returncode == 0, done.stderr
    rows = project.status()
    api_url = f"http://127.0.0.1:{rows['api']['port']}"
    assert get(f"http://127.0.0.1:{rows['web']['port']}/") == f"{api_url} says: hello from api to node"
    assert project.run("url", "api").stdout.strip() == api_url
    assert project.run("stop").returncode == 0
    assert project.nothing_runs()


def test_foreground_interleaves_prefixed_logs_and_ctrl_c_stops_in_reverse_order(project: Project) -> None:
    api, web = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api", DELAY="2")}
        port = {api}

        {project.service("web", CHECK_URL="{services.api.url}/health")}
        port = {web}
        depends_on = {{ api = "started" }}
        """)
    proc = project.launch("start")
    wait_until(lambda: proc.poll() is not None or (accepts(api) and accepts(web)), what="both to serve")
    wait_until(lambda: proc.poll() is not None or len(project.log()) == 2, what="both to log")
    code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, (out, err)
    # `started`: web ran once api's process did, before api listened
    assert project.log() == ["start api -", "start web refused", "stop web", "stop api"]
    lines = out.splitlines()
    assert any(line.endswith("api | api booting") and line[2] == ":" for line in lines), out
    assert any(line.endswith("web | web booting") for line in lines), out
    assert project.nothing_runs()


def test_foreground_a_service_that_exits_leaves_the_others_running(project: Project) -> None:
    api, job = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {api}

        {project.service("job", LIFE="1")}
        port = {job}
        """)
    proc = project.launch("start")
    wait_until(lambda: proc.poll() is not None or "exit job" in project.log(), what="job to exit")
    wait_until(lambda: proc.poll() is not None or project.status()["job"]["state"] == "stopped",
               what="job's supervisor to end")
    assert proc.poll() is None and accepts(api)
    code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, (out, err)
    assert "job has exited" in err
    assert project.log()[-1] == "stop api" and project.nothing_runs()


def test_bare_stop_status_and_unknown_names_outside_the_project_keep_todays_meaning(project: Project) -> None:
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {free_ports(1)[0]}
        """)
    done = project.run("status", "--json")
    assert done.returncode == 0 and [r["state"] for r in json.loads(done.stdout)] == ["stopped"]
    done = project.run("status", "api")
    assert done.returncode == 3
    done = project.run("port", "api", "--wait", "--timeout", "0.3")
    assert done.returncode == 7 and "api was not ready within 0.3 s" in done.stderr
    done = project.run("stop", "nothing-like-it")  # no such service: an instance name, as today
    assert done.returncode == 0 and "nothing-like-it" in done.stdout
    done = project.run("restart", "api", "--grace", "1")  # service options live in the file
    assert done.returncode == 2 and "portctl.toml" in done.stderr and "Traceback" not in done.stderr


def test_specs_are_kept_by_name_and_forget_drops_a_stopped_one(project: Project) -> None:
    """Seen: `.portctl/specs/` kept a spec for every port a service ever got."""
    first, second = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {first}
        """)
    specs = project.root / ".portctl" / "specs"
    assert project.run("start", "-d").returncode == 0
    assert project.run("stop").returncode == 0
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {second}
        """)
    assert project.run("start", "-d").returncode == 0
    assert sorted(p.name for p in specs.iterdir()) == [f"{second}.json"]
    refused = project.run("forget", "api")
    assert refused.returncode == 1 and "stop it first" in refused.stderr
    assert project.run("stop").returncode == 0
    done = project.run("forget", "api")
    assert done.returncode == 0 and str(second) in done.stdout
    assert list(specs.iterdir()) == []
    assert project.run("forget", "api").stdout.strip() == "nothing remembered of api"


def test_clean_removes_the_specs_of_instances_that_never_served(project: Project) -> None:
    served, failed = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {served}

        {project.service("broken", FAIL="boom")}
        port = {failed}
        """)
    assert project.run("start", "-d", "api").returncode == 0
    assert project.run("start", "-d", "broken").returncode == 3
    assert project.run("stop").returncode == 0
    specs = project.root / ".portctl" / "specs"
    assert sorted(p.name for p in specs.iterdir()) == sorted([f"{served}.json", f"{failed}.json"])
    dry = project.run("clean", "--dry-run")
    assert f"{failed}.json" in dry.stdout and f"{served}.json" not in dry.stdout
    assert len(list(specs.iterdir())) == 2
    assert project.run("clean").returncode == 0
    assert [p.name for p in specs.iterdir()] == [f"{served}.json"]  # `restart api` still works


def test_stop_signal_is_what_the_child_gets_first(project: Project) -> None:
    """Seen: `stop_signal` was validated, then ignored: the child always got SIGTERM."""
    api, web = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api", SAY_SIGNAL="1")}
        port = {api}
        stop_signal = "INT"

        {project.service("web", SAY_SIGNAL="1")}
        port = {web}
        """)
    assert project.run("start", "-d").returncode == 0
    assert project.run("stop").returncode == 0
    assert sorted(project.log()[2:]) == ["stop api SIGINT", "stop web SIGTERM"]


def test_logs_follow_interleaves_the_services_with_prefixes(project: Project) -> None:
    api, web = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {api}

        {project.service("web")}
        port = {web}
        """)
    assert project.run("start", "-d").returncode == 0
    follower = project.launch("logs", "-f", "-n", "1")
    reader = StdoutLines(follower)
    seen = reader.lines
    wait_until(lambda: len(seen) >= 2, what="the follower's first lines (it follows both logs)")
    assert project.run("restart").returncode == 0  # new output in both logs
    wait_until(lambda: any(line.endswith("api | api booting") for line in seen)
               and any(line.endswith("web | web booting") for line in seen), what="both logs followed")
    code, _, _ = finish(follower, signal.SIGINT)
    reader.join()
    assert code == 0
    assert all(line[2] == ":" and line[9:12] in ("api", "web") for line in seen), seen
    assert project.run("stop").returncode == 0


def test_a_single_instance_inside_a_project_works_as_without_one(project: Project) -> None:
    api, solo = free_ports(2)
    project.write("portctl.toml", f"""
        {project.service("api")}
        port = {api}
        """)
    started = project.run("start", "-d", "--port", solo, "--name", "solo", "--",
                          sys.executable, SERVICE, "solo", project.events)
    assert started.returncode == 0, started.stderr
    rows = project.status()
    assert rows["api"]["state"] == "stopped" and rows["solo"]["state"] == "running"
    assert not rows["solo"]["service"]
    assert "solo booting" in project.run("logs", "solo").stdout
    assert project.run("restart", "solo").returncode == 0 and accepts(solo)
    assert project.run("stop", "solo").returncode == 0 and not accepts(solo)
    assert project.nothing_runs()
