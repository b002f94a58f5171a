"""The library API for apps that manage their own port, e.g. in ``main.py``::

    import portctl
    portctl.ensure_port_available(8000)      # frees a leftover in development
    uvicorn.run(app, port=8000)

Errors are exceptions carrying the CLI's exit codes (``PortctlError.exit_code``).
"""
from __future__ import annotations

import os
from typing import Optional

from . import instances, output, policy, ports
from .errors import PermissionDenied, PolicyRefused
from .ports import Holder
from .runfiles import RunDir


def _run_dir() -> RunDir:
    return RunDir(os.environ.get("PORTCTL_RUN_DIR", "."))


def port_holders(port: int) -> list[Holder]:
    """Every process listening on ``port`` (any address, IPv4 and IPv6)."""
    return ports.holders(port)


def find_free_port(preferred: Optional[int] = None, port_range: Optional[tuple[int, int]] = None,
                   host: str = "127.0.0.1") -> int:
    """The preferred port if free, else the first free port in ``port_range``, else any free port."""
    return ports.find_free_port(preferred, port_range, host)


def free_port(port: int, grace_s: float = 5.0, host: str = "127.0.0.1") -> list[int]:
    """Stop whatever holds ``port`` (TERM to each tree, ``grace_s``, KILL), subject to the policy;
    return the pids stopped. Raises PolicyRefused (production, a process portctl did not
    start), PermissionDenied (another user's process) or PortInUse (still busy after)."""
    return instances.free(_run_dir(), port, host, grace_s)


def ensure_port_available(port: int, host: str = "127.0.0.1", *, grace_s: float = 5.0,
                          strict: bool = True) -> bool:
    """Make sure ``host:port`` can be bound: free a leftover holder in development, refuse in
    production. True when the port is available on return.

    With ``strict=False`` a refusal (production policy, permissions) is reported on stderr
    and answered with False instead of an exception.
    """
    if not ports.is_busy(host, port):
        return True
    try:
        run_dir = _run_dir()
        instances.free_port(port, host, grace_s, production=policy.is_production(),
                            tokens=instances.tokens(run_dir), run_dir=run_dir)
    except (PolicyRefused, PermissionDenied) as refused:
        if strict:
            raise
        output.warn(f"{refused.message} ({refused.hint})")
        return False
    return True
