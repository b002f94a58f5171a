"""The library behaves like a library (issue 9 §3): a bool back, records on the "portctl"
logger, nothing printed. Real holders on real ports; caplog reads the records."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

import portctl
from support.apps import app
from support.ports import unused_port
from support.waits import accepts, wait_port_accepting

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.delenv("PORTCTL_ENV", raising=False)


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "portctl" and r.levelno == level]


def test_freeing_a_leftover_is_logged(spawn, development, caplog, capfd) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="portctl")
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    assert portctl.ensure_port_available(port, grace_s=2) is True
    assert holder.wait(timeout=30) is not None and not accepts(port)
    warnings = records(caplog, logging.WARNING)
    assert len(warnings) == 1 and f"port {port} is in use by pid {holder.pid}" in warnings[0]
    assert "listener.py" in warnings[0]
    infos = records(caplog, logging.INFO)
    assert any("development policy (default) allows stopping pids" in line and str(holder.pid) in line
               for line in infos), infos
    assert any(line == f"freed port {port}: stopped pids {holder.pid}" for line in infos), infos
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the library never prints


def test_production_refusal_returns_false_and_logs_the_hint(spawn, monkeypatch, caplog, capfd) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVIRONMENT", "prod")  # "prod" is production too
    caplog.set_level(logging.INFO, logger="portctl")
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    assert portctl.ensure_port_available(port) is False
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1 and f"refusing to stop pid {holder.pid}" in errors[0]
    assert "see who holds it with" in errors[0]  # the troubleshooting hint
    assert records(caplog, logging.WARNING)  # who holds it
    with pytest.raises(portctl.PolicyRefused) as refused:
        portctl.ensure_port_available(port, strict=True)
    assert refused.value.exit_code == 5
    assert holder.poll() is None and accepts(port)
    assert capfd.readouterr() == ("", "")


def test_a_free_port_logs_nothing(development, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG, logger="portctl")
    assert portctl.ensure_port_available(unused_port()) is True
    assert [r for r in caplog.records if r.name == "portctl"] == []


def test_an_unknown_environment_name_is_warned_about(spawn, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PORTCTL_ENV", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "staging")
    caplog.set_level(logging.INFO, logger="portctl")
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    assert portctl.ensure_port_available(port, grace_s=2) is True
    holder.wait(timeout=30)
    warnings = records(caplog, logging.WARNING)
    assert any("ENVIRONMENT=staging names no known environment: the development policy applies" in w
               for w in warnings), warnings
    assert any("development policy (ENVIRONMENT=staging) allows stopping" in line
               for line in records(caplog, logging.INFO))


def test_the_users_pattern_in_a_fresh_interpreter_prints_nothing(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No logging configured at all: Python's last-resort handler must not print for us."""
    port = unused_port()
    holder = spawn(app("listener", port))
    wait_port_accepting(port)
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import portctl
        if not portctl.ensure_port_available({port}):
            sys.exit(3)
        print("ok")
    """))
    user = spawn([sys.executable, str(script)], env={"ENVIRONMENT": "production"},
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = user.communicate(timeout=60)
    assert user.returncode == 3 and out == "" and err == ""
    assert holder.poll() is None


def test_the_cli_renders_the_policy_lines(portctl, listener) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    holder = listener(port, obey_signals=True)
    result = portctl.run("free", port, "--grace", "2", env={"ENVIRONMENT": "qa"})
    assert result.returncode == 0, result.stderr
    assert "portctl: warning: ENVIRONMENT=qa names no known environment" in result.stderr
    assert f"portctl: the development policy (ENVIRONMENT=qa) allows stopping pids {holder.pid}" in result.stderr
    assert f"freed port {port}" in result.stdout
