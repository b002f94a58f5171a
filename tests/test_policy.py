"""The policy table (pure logic: no process is signalled here)."""
from __future__ import annotations

import pytest

from portctl.core import policy
from portctl.base.errors import PermissionDenied, PolicyRefused

ME = "alice"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, False),
        ({"ENVIRONMENT": "production"}, True),
        ({"ENVIRONMENT": " Production "}, True),
        ({"ENVIRONMENT": "staging"}, False),
        ({"PORTCTL_ENV": "production"}, True),
        ({"PORTCTL_ENV": "development", "ENVIRONMENT": "production"}, False),
    ],
)
def test_production_detection(env: dict[str, str], expected: bool) -> None:
    assert policy.is_production(env) is expected


@pytest.mark.parametrize(
    "username, ours, production, privileged, outcome",
    [
        (ME, False, False, False, None),
        (ME, True, False, False, None),
        (ME, True, True, False, None),
        (ME, False, True, False, PolicyRefused),
        (ME, False, True, True, PolicyRefused),
        ("bob", False, False, False, PermissionDenied),
        ("bob", False, False, True, None),
        (None, False, False, False, PermissionDenied),
        ("bob", True, True, False, None),
    ],
)
def test_policy_table(username, ours, production, privileged, outcome) -> None:  # type: ignore[no-untyped-def]
    target = policy.Target(pid=4242, username=username, ours=ours)

    def decide() -> None:
        policy.check(target, port=8001, production=production, me=ME, privileged=privileged)

    if outcome is None:
        decide()
    else:
        with pytest.raises(outcome) as info:
            decide()
        assert info.value.exit_code == {PolicyRefused: 5, PermissionDenied: 8}[outcome]
        assert "4242" in info.value.message and info.value.hint


def test_production_refusal_names_platform_troubleshooting() -> None:
    with pytest.raises(PolicyRefused) as info:
        policy.check(policy.Target(7, ME, False), port=8001, production=True, me=ME, privileged=False)
    assert "8001" in info.value.hint
    assert any(tool in info.value.hint for tool in ("ss ", "lsof", "netstat"))
