"""`stop` tells the truth (issue 8 §3): exit 0 only when the port refuses connections and no
process carrying the instance's token is left; `--grace` shortens the supervisor's own grace.
Real processes and sockets throughout; nothing here asserts on timing."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from support.apps import app
from support.portctl import Portctl, finish
from support.ports import listeners, unused_port
from support.processes import Popen, is_gone
from support.waits import accepts, wait_file, wait_until

pytestmark = pytest.mark.timeout(90)

# A child that forks a grandchild sharing its listening socket (backlog 0: one pending
# connection fills it). Nobody accepts. The grandchild ignores SIGTERM and SIGINT; its pid goes
# to argv[2]. Both live 60 s at most.
FULL_BACKLOG = """
import os, signal, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(0)
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(sys.argv[2] + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""

# A listener sharing its port through SO_REUSEPORT (same user); writes its pid to argv[2].
REUSEPORT = """
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
s.settimeout(0.2)
with open(sys.argv[2] + ".tmp", "w") as fh:
    fh.write(str(os.getpid()))
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
end = time.monotonic() + 60
while time.monotonic() < end:
    try:
        s.accept()[0].close()
    except OSError:
        pass
"""


def state(portctl: Portctl, port: int) -> str:
    return str(portctl.record(port).get("state", ""))


def kill_supervisor_while_stop_waits(portctl: Portctl, port: int, supervisor: Popen,
                                     env: Optional[dict[str, str]] = None) -> Popen:
    """Launch `stop`, wait until the supervisor is stopping its tree, SIGKILL the supervisor."""
    stop = portctl.launch("stop", "--port", port, env=env)
    wait_until(lambda: state(portctl, port) == "stopping", what="the supervisor to be stopping")
    supervisor.kill()
    assert supervisor.wait(timeout=30) == -signal.SIGKILL
    return stop


@pytest.fixture
def held_connections() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def fill_backlog(port: int, socks: list[socket.socket]) -> None:
    """Connect until a connection attempt times out: the listener's backlog is full."""
    for _ in range(64):
        sock = socket.socket()
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
        except socket.timeout:
            sock.close()
            return
        socks.append(sock)
    raise AssertionError("the backlog never filled")


# ------------------------------------------------------------------ item 1: the truth

def test_supervisor_killed_during_the_grace_leaves_no_socket_holding_grandchild(
        portctl: Portctl, tmp_path: Path) -> None:
    """Grandchildren ignoring SIGTERM share the listening socket; the supervisor is SIGKILLed
    while it waits out its grace. `stop` must go after them (they carry the token): exit 0 only
    once they are gone and the port refuses."""
    port, pids_file = unused_port(), tmp_path / "kids"
    supervisor = portctl.serve(port, "--grace", "2", "--", *app("tree", "{port}", pids_file, "--share-socket"))
    kids = [int(p) for p in wait_file(pids_file).read_text().split()]
    stop = kill_supervisor_while_stop_waits(portctl, port, supervisor)
    code, out, err = finish(stop, sig=0)
    assert code == 0, err
    assert all(is_gone(k) for k in kids), f"grandchildren {kids} survived a stop that said: {out}"
    assert not accepts(port) and listeners(port) == set()
    assert str(kids[0]) in out + err  # the leftovers it stopped are named
    assert "Traceback" not in err


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_full_backlog_is_not_a_free_port(portctl: Portctl, tmp_path: Path, environment: str,
                                           held_connections: list[socket.socket]) -> None:
    """The leftover grandchild holds a listening socket whose backlog is full: a connect times
    out, which is not "refusing". It carries the instance's token: ours, in production too."""
    port, grandchild_file = unused_port(), tmp_path / "grandchild"
    supervisor = portctl.start("--port", port, "--grace", "2", "--",
                               sys.executable, "-c", FULL_BACKLOG, "{port}", grandchild_file)
    wait_until(lambda: state(portctl, port) == "running", what="the instance to serve")
    grandchild = int(wait_file(grandchild_file).read_text())
    fill_backlog(port, held_connections)
    stop = kill_supervisor_while_stop_waits(portctl, port, supervisor, env={"PORTCTL_ENV": environment})
    code, out, err = finish(stop, sig=0)
    assert code == 0, err
    assert is_gone(grandchild), f"the grandchild holding the port survived a stop that said: {out}"
    assert listeners(port) == set()


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_a_port_still_served_by_another_process_is_exit_4_naming_it(
        portctl: Portctl, spawn: Callable[..., Popen], tmp_path: Path) -> None:
    """The instance stops, but a foreign process (no token) shares the port: not "free"."""
    port = unused_port()
    supervisor = portctl.serve(port, "--grace", "1", "--",
                               sys.executable, "-c", REUSEPORT, "{port}", tmp_path / "child")
    spawn([sys.executable, "-c", REUSEPORT, str(port), str(tmp_path / "foreign")])
    foreign = int(wait_file(tmp_path / "foreign").read_text())
    result = portctl.run("stop", "--port", port)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert str(foreign) in result.stderr and "Traceback" not in result.stderr
    assert not is_gone(foreign)  # not ours: named, never signalled
    assert finish(supervisor, sig=0)[0] == 0


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_free_stops_the_instance_then_the_other_holder(
        portctl: Portctl, spawn: Callable[..., Popen], tmp_path: Path) -> None:
    port = unused_port()
    supervisor = portctl.serve(port, "--grace", "1", "--",
                               sys.executable, "-c", REUSEPORT, "{port}", tmp_path / "child")
    foreign_proc = spawn([sys.executable, "-c", REUSEPORT, str(port), str(tmp_path / "foreign")])
    wait_file(tmp_path / "foreign")
    result = portctl.run("free", port, "--grace", "1")
    assert result.returncode == 0, result.stderr
    assert foreign_proc.wait(timeout=30) is not None and not accepts(port)
    assert finish(supervisor, sig=0)[0] == 0


# ------------------------------------------------------------------ item 2: --grace

@pytest.mark.parametrize("grace", ["1", "0"])
def test_stop_grace_shortens_the_supervisors_grace(portctl: Portctl, grace: str) -> None:
    """The child ignores SIGTERM: only the supervisor's kill stops it. Before, `stop` gave up
    after its own grace + 10 s (exit 1) while the supervisor waited out its 20 s."""
    port = unused_port()
    supervisor = portctl.serve(port, "--grace", "20", "--", *app("listener", "{port}", "--ignore-term"))
    child = int(portctl.record(port)["child"]["pid"])
    result = portctl.run("stop", "--port", port, "--grace", grace)
    assert result.returncode == 0, result.stderr
    assert not accepts(port) and is_gone(child)
    assert finish(supervisor, sig=0)[0] == 0 and portctl.nothing_left(port)


def test_free_grace_shortens_the_supervisors_grace(portctl: Portctl) -> None:
    port = unused_port()
    supervisor = portctl.serve(port, "--grace", "20", "--", *app("listener", "{port}", "--ignore-term"))
    child = int(portctl.record(port)["child"]["pid"])
    result = portctl.run("free", port, "--grace", "1")
    assert result.returncode == 0, result.stderr
    assert not accepts(port) and is_gone(child)
    assert finish(supervisor, sig=0)[0] == 0 and portctl.nothing_left(port)


def test_stop_grace_longer_than_the_supervisors_changes_nothing(portctl: Portctl) -> None:
    port = unused_port()
    supervisor = portctl.serve(port, "--grace", "0.5", "--", *app("listener", "{port}", "--ignore-term"))
    result = portctl.run("stop", "--port", port, "--grace", "30")
    assert result.returncode == 0, result.stderr
    assert not accepts(port) and finish(supervisor, sig=0)[0] == 0


# ------------------------------------------------------------------ the helpers it stands on

def test_wait_refusing_is_false_on_a_full_backlog(held_connections: list[socket.socket]) -> None:
    from portctl import ports

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fill_backlog(port, held_connections)
        assert not ports.wait_refusing("127.0.0.1", port, time.monotonic() + 0.5)
    assert ports.wait_refusing("127.0.0.1", port, time.monotonic() + 10)


@pytest.mark.skipif(sys.platform == "win32", reason="the holder takes a POSIX flock")
def test_released_wakes_when_the_holder_lets_go(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    from portctl.lock import released

    lock, ready = tmp_path / "x.lock", tmp_path / "ready"
    holder = spawn([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
                    "fcntl.flock(fd, fcntl.LOCK_EX); open(sys.argv[2], 'w').write('1'); sys.stdin.read()",
                    str(lock), str(ready)], stdin=subprocess.PIPE)
    wait_file(ready)
    event = released(lock, 30)
    assert not event.wait(0.05)  # held
    from portctl._platform import platform

    if platform.lock_holders(lock) is not None:  # a waiter (our thread) is not a holder
        assert platform.lock_holders(lock) == {holder.pid}
    assert holder.stdin is not None
    holder.stdin.close()  # the holder exits, the kernel drops its lock
    assert event.wait(30)
    assert holder.wait(timeout=30) == 0
    assert released(tmp_path / "missing.lock", 0).wait(30)  # no file: nobody holds it


def test_wait_exits_returns_when_a_process_exits(spawn: Callable[..., Popen]) -> None:
    from portctl._platform import platform

    proc = spawn([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.close()
    deadline = time.monotonic() + 30
    while not is_gone(proc.pid) and time.monotonic() < deadline:
        platform.wait_exits([proc.pid], deadline - time.monotonic())
    assert proc.wait(timeout=1) == 0
