"""The supervisor under faults, with real processes: a second illness after a health restart,
a restarted child that is not ready in time, a `start -d` whose command goes away, a full
disk under the log, a child that daemonizes, events rotation, health probes that rewrite
nothing, and the unbuffered Python child."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil
import pytest

from portctl.core.events import EventLog, events_file
from portctl.core.events import read_events

from support.apps import app
from support.portctl import Portctl, finish
from support.ports import unused_port
from support.processes import Popen
from support.waits import accepts, wait_file, wait_until

pytestmark = pytest.mark.timeout(120)


def events(run_dir: Path) -> list[dict[str, Any]]:
    """Every event of the run dir, oldest first, across rotated files."""
    path = run_dir / ".portctl" / "events.jsonl"
    backups = sorted(path.parent.glob("events.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    found = []
    for one in [*backups, path]:
        if one.exists():
            found += [json.loads(line) for line in one.read_text().splitlines() if line]
    return found


def kinds(run_dir: Path, port: int) -> list[str]:
    return [e["event"] for e in events(run_dir) if e.get("port") == port]


def child_pid(portctl: Portctl, port: int) -> int:
    return int((portctl.record(port).get("child") or {}).get("pid") or 0)


def running_with_new_child(portctl: Portctl, port: int, old: int) -> int:
    """Wait until the record says running with a child other than ``old``; that child's pid."""
    def new_child() -> int:
        rec = portctl.record(port)
        pid = child_pid(portctl, port)
        return pid if rec.get("state") == "running" and pid not in (0, old) and accepts(port) else 0

    return wait_until(new_child, what=f"a new child of port {port} to serve")


# ------------------------------------------------------------------ 2a: health and readiness
def test_second_illness_after_a_health_restart_is_handled(portctl: Portctl, tmp_path: Path) -> None:
    port, hang = unused_port(), tmp_path / "hang"
    result = portctl.run("start", "-d", "--port", port, "--health", "/health", "--health-interval", "0.1",
                         "--health-timeout", "1", "--health-failures", "2", "--backoff-initial", "0.05",
                         "--", *app("hanger", "{port}", "--hang-file", hang))
    assert result.returncode == 0, result.stderr
    first = child_pid(portctl, port)
    hang.write_text(str(first))  # the first child hangs: restarted
    second = running_with_new_child(portctl, port, first)
    hang.write_text(str(second))  # monitoring goes on: the second illness is seen too
    third = running_with_new_child(portctl, port, second)
    assert portctl.record(port)["restarts"] == 2
    seq = kinds(portctl.run_dir, port)
    assert seq.count("restarting") == 2 and seq.count("ready") == 3
    assert third not in (first, second)
    assert portctl.run("stop", "--port", port).returncode == 0
    assert kinds(portctl.run_dir, port)[-1] == "stopped"


def test_a_restarted_child_not_ready_in_time_is_restarted_again(portctl: Portctl, tmp_path: Path) -> None:
    port, hold = unused_port(), tmp_path / "hold"
    result = portctl.run("start", "-d", "--port", port, "--ready-timeout", "3", "--backoff-initial", "0.05",
                         "--grace", "1", "--", *app("hanger", "{port}", "--hold-file", hold))
    assert result.returncode == 0, result.stderr
    first = child_pid(portctl, port)
    hold.touch()  # the next child never listens
    psutil.Process(first).kill()
    running_with_new_child(portctl, port, first)
    restarts = [e for e in events(portctl.run_dir) if e["event"] == "restarting"]
    assert [e["reason"] for e in restarts] == ["exited with code 137", "not ready in time"]
    assert portctl.record(port)["restarts"] == 2
    latest = child_pid(portctl, port)
    psutil.Process(latest).kill()  # and it is still supervised
    running_with_new_child(portctl, port, latest)
    assert portctl.run("stop", "--port", port).returncode == 0


