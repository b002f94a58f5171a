"""Picks the platform module once; nothing else in portctl tests ``sys.platform``.

Each of ``_posix``, ``_linux`` and ``_windows`` exposes the same names (``_surface.SURFACE``).
"""
from __future__ import annotations

import sys

if sys.platform == "win32":  # pragma: no cover - verified on Windows CI only
    from ._windows import *  # noqa: F401,F403
elif sys.platform.startswith("linux"):
    from ._linux import *  # noqa: F401,F403
else:  # pragma: no cover - macOS and the BSDs
    from ._posix import *  # noqa: F401,F403
