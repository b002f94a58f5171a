"""The static checks run with the suite (the CI command): mypy for each platform, ruff and the
import contracts, all configured in pyproject.toml. A finding fails the test with the tool's
own report."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# The modules only another platform loads; mypy checks all the others on each platform.
# `platform.current` checks each remaining platform module against the Platform protocol.
OTHER_PLATFORMS_MODULES = {
    "linux": ["windows"],
    "darwin": ["windows", "linux", "linux_proc", "linux_net"],
    "win32": ["posix", "linux", "linux_proc", "linux_net", "forking"],
}

needs_310 = pytest.mark.skipif(sys.version_info < (3, 10),
                               reason="mypy 2 and import-linter need Python 3.10 or later")


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` at the project root, this tree's src first on the import path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


@needs_310
@pytest.mark.parametrize("platform", sorted(OTHER_PLATFORMS_MODULES))
def test_mypy_is_clean(platform: str) -> None:
    skip = "|".join(OTHER_PLATFORMS_MODULES[platform])
    result = run_tool("-m", "mypy", "--platform", platform,
                      "--cache-dir", str(ROOT / ".mypy_cache" / platform),
                      "--exclude", rf"portctl[/\\]platform[/\\]({skip})\.py$")
    assert result.returncode == 0, report(result)


def test_ruff_is_clean() -> None:
    result = run_tool("-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, report(result)


@needs_310
def test_import_contracts_are_kept() -> None:
    result = run_tool("-c", "import sys; from importlinter.cli import lint_imports_command; "
                            "sys.exit(lint_imports_command())", "--no-cache", "--no-logo")
    assert result.returncode == 0, report(result)
    assert "0 broken" in result.stdout, report(result)


def test_every_module_is_in_a_layer() -> None:
    """A module must sit in one of the layers' packages (face, project, core, platform, base):
    one outside them would escape the layers contract. Only the package's own entry modules
    and the demo app (its module name is recorded in specs) sit at the top."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    packages = {layer.split(".")[1] for layer in layers}
    top_level = {p.stem for p in (SRC / "portctl").glob("*.py")}
    assert top_level == {"__init__", "__main__", "demo"}
    assert {p.name for p in (SRC / "portctl").iterdir() if p.is_dir() and (p / "__init__.py").exists()} <= packages
