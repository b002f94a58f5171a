"""Issue 10 item 8: the folders tell the layers. docs/architecture.md gives every module one
line, under its folder; the console script and `python -m portctl` reach the entry point."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "portctl"


def documented_tree() -> set[str]:
    """The module paths (relative to src/portctl) that the doc's tree lists."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = text.split("```", 2)[1]
    found, folder = set(), ""
    for line in tree.splitlines():
        entry = re.match(r"^( *)(\S+\.py|\S+/)\s", line + " ")
        if not entry:
            continue
        indent, name = len(entry.group(1)), entry.group(2)
        if name.endswith("/"):
            folder = name
        else:
            found.add(name if indent <= 2 else folder + name)
    return found


def test_the_architecture_doc_lists_every_module_under_its_folder() -> None:
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if not (p.name == "__init__.py" and p.parent != PACKAGE)}
    assert documented_tree() == modules


def test_the_console_script_names_the_entry_point() -> None:
    tomllib = pytest.importorskip("tomllib")
    script = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["portctl"]
    module, _, attr = script.partition(":")
    code = f"import {module}; assert callable({module}.{attr})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, stdin=subprocess.DEVNULL)


def test_python_m_portctl_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "portctl", "--version"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stdout.startswith("portctl, version "), proc.stderr

