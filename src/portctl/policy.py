"""May portctl signal this process? Development frees ports; production only stops its own."""
from __future__ import annotations

import os
from typing import Mapping, Optional

from . import output
from ._record import Frozen
from .errors import PermissionDenied, PolicyRefused

PRODUCTION = "production"


def environment(env: Optional[Mapping[str, str]] = None) -> str:
    """PORTCTL_ENV wins over ENVIRONMENT; the default is development."""
    env = os.environ if env is None else env
    return (env.get("PORTCTL_ENV") or env.get("ENVIRONMENT") or "development").strip().lower()


def is_production(env: Optional[Mapping[str, str]] = None) -> bool:
    return environment(env) == PRODUCTION


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
