"""ServerSpec: substitution, environment, naming and round trips through the record."""
from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from portctl.spec import ServerSpec, demo_command


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
