"""May portctl signal this process? Development frees ports; production only stops its own.

What the policy decides is reported through ``logging.getLogger("portctl")`` (imported on
demand: the fast commands never pay for ``logging``)."""
from __future__ import annotations

import os

from ..face import output
from ..base.frozen import Frozen
from ..base.errors import PermissionDenied, PolicyRefused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional

PRODUCTION = "production"
DEVELOPMENT = "development"
PRODUCTION_NAMES = frozenset({"production", "prod"})
DEVELOPMENT_NAMES = frozenset({"development", "dev", "develop", "local", "test", "testing", "ci"})


def logger() -> Any:  # a logging.Logger
    import logging

    return logging.getLogger("portctl")


def setting(env: Optional[Mapping[str, str]] = None) -> tuple[str, str]:
    """(variable, value) that decides the policy: PORTCTL_ENV wins over ENVIRONMENT;
    ("", "") when neither is set."""
    env = os.environ if env is None else env
    for variable in ("PORTCTL_ENV", "ENVIRONMENT"):
        value = (env.get(variable) or "").strip()
        if value:
            return variable, value
    return "", ""


def environment(env: Optional[Mapping[str, str]] = None) -> str:
    """The setting's value, lower-cased; the default is development."""
    return setting(env)[1].lower() or DEVELOPMENT


def is_production(env: Optional[Mapping[str, str]] = None) -> bool:
    return environment(env) in PRODUCTION_NAMES


def in_force(env: Optional[Mapping[str, str]] = None) -> str:
    """The policy that applies, ``production`` or ``development``. A setting that names
    neither a production nor a known development environment gets one warning, naming the
    policy applied (a typo must not silently allow killing)."""
    if is_production(env):
        return PRODUCTION
    variable, value = setting(env)
    if value and value.lower() not in DEVELOPMENT_NAMES:
        logger().warning(output.unknown_environment(variable, value))
    return DEVELOPMENT


def describe(env: Optional[Mapping[str, str]] = None) -> str:
    """``development policy (ENVIRONMENT=staging)``, ``development policy (default)``."""
    variable, value = setting(env)
    name = PRODUCTION if is_production(env) else DEVELOPMENT
    return f"{name} policy ({f'{variable}={value}' if variable else 'default'})"


class Target(Frozen):
    """What the policy needs to know about a process before we signal it."""

    pid: int
    username: Optional[str]  # None: the owner could not be read
    ours: bool  # started by a portctl instance (verified by identity or instance token)


def check(target: Target, *, port: int, production: bool, me: str, privileged: bool) -> None:
    """Raise PolicyRefused or PermissionDenied unless ``target`` may be signalled."""
    if target.ours:
        return
    if production:
        raise PolicyRefused(*output.production_refused(port, target.pid))
    if target.username != me and not privileged:
        raise PermissionDenied(*output.other_user(target.pid, target.username))