# ------------------------------------------------------------------ 2b: the waiting command goes away
@pytest.mark.posix_only
@pytest.mark.parametrize("name", ["SIGINT", "SIGHUP", "SIGTERM", "SIGKILL"])  # TERM: `timeout`
def test_start_d_outlives_the_command_that_waits(portctl: Portctl, tmp_path: Path, name: str) -> None:
    sig = getattr(signal, name)  # not at import: Windows has no SIGHUP
    port, go = unused_port(), tmp_path / "go"
    waiting = portctl.launch("start", "-d", "--port", port, "--name", "api",
                             "--", *app("hanger", "{port}", "--listen-when", go))
    wait_until(lambda: portctl.record(port).get("child"), what="the child to be spawned")
    supervisor = psutil.Process(portctl.record(port)["supervisor"]["pid"])
    code, _, err = finish(waiting, sig=sig)
    if sig == signal.SIGINT:
        assert code == 130
        assert err.count("\n") == 1 and "goes on starting in the background" in err
        assert "portctl status" in err and "portctl logs api -f" in err
    go.touch()
    wait_until(lambda: accepts(port) and portctl.record(port).get("state") == "running",
               what="the detached instance to serve")
    assert supervisor.is_running() and "ready" in kinds(portctl.run_dir, port)
    assert portctl.run("stop", "--port", port).returncode == 0
    assert kinds(portctl.run_dir, port)[-1] == "stopped"


# ------------------------------------------------------------------ 2c: a full disk under the log
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only), unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount)],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_full_disk_never_kills_the_child(small_disk: Path, spawn: Callable[..., Popen], tmp_path: Path) -> None:
    portctl = Portctl(small_disk, spawn)
    port, progress = unused_port(), tmp_path / "progress"
    result = portctl.run("start", "-d", "--port", port, "--name", "chatty", "--log-max-bytes", "262144",
                         "--log-backups", "1", "--",
                         *app("hanger", "{port}", "--chatter-kb", 1, "--progress-file", progress))
    assert result.returncode == 0, result.stderr
    child = child_pid(portctl, port)
    wait_file(progress)
    filler = fill(small_disk)
    printed = int(progress.read_text())
    # 256 KiB more output than a pipe holds: the supervisor keeps draining while writes fail
    wait_until(lambda: int(progress.read_text()) > printed + 256, what="the child to keep printing")
    assert psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    filler.unlink()
    log = small_disk / ".portctl" / "logs" / "chatty.log"
    logs = [log, log.with_name("chatty.log.1")]
    wait_until(lambda: any("bytes of output dropped" in p.read_text() for p in logs if p.exists()),
               what="the gap to be marked in the log")
    assert child_pid(portctl, port) == child and "exited" not in kinds(small_disk, port)
    assert portctl.run("stop", "--port", port).returncode == 0
    assert kinds(small_disk, port)[-1] == "stopped"


# ------------------------------------------------------------------ 2d: a child that daemonizes
def test_a_daemonizing_child_is_named_and_ends_cleanly(portctl: Portctl, tmp_path: Path) -> None:
    port, pid_file = unused_port(), tmp_path / "daemon.pid"
    proc = portctl.start("--port", port, "--", *app("daemonizer", "{port}", "--pid-file", pid_file))
    code, _, err = finish(proc, sig=0)
    assert code == 1 and "daemonized" in err
    daemon = int(pid_file.read_text())
    wait_until(lambda: not psutil.pid_exists(daemon) or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE,
               what="the daemon to be stopped")
    assert not accepts(port)
    seq = [e for e in events(portctl.run_dir) if e["port"] == port]
    assert [e["event"] for e in seq][-2:] == ["daemonized", "fatal"]
    assert "daemonized" in seq[-1]["reason"]
    assert portctl.run("status", "--port", port).returncode == 3


