"""portctl: run a local server under supervision and own its port.

The public library API is imported lazily so that ``import portctl`` stays cheap
and has no side effects.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "PortctlError",
    "ServerSpec",
    "__version__",
]

if TYPE_CHECKING:
    from .errors import PortctlError
    from .spec import ServerSpec

_LAZY = {
    "PortctlError": "errors",
    "ServerSpec": "spec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'portctl' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
