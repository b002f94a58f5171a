"""portctl: run a local server under supervision and own its port.

The public library API is imported lazily so that ``import portctl`` stays cheap
and has no side effects.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "AlreadyRunning",
    "BadInput",
    "Holder",
    "NotReady",
    "NotRunning",
    "PermissionDenied",
    "PolicyRefused",
    "PortInUse",
    "PortctlError",
    "ServerSpec",
    "__version__",
    "ensure_port_available",
    "find_free_port",
    "free_port",
    "port_holders",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .face.api import ensure_port_available, find_free_port, free_port, port_holders
    from .base.errors import (AlreadyRunning, BadInput, NotReady, NotRunning, PermissionDenied,
                              PolicyRefused, PortctlError, PortInUse)
    from .core.ports import Holder
    from .core.spec import ServerSpec

_LAZY = {
    **dict.fromkeys(["ensure_port_available", "find_free_port", "free_port", "port_holders"], "face.api"),
    **dict.fromkeys(["AlreadyRunning", "BadInput", "NotReady", "NotRunning", "PermissionDenied",
                     "PolicyRefused", "PortctlError", "PortInUse"], "base.errors"),
    "Holder": "core.ports",
    "ServerSpec": "core.spec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'portctl' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
