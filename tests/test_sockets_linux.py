"""The Linux fast path (netlink sock_diag + /proc fd scan) on real sockets, agreeing with the
/proc/net fallback and with psutil (the portable path)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

from portctl.platform import psutil_readers as _psutil_readers  # noqa: E402

if sys.platform.startswith("linux"):
    from portctl.platform import linux_net as _linux_net


def listener(family: int, address: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot bind {address}: {exc}")
    sock.listen()
    return sock


ADDRESSES = [
    (socket.AF_INET, "127.0.0.1", "IPv4"),
    (socket.AF_INET, "0.0.0.0", "IPv4"),
    (socket.AF_INET6, "::1", "IPv6"),
    (socket.AF_INET6, "::", "IPv6"),
]


@pytest.mark.parametrize("family, address, label", ADDRESSES)
def test_listener_found_on_every_address(family: int, address: str, label: str) -> None:
    with listener(family, address) as sock:
        port = sock.getsockname()[1]
        (found,) = _linux_net.listening_sockets(port)
        assert (found.family, found.address, found.port, found.uid) == (label, address, port, os.getuid())
        assert _linux_net._listening_sockets_procfs(port) == [found]
        assert _linux_net.pids_for_inodes({found.inode}) == {found.inode: [os.getpid()]}
        ours = {(pid, addr) for pid, addr, _ in _psutil_readers.listeners(port)}
        assert ours == {(os.getpid(), address)}


def test_socket_shared_with_a_child_lists_both() -> None:
    with listener(socket.AF_INET, "127.0.0.1") as sock:
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; sys.stdin.read(); time.sleep(0)"],
            pass_fds=[sock.fileno()], stdin=subprocess.PIPE,
        )
        try:
            (found,) = _linux_net.listening_sockets(sock.getsockname()[1])
            pids = _linux_net.pids_for_inodes({found.inode})[found.inode]
            assert pids == sorted([os.getpid(), child.pid])
        finally:
            child.kill()
            child.wait(timeout=10)


def test_connected_and_closed_sockets_are_not_listeners() -> None:
    sock = listener(socket.AF_INET, "127.0.0.1")
    port = sock.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    server_side, _ = sock.accept()
    try:
        assert len(_linux_net.listening_sockets(port)) == 1  # the accepted socket shares the port
        sock.close()
        assert _linux_net.listening_sockets(port) == []
        assert _linux_net._listening_sockets_procfs(port) == []
    finally:
        client.close()
        server_side.close()


def test_unheld_port_is_empty() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening
    assert _linux_net.listening_sockets(port) == []


def test_netlink_agrees_with_psutil_on_many_sockets() -> None:
    socks = [listener(family, address) for family, address, _ in ADDRESSES]
    try:
        for sock in socks:
            port = sock.getsockname()[1]
            fast = {(s.address, s.inode) for s in _linux_net._listening_sockets_netlink(port)}
            slow = {(c.laddr.ip, None) for c in psutil.net_connections("tcp")
                    if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN}
            assert {a for a, _ in fast} == {a for a, _ in slow}
    finally:
        for sock in socks:
            sock.close()
