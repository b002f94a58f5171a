"""ServerSpec: substitution, environment, naming and round trips through the record."""
from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portctl.core import spec as spec_module
from portctl.base.frozen import fields
from portctl.core.backoff import BackoffPolicy
from portctl.core.spec import ServerSpec, demo_command


def test_placeholders_substituted_and_nothing_else() -> None:
    spec = ServerSpec(port=8001, host="::1", command=("srv", "--port={port}", "{host}", '{"a": 1}'))
    assert spec.argv() == ["srv", "--port=8001", "::1", '{"a": 1}']


def test_empty_command_is_the_demo_app() -> None:
    spec = ServerSpec(port=8123)
    assert spec.command == demo_command()
    assert spec.argv()[:3] == [sys.executable, "-m", "portctl.demo"]
    assert "8123" in spec.argv() and spec.name == "demo"


def test_child_env_carries_port_host_and_token() -> None:
    env = ServerSpec(port=8002, host="127.0.0.1", command=("x",), name="n").child_env("tok", "/r", base={"A": "1"})
    assert env == {"A": "1", "PORT": "8002", "HOST": "127.0.0.1", "PORTCTL_TOKEN": "tok",
                   "PORTCTL_NAME": "n", "PORTCTL_RUN_DIR": "/r", "PORTCTL_PORT": "8002",
                   "PYTHONUNBUFFERED": "1"}
    kept = ServerSpec(port=8002, command=("x",)).child_env("tok", base={"PYTHONUNBUFFERED": ""})
    assert kept["PYTHONUNBUFFERED"] == ""  # the user's choice stands


def test_names_derived_from_command() -> None:
    assert ServerSpec(command=("uvicorn", "app.main:app", "--port", "{port}")).name == "app.main"
    assert ServerSpec(command=("python3", "-m", "http.server", "{port}")).name == "http.server"
    assert ServerSpec(command=("x",), name="api").name == "api"
    assert ServerSpec(command=("python3", "-c", "import socket; ...")).name == "python3"
    assert len(ServerSpec(command=("a" * 100,)).name) == 40


@given(
    port=st.integers(1, 65535),
    host=st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "localhost"]),
    command=st.lists(st.text(min_size=1), min_size=1, max_size=5),
    grace=st.floats(0, 100, allow_nan=False),
)
def test_round_trip_through_dict(port: int, host: str, command: list[str], grace: float) -> None:
    spec = ServerSpec(port=port, host=host, command=tuple(command), grace_s=grace)
    assert ServerSpec.from_dict(spec.to_dict()) == spec


def test_every_field_has_its_own_decoder() -> None:
    """Issue 10 item 5: a record's values are checked per field, not against the type of the
    field's default (which rejects the None of an Optional field)."""
    assert set(spec_module.FIELD_DECODERS) == set(fields(ServerSpec))
    assert set(spec_module.BACKOFF_DECODERS) == set(fields(BackoffPolicy))


def test_every_field_round_trips_with_values_other_than_its_default() -> None:
    spec = ServerSpec(port=9001, host="::1", command=("srv", "{port}"), name="api", grace_s=2,
                      ready_timeout_s=3.5, auto_port=True, port_range=(9001, 9010), detached=True,
                      restart="always", health="/health", health_interval_s=2, health_timeout_s=0.5,
                      health_failures=5, backoff=BackoffPolicy(initial_s=2, max_restarts=3),
                      log_max_bytes=1024, log_backups=2, cwd="/srv", executable="/usr/bin/srv",
                      env=(("A", "1"),))
    assert ServerSpec.from_dict(spec.to_dict(with_env=True)) == spec


@pytest.mark.parametrize("name", ["port_range", "env"])
def test_an_optional_field_accepts_null(name: str) -> None:
    data = {**ServerSpec(port=9001, command=("x",)).to_dict(), name: None}
    assert getattr(ServerSpec.from_dict(data), name) is None
    assert spec_module.FIELD_DECODERS[name](name, None) is None


@pytest.mark.parametrize("name, value", [
    ("port", "8000"), ("port", True), ("host", 1), ("command", "srv"), ("command", [1]),
    ("grace_s", "5"), ("grace_s", False), ("auto_port", 1), ("port_range", [1]),
    ("port_range", [1, "2"]), ("port_range", 5), ("env", {"A": 1}), ("env", ["A"]),
    ("backoff", []), ("backoff", {"max_restarts": 1.5}), ("health_failures", 3.0),
])
def test_a_value_of_the_wrong_type_is_refused(name: str, value: Any) -> None:
    data = {**ServerSpec(port=9001, command=("x",)).to_dict(), name: value}
    with pytest.raises((TypeError, ValueError)):
        ServerSpec.from_dict(data)


def test_a_wide_spec_is_built_by_keyword_only() -> None:
    with pytest.raises(TypeError, match="keyword-only"):
        ServerSpec(8000, "127.0.0.1")  # type: ignore[misc]
