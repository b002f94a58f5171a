"""benchmarks/projects.py is a measurement, run by hand (its figures go to docs/benchmarks.md,
never into assertions); the suite only checks that it loads and explains itself."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "projects.py"


def test_help_loads_the_benchmark_and_names_quick_mode() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout
    assert "honcho" in result.stdout
