"""May portctl signal this process? Development frees ports; production only stops its own.

What the policy decides is reported through ``logging.getLogger("portctl")`` (imported on
demand: the fast commands never pay for ``logging``)."""
from __future__ import annotations

import os

from . import messages
from ._record import Frozen
from .errors import PermissionDenied, PolicyRefused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping, Optional

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
        logger().warning(messages.unknown_environment(variable, value))
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
        raise PolicyRefused.for_pid(port, target.pid)
    if target.username != me and not privileged:
        raise PermissionDenied.other_user(target.pid, target.username)


def remedy(holders: Iterable[Any]) -> str:
    """What may be done about a port that ``holders`` (with ``pid`` and ``username``) hold,
    under the policy in force and with our rights: ``messages.PRODUCTION`` (only its own
    service manager may stop it), ``ASK_ADMIN`` (another user's, or unseen: we may not free
    it) or ``FREE_IT``."""
    from ._platform import platform

    if is_production():
        return messages.PRODUCTION
    holders = list(holders)
    if not platform.is_privileged() and (any(h.pid is None for h in holders) or not holders
                                          or any(h.username not in (_me(), "?") for h in holders)):
        return messages.ASK_ADMIN
    return messages.FREE_IT


def _me() -> str:
    import psutil  # only when a hint must name the user: the callers have imported it already

    try:
        return str(psutil.Process().username())
    except psutil.Error:
        return ""
