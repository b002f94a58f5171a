"""End to end: several portctl processes racing on one run dir."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from support.apps import app
from support.portctl import Portctl, finish
from support.ports import free_ports, listeners, unused_port
from support.processes import is_gone
from support.waits import accepts, wait_file, wait_until

pytestmark = pytest.mark.timeout(120)
RACERS = 8


def serving(portctl: Portctl, port: int) -> bool:
    return bool(accepts(port) and portctl.read_pid(port) and portctl.record(port).get("state") == "running")


@pytest.mark.parametrize("child", [["--", *app("listener", "{port}")], []], ids=["listener", "demo"])
def test_concurrent_starts_on_one_port_leave_exactly_one_supervisor(portctl: Portctl, child: list[str]) -> None:
    port = unused_port()
    procs = [portctl.start("--port", port, *child) for _ in range(RACERS)]
    wait_until(lambda: sum(p.poll() is not None for p in procs) >= RACERS - 1, timeout=90,
               what=f"{RACERS - 1} of {RACERS} racers to give up")
    winners = [p for p in procs if p.poll() is None]
    assert len(winners) == 1, [(p.returncode, p.communicate()[1]) for p in procs if p.poll() is not None]
    winner = winners[0]
    for loser in procs:
        if loser is not winner:
            _, err = loser.communicate()
            assert loser.returncode in (4, 6), err
            assert "Traceback" not in err

    wait_until(lambda: serving(portctl, port), timeout=60, what="the winner to serve")
    assert portctl.read_pid(port) == winner.pid
    record = portctl.record(port)
    assert record["supervisor"]["pid"] == winner.pid
    assert listeners(port) == {record["child"]["pid"]}
    rows = json.loads(portctl.run("status", "--json").stdout)
    assert [(r["port"], r["state"], r["pid"]) for r in rows] == [(port, "running", winner.pid)]

    assert portctl.run("stop", "--port", port).returncode == 0
    assert finish(winner, sig=0)[0] == 0
    assert not accepts(port) and portctl.nothing_left(port) and is_gone(record["child"]["pid"])



def test_concurrent_stops_all_succeed(portctl: Portctl) -> None:
    port = unused_port()
    proc = portctl.serve(port, "--grace", "1", "--", *app("listener", "{port}", "--ignore-term"))
    child = portctl.record(port)["child"]["pid"]
    stops = [portctl.launch("stop", "--port", port) for _ in range(4)]
    for stop in stops:
        out, err = stop.communicate(timeout=60)
        assert stop.returncode == 0, err
        assert "Traceback" not in err
    assert not accepts(port)
    assert finish(proc, sig=0)[0] == 0
    assert portctl.nothing_left(port) and is_gone(child)


def test_concurrent_starts_on_different_ports_share_a_run_dir(portctl: Portctl) -> None:
    ports = free_ports(4)
    procs = {port: portctl.start("--port", port, "--", *app("listener", "{port}")) for port in ports}
    for port, proc in procs.items():
        wait_until(lambda: proc.poll() is not None or serving(portctl, port), timeout=60,
                   what=f"port {port} to serve")
        assert proc.poll() is None, proc.communicate()
        assert portctl.read_pid(port) == proc.pid
    rows = json.loads(portctl.run("status", "--json").stdout)
    assert sorted((r["port"], r["state"], r["pid"]) for r in rows) == \
        sorted((port, "running", proc.pid) for port, proc in procs.items())

    stops = [portctl.launch("stop", "--port", port) for port in ports]
    for stop in stops:
        assert stop.wait(timeout=60) == 0
    for port, proc in procs.items():
        assert finish(proc, sig=0)[0] == 0
        assert not accepts(port) and portctl.nothing_left(port)


def test_a_start_racing_a_stop_leaves_a_consistent_run_dir(portctl: Portctl) -> None:
    port = unused_port()
    first = portctl.serve(port, "--", *app("listener", "{port}"))
    stop = portctl.launch("stop", "--port", port)
    second = portctl.start("--port", port, "--", *app("listener", "{port}"))
    _, err = stop.communicate(timeout=60)
    assert finish(first, sig=0)[0] == 0
    wait_until(lambda: second.poll() is not None or serving(portctl, port), timeout=60,
               what="the second start to serve or give up")
    if second.poll() is None:  # it got the port after the stop
        # The stop's target is gone; when the second took the port before the stop's final
        # check, the port does not refuse, and the stop says so (exit 4, naming the holder)
        # rather than "stopped and free" (a loaded machine widens that window)
        child = portctl.record(port)["child"]["pid"]
        assert stop.returncode == 0 or (stop.returncode == 4 and f"pid {child}" in err), err
        assert portctl.read_pid(port) == second.pid
        assert listeners(port) == {portctl.record(port)["child"]["pid"]}
        assert finish(second)[0] == 0
    else:  # it lost against the running instance
        assert stop.returncode == 0, err
        assert second.returncode in (4, 6), second.communicate()
    assert not accepts(port) and portctl.nothing_left(port)


def test_clean_running_alongside_starts_never_breaks_them(portctl: Portctl) -> None:
    """`clean` probes locks; a start racing it must still start (or see a real holder)."""
    ports = free_ports(3)
    starts = {}
    cleans = []
    for port in ports:
        cleans.append(portctl.launch("clean"))
        starts[port] = portctl.start("--port", port, "--", *app("listener", "{port}"))
        cleans.append(portctl.launch("clean"))
    for port, proc in starts.items():
        wait_until(lambda: proc.poll() is not None or serving(portctl, port), timeout=60,
                   what=f"port {port} to serve")
        assert proc.poll() is None, (proc.returncode, proc.communicate())
    for clean in cleans:
        assert clean.wait(timeout=60) == 0
    for port, proc in starts.items():  # clean removed nothing of a live instance
        assert portctl.read_pid(port) == proc.pid and portctl.record(port)["supervisor"]["pid"] == proc.pid
        assert portctl.lock_held(port)
        assert finish(proc)[0] == 0 and portctl.nothing_left(port)


def test_a_stop_while_a_forced_start_is_still_freeing_the_port(portctl: Portctl, listener) -> None:  # type: ignore[no-untyped-def]
    """The supervisor holds the lock (and has written its files) while it evicts a holder that
    ignores SIGTERM (the grace period): a `stop` then stops it, and the child never starts."""
    port = unused_port()
    holder = listener(port, "--ignore-term", obey_signals=True)
    starting = portctl.start("--port", port, "--force", "--grace", 5, "--", *app("listener", "{port}"))
    wait_until(lambda: portctl.pid_file(port).exists() or starting.poll() is not None,
               what="the supervisor's files")
    assert holder.poll() is None  # still evicting
    result = portctl.run("stop", "--port", port)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert finish(starting, sig=0)[0] == 0
    assert not accepts(port) and portctl.nothing_left(port)


def test_starts_succeed_while_the_lock_is_probed_in_a_loop(portctl: Portctl) -> None:
    """What a Makefile polling `portctl status` while another target starts the server does."""
    import threading

    from portctl.core.lock import is_held  # the probe `status`, `stop` and `clean` use

    done = threading.Event()

    def poll(lock: Path) -> None:
        while not done.is_set():
            is_held(lock)

    for _ in range(8):
        port = unused_port()
        lock = portctl.lock_file(port)
        lock.touch()  # as a previous run leaves it
        pollers = [threading.Thread(target=poll, args=(lock,), daemon=True) for _ in range(3)]
        for thread in pollers:
            thread.start()
        try:
            proc = portctl.start("--port", port, "--", *app("listener", "{port}"))
            wait_until(lambda: proc.poll() is not None or serving(portctl, port), what="start to serve or fail")
        finally:
            done.set()
            for thread in pollers:
                thread.join()
            done.clear()
        code, _, err = finish(proc)
        assert code == 0, err


SUCCESSOR = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
with open(sys.argv[2], "w") as fh:
    fh.write("waiting")
fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the running supervisor lets go, then holds it
time.sleep(60)
"""


def test_stop_returns_when_its_target_let_go_even_if_the_lock_is_taken_again(portctl: Portctl, spawn,  # type: ignore[no-untyped-def]
                                                                                tmp_path: Path) -> None:
    """A successor (like the next `start`) takes the lock the instant the target releases it."""
    port, waiting = unused_port(), tmp_path / "waiting"
    proc = portctl.serve(port, "--", *app("listener", "{port}"))
    spawn([sys.executable, "-c", SUCCESSOR, portctl.lock_file(port), waiting])
    wait_file(waiting)
    result = portctl.run("stop", "--port", port, "--grace", "0.5")
    assert finish(proc, sig=0)[0] == 0 and not accepts(port)
    assert result.returncode == 0, result.stderr
