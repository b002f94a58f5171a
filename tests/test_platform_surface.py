"""The platform seam: ``platform.current.platform`` is one module bound once, every platform module
offers the whole ``Platform`` protocol (mypy checks the types: tests/test_static_checks.py),
and the platform modules load nothing of portctl's core."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import psutil

import pytest

from support.processes import Popen
from support.waits import wait_until
from portctl.platform import current as _platform
from portctl.platform.protocol import Platform

SRC = Path(_platform.__file__).parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux")

# What a platform module may load of portctl: platform modules and the base (the shared leaves).
PLATFORM_SIDE = {"portctl", "portctl.platform", "portctl.platform.posix", "portctl.platform.linux",
                 "portctl.platform.windows", "portctl.platform.linux_proc", "portctl.platform.linux_net",
                 "portctl.platform.psutil_readers", "portctl.platform.stoprequest", "portctl.platform.records",
                 "portctl.base", "portctl.base.atomic", "portctl.base.frozen"}


def members(protocol: type) -> set[str]:
    """The names a module must define to satisfy ``protocol``."""
    names = set(protocol.__dict__.get("__annotations__", {}))
    names.update(n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_"))
    return names


def top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):  # only `import x as x` re-exports count
            names.update(a.name for a in node.names if a.asname == a.name)
    return names


def in_fresh_python(code: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_protocol_names_the_surface() -> None:
    assert {"NAME", "STOP_SIGNALS", "WAKE_INTERVAL_S", "spawn", "listeners", "describe",
            "reap_adopted", "try_lock", "lock_holders"} <= members(Platform)


@pytest.mark.parametrize("module", ["posix.py", "linux.py", "windows.py"])
def test_each_platform_module_defines_or_re_exports_the_whole_surface(module: str) -> None:
    assert members(Platform) <= top_level_names(SRC / module)


def test_the_chosen_module_offers_the_surface() -> None:
    assert all(hasattr(_platform.platform, name) for name in members(Platform))


@pytest.mark.linux_refined
def test_linux_binds_the_linux_refinements() -> None:
    from portctl.platform import linux, posix

    assert _platform.platform is linux and linux.NAME == "linux"
    assert linux.describe.__module__ == "portctl.platform.linux_proc"
    assert linux.listeners is not posix.listeners
    assert linux.reap_adopted is not posix.reap_adopted  # posix's, over the children /proc lists


@linux_only
@pytest.mark.parametrize("value, chosen", [("1", "portctl.platform.posix"), ("0", "portctl.platform.linux"),
                                           ("", "portctl.platform.linux")])
def test_portctl_portable_binds_the_posix_module_on_linux(value: str, chosen: str) -> None:
    code = "from portctl.platform.current import platform; print(platform.__name__, platform.NAME)"
    name, shown = in_fresh_python(code, PORTCTL_PORTABLE=value).split()
    assert name == chosen
    assert shown == ("posix" if chosen == "portctl.platform.posix" else "linux")


@pytest.mark.parametrize("module", ["current", "linux", "posix"])
def test_platform_modules_load_nothing_of_the_core(module: str) -> None:
    if (module == "linux" and not sys.platform.startswith("linux")
            or module == "posix" and sys.platform == "win32"):
        pytest.skip("another platform's module")
    code = (f"import sys, portctl.platform.{module}\n"
            "print(' '.join(m for m in sys.modules if m.split('.')[0] == 'portctl'))")
    loaded = set(in_fresh_python(code).split())
    assert loaded - PLATFORM_SIDE - {"portctl.platform.current"} == set()


@pytest.mark.posix_only
def test_reap_adopted_collects_exited_children_but_the_excluded_one(
        spawn: Callable[..., Popen]) -> None:
    """The one ``reap_adopted`` (``posix``'s, which ``linux`` re-exports): zombies among our
    children are collected, the excluded pid (the Popen child the supervisor waits for) is not."""
    kept, other = (spawn([sys.executable, "-c", "pass"]) for _ in range(2))

    def zombie(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    wait_until(lambda: zombie(kept.pid) and zombie(other.pid), what="both children to exit")
    _platform.platform.reap_adopted(exclude=kept.pid)
    assert not psutil.pid_exists(other.pid) and zombie(kept.pid)
    assert kept.wait(timeout=10) == 0
