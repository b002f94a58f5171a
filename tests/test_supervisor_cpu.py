"""Issue 13 §6, start: what a supervisor costs while it waits for its child to listen. It looks
every 1-2 ms, and each look reaps adopted orphans: on Linux their list comes from
/proc/self/task/*/children, never from psutil's walk of every process (~2 ms of CPU a look,
three supervisors' worth competing with the children they start)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.posix_only]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc readers")

REAPER = """
import os, sys, time
from portctl.platform import linux, posix

def walked(pid):
    raise AssertionError("psutil's walk of every process")

posix.children = walked  # what posix's reap_adopted reads by default
child = os.fork()
if child == 0:
    os._exit(3)
while open(f"/proc/{child}/stat").read().split(") ")[1][0] != "Z":
    time.sleep(0.001)
linux.reap_adopted(exclude=-1)
print("reaped" if not os.path.exists(f"/proc/{child}") else "zombie")
"""


@linux_only
def test_linux_reaps_adopted_children_from_proc_not_psutil() -> None:
    env = {**os.environ, "PORTCTL_PORTABLE": "0"}
    done = subprocess.run([sys.executable, "-c", REAPER], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "reaped"

