"""The start/stop experience, piped (as scripts see it): the ready lines lead with the URL and
stay plain and byte-stable; a moved port is said; a foreground stop says it stops, that it had
to kill, and that the port is free; the demo shows its requests. Real processes and sockets;
the terminal view (spinner, colours, Ctrl+C) is tests/test_face_tmux.py's."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from portctl.core.ports import lan_url
from support.apps import app
from support.portctl import Portctl, finish
from support.ports import free_block, free_ports, unused_port
from support.processes import Popen
from support.waits import accepts, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.posix_only]

NUMBER = r"[0-9]+\.[0-9] s"


def ready_lines(out: str, name: str, url: str, run_dir: Path) -> None:
    """The detached ready block, exactly: the URL line, the pids, the log, how to follow it."""
    lines = out.splitlines()
    assert len(lines) == 4, out
    assert re.fullmatch(rf"{re.escape(name)} ready at {re.escape(url)} in {NUMBER}", lines[0]), out
    assert re.fullmatch(r"  supervisor pid [0-9]+, child pid [0-9]+", lines[1]), out
    assert lines[2] == f"  log: {run_dir / '.portctl' / 'logs' / name}.log", out
    assert lines[3] == f"  follow it: portctl --run-dir {run_dir} logs {name} -f", out


# ----------------------------------------------------------------------------- the ready line
def test_start_d_piped_prints_the_plain_ready_block_and_nothing_else(portctl: Portctl) -> None:
    port = unused_port()
    done = portctl.run("start", "-d", "--port", port, "--name", "api", "--", *app("listener", "{port}"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no spinner, no colour, no check mark when piped
    ready_lines(done.stdout, "api", f"http://127.0.0.1:{port}", portctl.run_dir)
    assert "\x1b" not in done.stdout
    assert portctl.run("stop", "api").returncode == 0


def test_no_color_and_term_dumb_keep_the_same_words(portctl: Portctl) -> None:
    port = unused_port()
    done = portctl.run("start", "-d", "--port", port, "--name", "web", "--", *app("listener", "{port}"),
                       env={"NO_COLOR": "1", "TERM": "dumb"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    ready_lines(done.stdout, "web", f"http://127.0.0.1:{port}", portctl.run_dir)
    assert portctl.run("stop", "web").returncode == 0


def test_a_wildcard_host_also_shows_the_lan_url(portctl: Portctl) -> None:
    port = unused_port("0.0.0.0")
    done = portctl.run("start", "-d", "--host", "0.0.0.0", "--port", port, "--name", "lan", "--",
                       *app("listener", "{port}", "--host", "{host}"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(rf"lan ready at http://127\.0\.0\.1:{port} in {NUMBER}", lines[0]), done.stdout
    lan = lan_url("0.0.0.0", port)
    if lan is None:  # no route to a private network here: nothing to show
        assert not lines[1].startswith("  LAN:")
    else:
        assert lines[1] == f"  LAN: {lan}" and "127.0.0.1" not in lan
    assert portctl.run("stop", "lan").returncode == 0


def test_lan_url_is_only_for_wildcard_hosts() -> None:
    assert lan_url("127.0.0.1", 8001) is None and lan_url("localhost", 8001) is None
    for host in ("0.0.0.0", "::"):
        found = lan_url(host, 8001)
        assert found is None or re.fullmatch(r"http://[0-9.]+:8001", found) and not found.startswith("http://127.")


def test_the_ready_line_fits_80_columns_for_typical_values(portctl: Portctl) -> None:
    port = unused_port()
    done = portctl.run("start", "-d", "--port", port, "--name", "frontend-dev", "--", *app("listener", "{port}"))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()[0]) <= 80
    assert portctl.run("stop", "frontend-dev").returncode == 0


# ----------------------------------------------------------------------------- a moved port
def test_a_busy_preferred_port_is_said_with_its_holder(portctl: Portctl, listener: Callable[..., Popen]) -> None:
    base = free_block(4)
    holder = listener(base)
    done = portctl.run("start", "-d", "--port-range", f"{base}-{base + 3}", "--name", "moved", "--",
                       *app("listener", "{port}"))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"portctl: warning: {base} busy \(pid {holder.pid}, [^)]+\), using {base + 1}\n",
                        done.stderr), done.stderr
    assert done.stdout.startswith(f"moved ready at http://127.0.0.1:{base + 1} in ")
    assert portctl.run("stop", "moved").returncode == 0


def test_a_free_preferred_port_is_not_mentioned(portctl: Portctl) -> None:
    base = free_block(2)
    done = portctl.run("start", "-d", "--port-range", f"{base}-{base + 1}", "--name", "stays", "--",
                       *app("listener", "{port}"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert portctl.run("stop", "stays").returncode == 0


# ----------------------------------------------------------------------------- foreground stop
def test_foreground_ctrl_c_says_stopping_then_stopped_and_free(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--name", "fg", "--", *app("listener", "{port}"))
    code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(rf"fg ready at http://127\.0\.0\.1:{port} in {NUMBER}", lines[0]), out
    assert lines[1:] == [lines[1], "  Ctrl+C to stop", "stopping (Ctrl+C again to kill now)...",
                         f"stopped; port {port} free"], out
    assert err == ""


def test_a_child_that_ignores_term_is_killed_after_the_real_grace(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--grace", "1", "--", *app("listener", "{port}", "--ignore-term"))
    code, out, err = finish(proc, signal.SIGTERM)
    assert code == 0, err
    assert out.splitlines()[-3:] == ["stopping (Ctrl+C again to kill now)...", "killed after 1 s grace",
                                     f"stopped; port {port} free"], out


def test_a_second_ctrl_c_kills_at_once(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--grace", "60", "--", *app("listener", "{port}", "--ignore-term"))
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: portctl.record(port).get("state") == "stopping", what="the stopping state")
    code, out, err = finish(proc, signal.SIGINT, timeout=30)
    assert code == 0, err
    assert out.splitlines()[-2:] == ["killed at once (stop signal repeated)", f"stopped; port {port} free"], out


# ----------------------------------------------------------------------------- the demo
def test_the_demo_shows_its_requests_and_how_to_stop(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        assert answer.status == 200
    code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, err
    assert "  Ctrl+C to stop" in out.splitlines()
    assert '"GET /health HTTP/1.1" 200' in out + err
    assert "Uvicorn running on" not in out + err  # portctl says where it serves, once


# ----------------------------------------------------------------------------- projects
def write_project(root: Path, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "portctl.toml").write_text(textwrap.dedent(text).lstrip("\n"))


def listener_command() -> str:
    return json.dumps(app("listener", "{port}"))


def run_in(spawn: Callable[..., Popen], root: Path, *args: str) -> Popen:
    return spawn([sys.executable, "-m", "portctl", *args], cwd=root, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_project_start_d_says_each_ready_url_and_a_moved_auto_port(
        spawn: Callable[..., Popen], tmp_path: Path, listener: Callable[..., Popen]) -> None:
    root, base = tmp_path / "proj", free_block(4)
    holder = listener(base)
    write_project(root, f"""
        [services.api]
        command = {listener_command()}
        port = "auto"
        port_range = "{base}-{base + 3}"
        """)
    try:
        out, err = run_in(spawn, root, "start", "-d").communicate(timeout=60)
        assert out == f"api ready at http://127.0.0.1:{base + 1}\n", (out, err)
        assert re.fullmatch(rf"portctl: warning: api: {base} busy \(pid {holder.pid}, [^)]+\), using {base + 1}\n",
                            err), err
    finally:
        run_in(spawn, root, "stop").communicate(timeout=60)


def test_a_project_foreground_says_one_stopping_and_one_stopped_line(
        spawn: Callable[..., Popen], tmp_path: Path) -> None:
    root, (api, web) = tmp_path / "proj", free_ports(2)
    write_project(root, f"""
        [services.api]
        command = {listener_command()}
        port = {api}

        [services.web]
        command = {listener_command()}
        port = {web}
        """)
    proc = run_in(spawn, root, "start")
    assert proc.stdout is not None
    head = [proc.stdout.readline() for _ in range(3)]  # the start is over once it says how to stop
    code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, (out, err)
    lines = "".join(head + [out]).splitlines()
    assert sorted(lines[:2]) == [f"api ready at http://127.0.0.1:{api}", f"web ready at http://127.0.0.1:{web}"]
    assert lines[2] == "  Ctrl+C to stop"
    ours = [line for line in lines if " | " not in line]  # portctl's own lines, not the services' logs
    assert ours[3:] == ["stopping api, web...", f"stopped api, web; ports {min(api, web)}, {max(api, web)} free"], out
    assert lines[-1] == ours[-1], out  # the last line, after the services' last log lines
    assert not accepts(api) and not accepts(web)


def test_ctrl_c_while_a_project_start_d_waits_says_so_and_exits_130(
        spawn: Callable[..., Popen], tmp_path: Path) -> None:
    root, port = tmp_path / "proj", unused_port()
    write_project(root, f"""
        [services.slow]
        command = {json.dumps(app("listener", "{port}", "--listen-after", "3"))}
        port = {port}
        """)
    try:
        proc = run_in(spawn, root, "start", "-d")
        wait_until(lambda: proc.poll() is not None or list(root.glob(".server_*.pid")), what="the launch")
        code, out, err = finish(proc, signal.SIGINT)
        assert code == 130 and out == "", (out, err)
        assert err.startswith("portctl: warning: interrupted; the services already launched go on") \
            and err.count("\n") == 1, err
        wait_until(lambda: accepts(port), what="the service to serve anyway")
    finally:
        run_in(spawn, root, "stop").communicate(timeout=60)


# ----------------------------------------------------------------------------- the words
def test_the_words_of_start_and_stop() -> None:
    from portctl.base import messages

    assert messages.ready_at("api", "http://127.0.0.1:8001", 1.23) == "api ready at http://127.0.0.1:8001 in 1.2 s"
    assert messages.port_moved(1421, 1422, (1234, "node")) == "1421 busy (pid 1234, node), using 1422"
    assert messages.port_moved(1421, 1422, None) == "1421 busy, using 1422"
    assert messages.killed_after(5.0, hurried=False) == "killed after 5 s grace"
    assert messages.killed_after(0.5, hurried=False) == "killed after 0.5 s grace"
    assert messages.stopped_free(8001, True) == "stopped; port 8001 free"
    assert messages.waiting_for(["api"], 8001) == "waiting for api on :8001"
    assert messages.waiting_for(["api", "web"], None) == "waiting for api, web"
    assert messages.project_stopped(["api"], [8001]) == "stopped api; port 8001 free"
    # typical values fit 80 columns with the check mark in front
    assert len("✓ " + messages.ready_at("frontend-dev", "http://127.0.0.1:65535", 12.3)) <= 80


def test_the_ready_lines_when_piped_are_plain(capsys: pytest.CaptureFixture[str]) -> None:
    from portctl.face import render

    with render.waiting("waiting for api on :8001") as shown:  # not a terminal: nothing at all
        shown.what = "waiting for web"
    render.ready("api ready at http://127.0.0.1:8001 in 1.2 s", ["  LAN: http://192.168.1.5:8001"],
                 ["  supervisor pid 1, child pid 2"])
    out, err = capsys.readouterr()
    assert out == ("api ready at http://127.0.0.1:8001 in 1.2 s\n  LAN: http://192.168.1.5:8001\n"
                   "  supervisor pid 1, child pid 2\n") and err == ""
