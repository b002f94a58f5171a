"""Dynamic ports, names, and the library API, end to end."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import portctl as lib
from support.apps import app
from portctl.core.events import read_events
from support.portctl import Portctl, finish
from support.ports import free_block
from support.waits import accepts, wait_file, wait_port_accepting, wait_until

pytestmark = pytest.mark.timeout(90)


def serving_port(portctl: Portctl, name: str) -> int:
    result = portctl.run("port", name)
    return int(result.stdout) if result.returncode == 0 else 0


def test_port_auto_and_finding_it_by_name(portctl: Portctl) -> None:
    proc = portctl.start("--port", "auto", "--name", "api")
    port = wait_until(lambda: serving_port(portctl, "api"), what="the api instance")
    wait_port_accepting(port)
    assert portctl.run("url", "api").stdout.strip() == f"http://127.0.0.1:{port}"
    assert portctl.pid_file(port).exists()
    assert portctl.run("port", "nope").returncode == 3
    assert finish(proc)[0] == 0


def test_range_skips_taken_ports(portctl: Portctl, spawn) -> None:  # type: ignore[no-untyped-def]
    base = free_block(4)
    for port in (base, base + 1):
        spawn(app("listener", port))
        wait_port_accepting(port)
    found = portctl.run("find-port", "--preferred", str(base), "--range", f"{base}-{base + 3}")
    assert found.returncode == 0 and int(found.stdout) == base + 2
    proc = portctl.start("--port", str(base), "--port-range", f"{base}-{base + 3}", "--name", "web")
    assert wait_until(lambda: serving_port(portctl, "web"), what="the web instance") == base + 2
    wait_port_accepting(base + 2)
    assert finish(proc)[0] == 0
    moved = [e for e in read_events(portctl.run_dir) if e["event"] == "port_changed"]
    assert [(e["previous"], e["port"], e["name"], e["pid"]) for e in moved] == [(base, base + 2, "web", proc.pid)]


def test_a_lost_bind_race_moves_to_the_next_candidate(portctl: Portctl, tmp_path: Path) -> None:
    base = free_block(3)
    proc = portctl.start("--port", str(base), "--port-range", f"{base}-{base + 2}", "--name", "racer",
                         "--", *app("racer", "{port}", tmp_path))
    lost = int(wait_file(tmp_path / "port").read_text())
    with socket.socket() as thief:  # take the port between portctl's check and the child's bind
        thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        thief.bind(("127.0.0.1", lost))
        thief.listen()
        (tmp_path / "taken").write_text("")
        port = wait_until(lambda: serving_port(portctl, "racer"), what="a retry on another port")
        assert port != lost and accepts(port)
        code, _, err = finish(proc)
    assert code == 0 and "trying the next candidate" in err
    moved = [(e["previous"], e["port"]) for e in read_events(portctl.run_dir) if e["event"] == "port_changed"]
    assert moved[-1] == (lost, port)


def test_ensure_port_available_frees_a_leftover_in_development(spawn, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.delenv("PORTCTL_ENV", raising=False)
    port = free_block(1)
    assert lib.ensure_port_available(port) is True  # free already
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    assert [h.pid for h in lib.port_holders(port)] == [holder.pid]
    assert lib.ensure_port_available(port, grace_s=2) is True
    assert holder.wait(timeout=30) is not None and not accepts(port)


def test_ensure_port_available_refuses_in_production(spawn, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVIRONMENT", "production")
    port = free_block(1)
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    with pytest.raises(lib.PolicyRefused) as refused:
        lib.ensure_port_available(port, strict=True)
    assert refused.value.exit_code == 5 and str(holder.pid) in refused.value.message
    assert lib.ensure_port_available(port) is False  # strict=False is the default
    assert holder.poll() is None and accepts(port)


def test_library_free_port_and_find_free_port(spawn) -> None:  # type: ignore[no-untyped-def]
    base = free_block(2)
    holder = spawn(app("listener", base))
    wait_port_accepting(base)
    assert lib.find_free_port(preferred=base, port_range=(base, base + 1)) == base + 1
    assert lib.free_port(base, grace_s=2) == [holder.pid]
    assert lib.find_free_port(preferred=base) == base


def test_who_json_names_the_portctl_instance(portctl: Portctl) -> None:
    proc = portctl.start("--port", "auto", "--name", "named")
    port = wait_until(lambda: serving_port(portctl, "named"), what="the instance")
    wait_port_accepting(port)
    (row,) = json.loads(portctl.run("who", str(port), "--json").stdout)
    assert row["instance"]["name"] == "named" and row["instance"]["run_dir"] == str(portctl.run_dir)
    assert row["instance"]["port"] == port and (portctl.run_dir / f".server_{port}.json").exists()
    assert f"portctl named:{port} in {portctl.run_dir}" in portctl.run("who", port).stdout
    assert row["scope"] == "loopback" and row["parents"][0]["pid"] == proc.pid
    assert finish(proc)[0] == 0
