"""The suite collects where POSIX-only names are missing (Windows): no test module may use
``signal.SIGHUP``, ``os.killpg`` and the like at import time, only inside a test marked
``posix_only``. Checked here by collecting the suite in a Python whose ``signal`` and ``os``
lack those names, as Windows' do."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

POSIX_ONLY = {
    "signal": ["SIGHUP", "SIGKILL", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD",
               "SIGSTOP", "SIGCONT", "SIGPIPE", "SIGTSTP", "killpg", "pthread_kill", "alarm"],
    "os": ["killpg", "getpgid", "setsid", "getsid", "setpgid", "fork", "getuid", "geteuid",
           "WNOHANG", "uname", "sysconf"],
}

# Everything the suite needs is imported first (psutil and portctl are fine on Linux); then
# the POSIX-only names go, and the suite's modules are collected.
_COLLECT = """
import os, signal, sys
import psutil, pytest
import portctl.platform.current
for module, names in {posix_only!r}.items():
    for name in names:
        if hasattr(sys.modules[module], name):
            delattr(sys.modules[module], name)
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", {tests!r}]))
"""


def test_the_suite_collects_without_posix_only_names() -> None:
    code = _COLLECT.format(posix_only=POSIX_ONLY, tests=str(TESTS))
    proc = subprocess.run([sys.executable, "-c", code], cwd=TESTS.parent, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " collected" in proc.stdout or "tests collected" in proc.stdout, proc.stdout[-2000:]