def test_every_way_out_ends_with_a_final_event(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.start("--port", port, "--", *app("exiter", 5))  # exits before it serves
    assert finish(proc, sig=0)[0] == 5
    last = events(portctl.run_dir)[-1]
    assert last["event"] == "fatal" and "code 5" in last["reason"]
    proc = portctl.serve(port, "--", *app("listener", "{port}"))  # stopped by a signal
    assert finish(proc)[0] == 0
    last = events(portctl.run_dir)[-1]
    assert last["event"] == "stopped" and last["reason"] == "SIGINT"
    stop_file = portctl.run_dir / "exit-now"
    proc = portctl.serve(port, "--", *app("listener", "{port}", "--exit-on-file", stop_file, "--exit-code", 3))
    stop_file.touch()  # served, then exits on its own; the policy (no) does not restart it
    assert finish(proc, sig=0)[0] == 3
    last = events(portctl.run_dir)[-1]
    assert last["event"] == "stopped" and last["reason"] == "exited with code 3"


# ------------------------------------------------------------------ 2e: events rotate
def test_events_rotate_and_are_read_across_rotation(portctl: Portctl) -> None:
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--restart", "always", "--backoff-initial", "0.01",
                         "--backoff-max", "0.05", "--max-restarts", "1000", "--log-max-bytes", "1024",
                         "--log-backups", "2", "--", *app("flaky", "{port}", "--exit-after", "0.2"))
    assert result.returncode == 0, result.stderr
    path = portctl.run_dir / ".portctl" / "events.jsonl"
    wait_until(lambda: path.with_name("events.jsonl.2").exists() and path.exists(), what="two rotations")
    assert portctl.run("stop", "--port", port).returncode == 0
    assert not path.with_name("events.jsonl.3").exists()
    assert all(p.stat().st_size <= 1024 for p in (path, path.with_name("events.jsonl.1")))
    current = len(path.read_text().splitlines())
    shown = [json.loads(line) for line in portctl.run("events", "--json", "-n", current + 3).stdout.splitlines()]
    assert len(shown) == current + 3 and shown[-1]["event"] == "stopped"
    assert [e["time"] for e in shown] == sorted(e["time"] for e in shown)


# ------------------------------------------------------------------ 2f: probes rewrite nothing new
def test_health_probes_do_not_rewrite_an_unchanged_record(portctl: Portctl, tmp_path: Path) -> None:
    port, hits = unused_port(), tmp_path / "hits"
    result = portctl.run("start", "-d", "--port", port, "--health", "/health", "--health-interval", "0.1",
                         "--", *app("hanger", "{port}", "--hits-file", hits))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: (portctl.record(port).get("last_health") or {}).get("ok"), what="a first probe")
    before = portctl.record_file(port).stat().st_ino
    seen = int(wait_file(hits).read_text())
    wait_until(lambda: int(hits.read_text()) >= seen + 10, what="10 more probes")
    assert portctl.record_file(port).stat().st_ino == before  # written atomically: a rewrite is a new inode
    assert portctl.run("stop", "--port", port).returncode == 0


# ------------------------------------------------------------------ 2g: an unbuffered Python child
def test_a_python_childs_print_reaches_the_log_at_once(portctl: Portctl,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # restored after the test
    port = unused_port()
    result = portctl.run("start", "-d", "--port", port, "--name", "printer",
                         "--", *app("hanger", "{port}", "--say", "hello from print"))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: "hello from print" in portctl.run("logs", "printer").stdout, timeout=10,
               what="the print to reach the log")
    assert portctl.run("stop", "--port", port).returncode == 0


def test_event_log_rotation_keeps_every_event_in_order(tmp_path: Path) -> None:
    log = EventLog(tmp_path, max_bytes=600, backups=3)
    for index in range(12):
        log.emit("started", index=index, pad="x" * 100)
    path = events_file(tmp_path)
    assert path.with_name("events.jsonl.3").exists() and not path.with_name("events.jsonl.4").exists()
    assert all(p.stat().st_size <= 600 for p in path.parent.glob("events.jsonl*"))
    indexes = [e["index"] for e in read_events(tmp_path)]
    assert indexes == list(range(12 - len(indexes), 12))  # the oldest went with the oldest backup


def test_events_follow_reads_across_rotation(portctl: Portctl) -> None:
    log = EventLog(portctl.run_dir, max_bytes=400, backups=2)
    log.emit("started", index=-1)
    follower = portctl.launch("events", "--json", "-f", "-n", "0")
    path = str(events_file(portctl.run_dir))
    wait_until(lambda: any(f.path == path for f in psutil.Process(follower.pid).open_files()),
               what="the follower to open the events file")  # from then on it misses nothing
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        for index in range(8):  # each event is seen before the next one: no rotation is skipped over
            log.emit("started", index=index, pad="x" * 100)
            wanted = f'"index":{index},'
            wait_until(lambda wanted=wanted: any(wanted in line for line in lines), what=f"event {index}")
    finally:
        finish(follower, sig=signal.SIGINT)
    assert events_file(portctl.run_dir).with_name("events.jsonl.2").exists()
    assert [json.loads(line)["index"] for line in lines] == list(range(8))
