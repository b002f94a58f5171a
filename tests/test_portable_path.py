"""The end-to-end suite a second time on the portable path: PORTCTL_PORTABLE=1 binds ``_posix``
on Linux, so netlink, the /proc readers, the death signal and the subreaper are off and port
holders and processes come through psutil, as on macOS. The platform module is bound once per
process, so the second run is a pytest of its own; its failures are reported here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portctl.platform.current import platform

TESTS = Path(__file__).resolve().parent
E2E = sorted(str(path) for path in TESTS.glob("test_e2e_*.py"))
RUN_TIMEOUT_S = 1500


@pytest.mark.skipif(platform.NAME != "linux", reason="the portable path is the one bound here already")
@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_the_e2e_suite_passes_on_the_portable_path() -> None:
    assert E2E, "no end-to-end test files found"
    env = {**os.environ, "PORTCTL_PORTABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *E2E],
                          cwd=TESTS.parent, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
