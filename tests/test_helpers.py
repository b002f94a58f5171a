"""The helpers in tests/support themselves: the tracker, the leak check, the handshakes, the apps."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from support.apps import APPS, app, untouched
from support.global_state import global_state, restore_global_state
from support.ports import free_ports, listeners, unused_port
from support.processes import TEST_MARKER, Tracker, is_gone, leaks, marked_processes, reap
from support.waits import accepts, lock_held, wait_file, wait_port_accepting, wait_port_refusing, wait_until

pytestmark = pytest.mark.timeout(60)


def current_test_id() -> str:
    return os.environ[TEST_MARKER]


# ----------------------------------------------------------------------------- handshakes

def test_wait_until_returns_the_truthy_value() -> None:
    calls = []

    def third_time() -> object:
        calls.append(1)
        return len(calls) >= 3 and "done"

    assert wait_until(third_time, timeout=5) == "done"


def test_wait_until_times_out_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for the moon"):
        wait_until(lambda: False, timeout=0.2, what="the moon")


def test_port_handshakes_follow_a_real_listener() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    with pytest.raises(AssertionError, match="to accept"):
        wait_port_accepting(port, timeout=0.2)  # bound, not listening: refuses
    sock.listen()
    wait_port_accepting(port, timeout=5)
    assert accepts(port)
    with pytest.raises(AssertionError, match="to refuse"):
        wait_port_refusing(port, timeout=0.2)
    sock.close()
    wait_port_refusing(port, timeout=5)


def test_wait_file_times_out_then_sees_an_apps_file(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pid"
    with pytest.raises(AssertionError, match="to appear"):
        wait_file(path, timeout=0.2)
    proc = spawn(app("slow", "--life", 30, "--pid-file", path))
    assert wait_file(path).read_text() == f"{proc.pid}\n"


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    assert 0 < unused_port() < 65536


# ----------------------------------------------------------------------------- apps

@pytest.mark.posix_only
def test_listener_app_listens_and_ignores_term_when_asked(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    ready = tmp_path / "ready"
    proc = spawn(app("listener", port, "--ignore-term", "--ready-file", ready))
    wait_file(ready)
    assert accepts(port) and listeners(port) == {proc.pid}
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)  # still there: this wait is the assertion, not a synchronisation
    assert accepts(port)
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_listener_app_bounds_its_life(spawn) -> None:  # type: ignore[no-untyped-def]
    proc = spawn(app("listener", unused_port(), "--exit-after", 0.3))
    assert proc.wait(timeout=30) == 0


def test_exiter_and_slow_apps(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert spawn(app("exiter", 3), stderr=subprocess.DEVNULL).wait(timeout=30) == 3
    assert spawn(app("exiter", 0, "--after", 0.1), stderr=subprocess.DEVNULL).wait(timeout=30) == 0
    assert spawn(app("slow", "--life", 0.2)).wait(timeout=30) == 0


def test_the_bystander_detects_any_signal(bystander) -> None:  # type: ignore[no-untyped-def]
    assert untouched(bystander)
    bystander.send_signal(signal.SIGTERM)
    wait_until(lambda: bystander.signal_log.read_text() != "", what="the signal to be logged")
    assert bystander.poll() is None and not untouched(bystander)


# ----------------------------------------------------------------------------- the tracker

def tree_pids(spawn_with, tmp_path: Path, *extra: object) -> tuple[subprocess.Popen, list[int]]:  # type: ignore[no-untyped-def,type-arg]
    port, pids_file = unused_port(), tmp_path / "kids"
    root = spawn_with(app("tree", port, pids_file, *extra))
    wait_file(pids_file)
    wait_port_accepting(port)
    kids = [int(p) for p in pids_file.read_text().split()]
    return root, kids


@pytest.mark.posix_only
def test_tracker_reaps_a_tree_with_a_grandchild_in_a_new_session(tmp_path: Path) -> None:
    own = Tracker()
    try:
        root, kids = tree_pids(own.spawn, tmp_path)
        assert root in own.procs
        session_kid = psutil.Process(kids[1])
        assert session_kid.pid == os.getsid(session_kid.pid) != os.getsid(root.pid)
        assert all(not is_gone(pid) for pid in [root.pid, *kids])
        own.reap_all()  # everything here ignores SIGTERM: this proves the escalation to KILL
        assert root.returncode == -signal.SIGKILL
        assert all(is_gone(pid) for pid in kids)
        assert own.procs == []
    finally:
        own.reap_all()


def test_spawned_processes_and_descendants_carry_the_test_marker(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, kids = tree_pids(spawn, tmp_path)
    tagged = {p.pid for p in marked_processes(current_test_id(), TEST_MARKER)}
    assert {root.pid, *kids} <= tagged


def test_the_leak_scan_finds_an_orphan_in_a_new_session(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "orphan"
    launcher = (
        "import os, subprocess, sys;"
        f"subprocess.Popen([sys.executable, {str(APPS / 'slow.py')!r}, '--life', '60', "
        f"'--pid-file', {str(pid_file)!r}], start_new_session=True)"
    )
    assert spawn([sys.executable, "-c", launcher]).wait(timeout=30) == 0  # the parent is gone
    orphan = int(wait_file(pid_file).read_text())
    found = leaks(current_test_id(), grace_s=0)
    assert [p.pid for p in found] == [orphan]  # not a descendant of anything we hold any more
    assert reap(found, term_wait_s=5) == []
    assert is_gone(orphan) and leaks(current_test_id(), grace_s=0) == []


def test_zombies_count_as_gone(spawn) -> None:  # type: ignore[no-untyped-def]
    proc = spawn([sys.executable, "-c", "pass"])
    ps = psutil.Process(proc.pid)
    wait_until(lambda: ps.status() == psutil.STATUS_ZOMBIE, what="an unreaped exit")
    assert is_gone(ps) and proc.returncode is None
    assert proc.wait(timeout=30) == 0


def test_lock_probe_sees_a_lock_held_by_another_process(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, ready = tmp_path / "x.lock", tmp_path / "ready"
    assert not lock_held(path) and not path.exists()  # probing never creates the file
    holder = (
        "import filelock, os, sys, time;"
        f"lock = filelock.FileLock({str(path)!r}); lock.acquire();"
        f"open({str(ready)!r}, 'w').write('1'); time.sleep(60)"
    )
    proc = spawn([sys.executable, "-c", holder])
    wait_file(ready)
    assert lock_held(path) and lock_held(path)  # probing twice does not steal it
    proc.kill()
    proc.wait(timeout=30)
    assert not lock_held(path)


INNER_TESTS = '''
import os, subprocess, sys

def test_leaky():
    proc = subprocess.Popen([sys.executable, {slow!r}, "--life", "60"])  # not through spawn
    with open(os.environ["LEAK_PID_FILE"], "w") as fh:
        fh.write(str(proc.pid))

def test_tidy(spawn):
    assert spawn([sys.executable, "-c", "pass"]).wait(timeout=30) == 0
'''


def test_the_leak_check_fails_a_leaking_test_and_kills_the_leak(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copy(Path(__file__).parent / "conftest.py", inner / "conftest.py")
    shutil.copytree(Path(__file__).parent / "support", inner / "support",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (inner / "pytest.ini").write_text("[pytest]\n")
    (inner / "test_inner.py").write_text(INNER_TESTS.format(slow=str(APPS / "slow.py")))
    leak_file = tmp_path / "leak"
    proc = spawn([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(inner)],
                 cwd=inner, env={"LEAK_PID_FILE": str(leak_file), "PORTCTL_TEST_EXIT_GRACE_S": "0.5"},
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=50)
    leaked = int(leak_file.read_text())
    try:
        assert proc.returncode == 1, out
        assert "test_leaky leaked processes" in out and f"pid {leaked}" in out, out
        assert "2 passed, 1 error" in out, out  # test_leaky passes, then errors at teardown
        assert is_gone(leaked)
    finally:
        if not is_gone(leaked) and "slow.py" in " ".join(psutil.Process(leaked).cmdline()):
            psutil.Process(leaked).kill()


# ----------------------------------------------------------------------------- global state

@pytest.mark.posix_only
def test_global_state_guard_names_and_restores_what_changed(tmp_path: Path) -> None:
    before = global_state()
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    os.chdir(tmp_path)
    os.environ["PORTCTL_TEST_GUARD_PROBE"] = "1"
    changed = restore_global_state(before)
    assert changed == ["SIGUSR1 handler", f"cwd ({tmp_path})", "environment (PORTCTL_TEST_GUARD_PROBE)"]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL and os.getcwd() == before[1]
    assert "PORTCTL_TEST_GUARD_PROBE" not in os.environ
    assert restore_global_state(before) == []
