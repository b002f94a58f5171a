"""Running portctl as another user (`nobody`, through runuser) from a test run as root.

The test venv may sit where only root can enter (CI makes it under a 0700 `mktemp -d`; a
developer's under /root), so `nobody` gets its own world-readable copy of portctl and of the
packages it imports, made once per session, and the system's Python of the same version.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Callable, Optional

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from support.processes import Popen

# What the commands run as another user import (the CLI, its commands, the supervisor, the
# renderer); the copy holds the top-level packages these pull in.
_IMPORTS = ("portctl.face.cli", "portctl.face.commands", "portctl.face.render", "portctl.core.supervisor",
            "portctl.core.daemon", "portctl.core.stopping", "portctl.core.freeing", "rich.console", "rich.table")
_COPY: Optional[Path] = None


def can_act_as_nobody() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("runuser") is not None


needs_nobody = pytest.mark.skipif(not can_act_as_nobody(), reason="needs root and runuser to act as another user")


def readable_pythonpath() -> str:
    """A directory every user can read holding portctl and the packages it imports."""
    global _COPY
    if _COPY is None:
        _COPY = Path(tempfile.mkdtemp(prefix="portctl-nobody-path-", dir="/tmp"))
        atexit.register(shutil.rmtree, _COPY, True)
        for source in _top_level_sources():
            target = _COPY / source.name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        for folder, dirs, files in os.walk(_COPY):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
    return str(_COPY)


def _top_level_sources() -> list[Path]:
    """The package directories (or single modules) that importing _IMPORTS loads from outside
    the standard library, found in a fresh interpreter."""
    code = ("import importlib, sys\n"
            f"for name in {_IMPORTS!r}: importlib.import_module(name)\n"
            "for m in list(sys.modules.values()):\n"
            "    f = getattr(m, '__file__', None)\n"
            "    if f: print(m.__name__.split('.')[0], f)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    found: dict[str, Path] = {}
    for line in out.splitlines():
        top, file = line.split(" ", 1)
        path = Path(file).resolve()
        if stdlib in path.parents and "site-packages" not in path.parts:
            continue
        root = path
        while root.parent.name != "site-packages" and root.parent != root and root.name != top:
            root = root.parent
        if root.name == top or root.stem == top:
            found.setdefault(top, root if root.name == top else path)
    return sorted(found.values())


def system_python() -> str:
    """A Python of this version that every user may run (the venv's may sit in root's home)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return shutil.which(version, path="/usr/local/bin:/usr/bin:/bin") or shutil.which("python3") or sys.executable


def portctl_as_nobody(spawn: Callable[..., Popen], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``portctl ARGS`` as user nobody to completion: (exit code, stdout, stderr)."""
    proc = spawn(["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={readable_pythonpath()}",
                  system_python(), "-m", "portctl", *args],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err
