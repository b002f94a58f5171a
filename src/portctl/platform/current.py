"""Picks the platform module once; nothing else in portctl tests ``sys.platform``.

``platform`` is ``windows``, ``linux`` or ``posix`` (macOS and the BSDs), each checked by
mypy against ``protocol.Platform``. ``PORTCTL_PORTABLE=1`` in the environment is a
test and diagnostic switch: on Linux it binds ``posix`` instead of ``linux``, so netlink and
the /proc readers are off and port holders and processes come through psutil, as on macOS.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .protocol import Platform

PORTABLE = os.environ.get("PORTCTL_PORTABLE") == "1"


def _choose() -> Platform:
    # if/elif/else, not early returns: mypy skips the branches (and their imports) that its
    # --platform cannot take, and checks each module returned against Platform.
    if sys.platform == "win32":  # pragma: no cover - not run on the Linux machine
        from . import windows as _windows

        return _windows
    elif sys.platform.startswith("linux") and not PORTABLE:
        from . import linux as _linux

        return _linux
    else:
        from . import posix as _posix

        return _posix


platform: Platform = _choose()
