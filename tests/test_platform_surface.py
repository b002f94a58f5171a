"""Every platform module defines the same surface (the Windows one checked as source here)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from portctl import _platform
from portctl._surface import SURFACE

SRC = Path(_platform.__file__).parent


def top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", ["_posix.py", "_windows.py"])
def test_module_defines_the_whole_surface(module: str) -> None:
    assert set(SURFACE) <= top_level_names(SRC / module)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux")
def test_linux_refines_the_posix_surface() -> None:
    from portctl import _linux

    assert all(hasattr(_linux, name) for name in SURFACE)
    assert _linux.NAME == "linux" and _platform.NAME == "linux"
    assert _linux.describe.__module__ == "portctl._linux_proc"


def test_the_chosen_module_exports_the_surface() -> None:
    assert all(hasattr(_platform, name) for name in SURFACE)
