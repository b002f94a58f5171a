"""`portctl export systemd|compose|kubernetes`: golden files, the real validators
(systemd-analyze verify, the compose-spec JSON schema, kubernetes-validate), determinism,
ports fixed from a running instance, and bad input.

The goldens hold ``@ROOT@`` for the project's directory and ``@SLEEP@`` for the absolute
path of ``sleep`` (systemd's ExecStart): everything else is byte for byte. Regenerate them
with ``PORTCTL_UPDATE_GOLDEN=1`` and read the diff.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from support.portctl import Portctl
from support.ports import free_ports
from support.waits import HANG_GUARD_S, wait_until

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")

GOLDEN = Path(__file__).parent / "golden" / "export"
COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec" / "compose-spec.json"
KUBERNETES_VERSION = "1.32.0"  # the pinned version kubernetes-validate checks against
TARGETS = ("systemd", "compose", "kubernetes")

PROJECT = r'''
[defaults]
grace = 5
restart = "on-failure"

[services.api]
command = "sleep 1000 --host {host} --port {port}"
cwd = "backend"
port = "auto"
port_range = "1421-1500"
health = "/health"
ready_timeout = 20
env = { LOG_LEVEL = "info", ODD = 'a b "c" $HOME 50% \ yes' }
env_file = "api.env"

[services.web]
command = ["sleep", "{port}", "--api", "{services.api.url}", "100%", "$PATH", "two words"]
cwd = "frontend"
port = 5173
depends_on = { api = "healthy", worker_1 = "started" }
stop_signal = "INT"
grace = 2.5
health = "http://127.0.0.1:5173/ready?deep=1"
health_interval = 2.5
backoff_initial = 0.5
max_restarts = 3
restart_window = 30

[services.web.env]
VITE_API_URL = "{services.api.url}"

[services.worker_1]
command = "sleep 3600"
port = "auto"
restart = "always"
'''


def make_project(root: Path) -> Path:
    """The example project in ``root`` (made): a backend, a frontend, a worker."""
    for sub in ("backend", "frontend"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "portctl.toml").write_text(PROJECT)
    (root / ".env").write_text("FROM_DOTENV=yes\n")
    (root / "api.env").write_text("API_TOKEN=secret\n")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "myapp")


def run_export(root: Path, spawn: Callable[..., subprocess.Popen], *args: str) -> subprocess.CompletedProcess:
    """``portctl export ARGS`` run in ``root`` (its own run dir), through the tracker."""
    proc = spawn([sys.executable, "-m", "portctl", "export", *args], cwd=str(root),
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=HANG_GUARD_S)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def normalise(text: str, root: Path) -> str:
    sleep = shutil.which("sleep") or "sleep"
    return text.replace(str(root), "@ROOT@").replace(os.path.realpath(sleep), "@SLEEP@").replace(sleep, "@SLEEP@")


def written(directory: Path, root: Path) -> dict[str, str]:
    return {p.name: normalise(p.read_text(), root) for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("target", TARGETS)
def test_export_matches_its_golden_files(target: str, project: Path, tmp_path: Path, spawn: Callable[..., subprocess.Popen]) -> None:
    out_dir = tmp_path / "out"
    result = run_export(project, spawn, target, "-o", str(out_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(out_dir / name) for name in sorted(os.listdir(out_dir), key=lambda n: result.stdout.index(n))]
    # worker_1's auto port is fixed to its first candidate after api's range start (8000 on)
    assert result.stderr.splitlines() == [
        'portctl: warning: api: port "auto" fixed to 1421 (not running; its first candidate)',
        'portctl: warning: worker_1: port "auto" fixed to 8000 (not running; its first candidate)',
    ]
    files = written(out_dir, project)
    golden_dir = GOLDEN / target
    if os.environ.get("PORTCTL_UPDATE_GOLDEN"):
        shutil.rmtree(golden_dir, ignore_errors=True)
        golden_dir.mkdir(parents=True)
        for name, text in files.items():
            (golden_dir / name).write_text(text)
    assert files == {p.name: p.read_text() for p in sorted(golden_dir.iterdir())}


@pytest.mark.parametrize("target", TARGETS)
def test_export_is_byte_identical_and_stdout_holds_every_file(target: str, project: Path, tmp_path: Path,
                                                              spawn: Callable[..., subprocess.Popen]) -> None:
    first, second = (run_export(project, spawn, target) for _ in range(2))
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    result = run_export(project, spawn, target, "-o", str(tmp_path / "out"))
    texts = [Path(line).read_text() for line in result.stdout.splitlines()]
    if target == "systemd":
        names = [Path(line).name for line in result.stdout.splitlines()]
        assert first.stdout == "\n".join(f"# {n}\n{t}" for n, t in zip(names, texts))
    else:
        assert first.stdout == "---\n".join(texts)


def test_systemd_units_pass_systemd_analyze_verify(project: Path, tmp_path: Path,
                                                    spawn: Callable[..., subprocess.Popen]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    out_dir = tmp_path / "units"
    assert run_export(project, spawn, "systemd", "-o", str(out_dir)).returncode == 0
    units = sorted(str(p) for p in out_dir.iterdir())
    assert [Path(u).name for u in units] == ["myapp-api.service", "myapp-web.service",
                                             "myapp-worker_1.service", "myapp.target"]
    proc = spawn([analyze, "verify", "--man=no", *units], cwd=str(out_dir),
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=60)
    # it exits 0 on values it ignores ("Failed to parse ..., ignoring"): the output must be empty
    assert (proc.returncode, out) == (0, "")
    # and it does see a bad value: the same check fails on a broken copy
    broken = out_dir / "myapp-api.service"
    broken.write_text(broken.read_text().replace("RestartSec=1s", "RestartSec=soon"))
    proc = spawn([analyze, "verify", "--man=no", str(broken)], cwd=str(out_dir),
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=60)
    assert "RestartSec" in out or "soon" in out


def test_compose_file_is_valid_against_the_compose_spec_schema(project: Path, spawn: Callable[..., subprocess.Popen]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra")
    result = run_export(project, spawn, "compose")
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)  # the schema's own draft
    validator.validate(document)
    web = document["services"]["web"]
    assert web["depends_on"] == {"api": {"condition": "service_healthy"},
                                 "worker-1": {"condition": "service_started"}}
    assert web["stop_grace_period"] == "2500ms" and web["stop_signal"] == "SIGINT"
    assert web["command"][-2:] == ["$$PATH", "two words"]  # no interpolation by Compose
    assert web["environment"]["VITE_API_URL"] == "http://api:1421"
    assert document["services"]["api"]["env_file"] == [str(project / ".env"), str(project / "api.env")]
    document["services"]["web"]["restart"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)


def test_kubernetes_manifests_pass_kubernetes_validate(project: Path, tmp_path: Path,
                                                       spawn: Callable[..., subprocess.Popen]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is in the test extra")
    out_dir = tmp_path / "k8s"
    assert run_export(project, spawn, "kubernetes", "-o", str(out_dir)).returncode == 0
    kinds = []
    for path in sorted(out_dir.iterdir()):
        document = yaml.safe_load(path.read_text())
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        kinds.append((path.name, document["kind"]))
    assert kinds == [("api-deployment.yaml", "Deployment"), ("api-service.yaml", "Service"),
                     ("web-deployment.yaml", "Deployment"), ("web-service.yaml", "Service"),
                     ("worker-1-deployment.yaml", "Deployment"), ("worker-1-service.yaml", "Service")]
    web = yaml.safe_load((out_dir / "web-deployment.yaml").read_text())["spec"]["template"]["spec"]
    assert web["terminationGracePeriodSeconds"] == 3  # 2.5 s rounded up
    probe = web["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/ready?deep=1", "port": 5173, "scheme": "HTTP"}
    broken = yaml.safe_load((out_dir / "web-service.yaml").read_text())
    broken["spec"]["ports"][0]["port"] = "many"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_names_export_those_services_and_their_dependencies(project: Path, spawn: Callable[..., subprocess.Popen]) -> None:
    result = run_export(project, spawn, "compose", "api")
    assert result.returncode == 0, result.stderr
    assert list(yaml.safe_load(result.stdout)["services"]) == ["api"]
    result = run_export(project, spawn, "compose", "web")
    assert list(yaml.safe_load(result.stdout)["services"]) == ["api", "worker-1", "web"]


def test_an_auto_port_is_fixed_to_the_port_the_running_service_holds(project: Path,
                                                                      spawn: Callable[..., subprocess.Popen]) -> None:
    port = free_ports(1)[0]
    portctl = Portctl(project, spawn)
    proc = portctl.serve(port, "--name", "api")
    try:
        result = run_export(project, spawn, "kubernetes", "api")
        assert result.returncode == 0, result.stderr
        assert result.stderr == f'portctl: warning: api: port "auto" fixed to {port}, the port it runs on now\n'
        deployment = next(yaml.safe_load_all(result.stdout))
        assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == port
    finally:
        proc.terminate()
        proc.communicate(timeout=HANG_GUARD_S)
    wait_until(lambda: proc.poll() is not None, what="portctl to stop")


@pytest.mark.parametrize("args, needle", [
    (["swarm"], "'swarm' is not one of 'systemd', 'compose', 'kubernetes'"),
    (["compose", "apii"], "no service 'apii'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, project: Path,
                                          spawn: Callable[..., subprocess.Popen]) -> None:
    result = run_export(project, spawn, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_no_project_and_an_unwritable_output_are_exit_2(tmp_path: Path, project: Path,
                                                        spawn: Callable[..., subprocess.Popen]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_export(empty, spawn, "systemd")
    assert result.returncode == 2 and result.stderr.startswith("portctl: error: no project file")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_export(project, spawn, "systemd", "-o", str(blocker / "sub"))
    assert result.returncode == 2 and "cannot write the export" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 3  # two port warnings and the error


def test_a_program_that_cannot_be_found_is_refused_for_systemd(project: Path, spawn: Callable[..., subprocess.Popen]) -> None:
    toml = project / "portctl.toml"
    toml.write_text(toml.read_text().replace('command = "sleep 3600"', 'command = "no-such-program-xyz"'))
    result = run_export(project, spawn, "systemd")
    assert result.returncode == 2 and "cannot find 'no-such-program-xyz'" in result.stderr


@pytest.mark.parametrize("value", ["yes", "no", "1", "0x1f", "null", "~", "", "a: b", "- x", "é ☃ \u2028 \x85 \x7f 😀",
                                   'q"uo\'te', "back\\slash", "line\nbreak\ttab", "#c", "2026-01-01"])
def test_yaml_writer_round_trips_every_string(value: str) -> None:
    from portctl.export import yamltext

    data = {"key": value, value or "empty": [value, {"nested": value}], "n": 3, "b": True, "e": [], "d": {}}
    assert yaml.safe_load(yamltext.dump(data)) == data


def test_a_procfile_exports_with_its_ports_fixed_and_a_shell_only_where_the_line_needs_one(
        tmp_path: Path, spawn: Callable[..., subprocess.Popen]) -> None:
    root = tmp_path / "procapp"
    root.mkdir()
    (root / "Procfile").write_text('web: sleep $PORT && echo "hi 100%"\nworker: sleep 60\n')
    out_dir = tmp_path / "units"
    result = run_export(root, spawn, "systemd", "-o", str(out_dir))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "portctl: warning: web: port 5000 (range 5000-5099) fixed to 5000 (not running; its first candidate)",
        "portctl: warning: worker: port 5100 (range 5100-5199) fixed to 5100 (not running; its first candidate)",
    ]
    exec_lines = [line for name in ("procapp-web.service", "procapp-worker.service")
                  for line in (out_dir / name).read_text().splitlines() if line.startswith("ExecStart=")]
    sh = os.path.normpath(shutil.which("sh") or "sh")
    sleep = os.path.normpath(shutil.which("sleep") or "sleep")
    assert exec_lines == [f'ExecStart={sh} -c "sleep $$PORT && echo \\"hi 100%%\\""', f"ExecStart={sleep} 60"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    proc = spawn([analyze, "verify", "--man=no", *sorted(str(p) for p in out_dir.iterdir())], cwd=str(out_dir),
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (0, "")


def test_the_mapping_table_has_a_row_for_every_project_key() -> None:
    from portctl.project.config import KEYS

    doc = (Path(__file__).parent.parent / "docs" / "deploy.md").read_text()
    first_cells = [line.split("|")[1] for line in doc.splitlines() if line.startswith("| `")]
    missing = [key for key in KEYS if not any(f"`{key}`" in cell for cell in first_cells)]
    assert missing == []
