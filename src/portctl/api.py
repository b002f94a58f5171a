"""The library API for apps that manage their own port, e.g. in ``main.py``::

    import logging, sys
    import portctl

    if not portctl.ensure_port_available(8000):   # frees a leftover in development
        sys.exit(1)                               # production refused: the log says why
    uvicorn.run(app, port=8000)

Errors are exceptions carrying the CLI's exit codes (``PortctlError.exit_code``); bad
arguments raise ``BadInput`` (2). What the library does is reported through
``logging.getLogger("portctl")``; it never prints.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

from . import instances, messages, ports
from .errors import BadInput, PermissionDenied, PolicyRefused
from .ports import Holder
from .runfiles import RunDir
from .spec import check_seconds

logger = logging.getLogger("portctl")
logger.addHandler(logging.NullHandler())  # a library: no "last resort" printing to stderr


def _run_dir() -> RunDir:
    return RunDir(os.environ.get("PORTCTL_RUN_DIR", "."))


def _port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadInput.for_port(port)
    return port


def _host(host: Any) -> str:
    if not isinstance(host, str) or not host:
        raise BadInput.for_host(str(host), "not a host name or address")
    try:
        ports.resolve_host(host)
    except ValueError as exc:
        raise BadInput.for_host(host, str(exc)) from None
    return host


def _range(port_range: Any) -> Optional[tuple[int, int]]:
    if port_range is None:
        return None
    try:
        low, high = port_range
        if 1 <= _port(low) <= _port(high):
            return low, high
    except (TypeError, ValueError):
        pass
    raise BadInput.for_range(repr(port_range))


def port_holders(port: int) -> list[Holder]:
    """Every process listening on ``port`` (any address, IPv4 and IPv6)."""
    return ports.holders(_port(port))


def find_free_port(preferred: Optional[int] = None, port_range: Optional[tuple[int, int]] = None,
                   host: str = "127.0.0.1") -> int:
    """The preferred port if free, else the first free port in ``port_range``, else any free port."""
    preferred = None if preferred is None else _port(preferred)
    return ports.find_free_port(preferred, _range(port_range), _host(host))


def free_port(port: int, grace_s: float = 5.0, host: str = "127.0.0.1") -> list[int]:
    """Stop whatever holds ``port`` (TERM to each tree, ``grace_s``, KILL), subject to the policy;
    return the pids stopped. Raises PolicyRefused (production, a process portctl did not
    start), PermissionDenied (another user's process) or PortInUse (still busy after)."""
    port, grace_s, host = _port(port), check_seconds("grace_s", grace_s), _host(host)
    return instances.free(_run_dir(), port, host, grace_s, notify=logger.info)


def ensure_port_available(port: int, host: str = "127.0.0.1", *, grace_s: float = 5.0,
                          strict: bool = False) -> bool:
    """Make sure ``host:port`` can be bound: free a leftover holder in development, refuse in
    production. True when the port is available on return; False when the production policy
    or missing permissions refuse to free it (``strict=True`` raises PolicyRefused or
    PermissionDenied instead). Still busy after freeing raises PortInUse.

    Logged on ``logging.getLogger("portctl")``: the holders (warning), the policy that
    allows freeing and what was freed (info), a refusal with its troubleshooting hint (error).
    """
    port, grace_s, host = _port(port), check_seconds("grace_s", grace_s), _host(host)
    if not ports.is_busy(host, port):
        return True
    logger.warning(messages.port_in_use(port, ports.holders(port))[0])
    try:
        run_dir = _run_dir()
        instances.free_port(port, host, grace_s, tokens=instances.tokens(run_dir), run_dir=run_dir,
                            notify=logger.info)
    except (PolicyRefused, PermissionDenied) as refused:
        logger.error("%s (%s)", refused.message, refused.hint)
        if strict:
            raise
        return False
    return True
