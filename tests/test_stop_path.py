"""Issue 13 §6, stop: the way from `portctl stop` in a project to its signals. Each supervisor
is still verified (pid and creation time, a portctl command line, the lock's holder) before
its signal, but from the process's own /proc files: no psutil import, and no read of
/proc/locks (whose first read in a process waits for an RCU grace period) while the
supervisor's own files show its lock. Real processes and real locks."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import psutil
import pytest

from support.ports import free_ports
from support.portctl import run_entry, run_in, write_listeners_project
from support.processes import Popen
from support.waits import accepts, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.posix_only]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc readers")


SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


# ---------------------------------------------------------------- the platform's readers
@linux_only
def test_identity_reads_what_psutil_reads(spawn: Callable[..., Popen]) -> None:
    from portctl.platform import linux_proc

    proc = spawn(SLEEPER)
    seen = linux_proc.identity(proc.pid)
    assert seen is not None
    created, cmdline = seen
    other = psutil.Process(proc.pid)
    assert abs(created - other.create_time()) < 0.05
    assert list(cmdline) == other.cmdline()


@linux_only
def test_identity_is_none_for_a_zombie_and_a_gone_pid(spawn: Callable[..., Popen]) -> None:
    from portctl.platform import linux_proc

    proc = spawn([sys.executable, "-c", "pass"])
    wait_until(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, timeout=10)
    assert linux_proc.identity(proc.pid) is None  # exited, not yet reaped: gone
    proc.wait()
    assert linux_proc.identity(proc.pid) is None


def test_identity_through_psutil_agrees(spawn: Callable[..., Popen]) -> None:
    from portctl.platform import psutil_readers

    proc = spawn(SLEEPER)
    seen = psutil_readers.identity(proc.pid)
    assert seen is not None and list(seen[1]) == psutil.Process(proc.pid).cmdline()
    proc.kill()
    proc.wait()
    assert psutil_readers.identity(proc.pid) is None


HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "if sys.argv[2] == 'lock':\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")


def _holder(spawn: Callable[..., Popen], path: Path, mode: str) -> Popen:
    proc = spawn([sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@linux_only
def test_holds_lock_is_exact_when_it_says_yes(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    from portctl.platform import linux

    lock = tmp_path / ".server_1.lock"
    holder = _holder(spawn, lock, "lock")
    assert linux.holds_lock(holder.pid, lock) is True
    assert linux.lock_holders(lock) == {holder.pid}  # what /proc/locks says too
    assert linux.holds_lock(os.getpid(), lock) is False  # not ours
    other = tmp_path / ".server_2.lock"
    opener = _holder(spawn, other, "open")  # open, not locked
    assert linux.holds_lock(opener.pid, other) is False
    assert linux.holds_lock(holder.pid, other) is False
    holder.kill()
    holder.wait()
    assert linux.holds_lock(holder.pid, lock) is False


def test_is_held_asks_the_likely_holder_first(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    from portctl.core.lock import held_by, is_held
    from portctl.core.identity import ProcRef

    lock = tmp_path / ".server_3.lock"
    holder = _holder(spawn, lock, "lock")
    assert is_held(lock, likely=holder.pid) and is_held(lock, likely=os.getpid()) and is_held(lock)
    ref = ProcRef.of(psutil.Process(holder.pid))
    assert held_by(lock, ref)
    assert not held_by(lock, ProcRef.of(psutil.Process()))
    holder.kill()
    holder.wait()
    assert not is_held(lock, likely=holder.pid) and not held_by(lock, ref)
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert is_held(lock, likely=holder.pid)  # someone else holds it: still held
        assert not held_by(lock, ref)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- `portctl stop` in a project
@linux_only
def test_a_projects_stop_signals_without_psutil_or_proc_locks(tmp_path: Path,
                                                               spawn: Callable[..., Popen]) -> None:
    """`stop` verifies each supervisor from /proc/PID/{stat,cmdline,fdinfo}: psutil is not
    imported and /proc/locks is never opened on the way (both cost before the first signal).
    The services stop dependents first, and each port refuses once it returns."""
    root, ports = tmp_path / "proj", free_ports(2)
    write_listeners_project(root, ports, chained=True)
    started = run_in(spawn, root, "start", "-d")
    assert started.returncode == 0, started.stderr
    run = run_entry(spawn, root, "stop")
    assert run.result.returncode == 0, run.result.stderr
    assert run.result.stdout.splitlines() == ["s1: stopped", "s0: stopped"]
    assert not any(accepts(port) for port in ports)
    assert "psutil" not in run.modules
    assert "/proc/locks" not in run.opened
    assert any(path.endswith("/fdinfo/" + path.rsplit("/", 1)[-1]) for path in run.opened)


def test_a_stop_still_refuses_a_supervisor_whose_command_is_not_portctl(tmp_path: Path,
                                                                        spawn: Callable[..., Popen]) -> None:
    """Fail closed: a lock held by a live process whose recorded identity matches but whose
    command line does not name portctl is tampering, not a supervisor to signal."""
    from portctl.base import messages
    from portctl.base.errors import PortctlError
    from portctl.core.identity import ProcRef
    from portctl.core.owners import live_supervisor
    from portctl.core.runfiles import Record, RunDir
    from portctl.core.spec import ServerSpec

    port = free_ports(1)[0]
    run_dir = RunDir(tmp_path)
    holder = _holder(spawn, run_dir.lock_file(port), "lock")
    ref = ProcRef.of(psutil.Process(holder.pid))
    spec = ServerSpec(command=("true",), port=port, name="x")
    run_dir.write_record(Record(spec=spec, supervisor=ref, token="t" * 32, run_dir=str(tmp_path),
                                state="running", started_at="", child=None))
    run_dir.write_pid(port, holder.pid)
    with pytest.raises(PortctlError) as raised:
        live_supervisor(run_dir, port)
    assert raised.value.message == PortctlError.tampered(port, messages.not_portctl(holder.pid)).message
    assert holder.poll() is None


# ---------------------------------------------------------------- "is it held?" without /proc/locks
@linux_only
def test_lock_is_held_probes_with_a_shared_lock(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    """An exclusive holder refuses the probe; a shared waiter or another probe does not (so two
    `status` never see each other as holders); no file, a symlink: not held, nothing created."""
    from portctl.platform import linux

    lock = tmp_path / ".server_4.lock"
    assert not linux.lock_is_held(lock) and not lock.exists()
    holder = _holder(spawn, lock, "lock")
    assert linux.lock_is_held(lock)
    holder.kill()
    holder.wait()
    assert not linux.lock_is_held(lock)
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a waiter's (or another probe's) shared lock
        assert not linux.lock_is_held(lock)
    finally:
        os.close(fd)
    link = tmp_path / ".server_5.lock"
    link.symlink_to(lock)
    holder = _holder(spawn, lock, "lock")
    assert not linux.lock_is_held(link)  # the link's own inode: never followed, nobody locks it


@linux_only
def test_a_projects_start_reads_no_proc_locks(tmp_path: Path, spawn: Callable[..., Popen]) -> None:
    """A project start looks at each service's leftover lock file (is a supervisor starting
    there?) with a probe: /proc/locks, whose first read waits for an RCU grace period, is not
    on the way to the first launch."""
    root, ports = tmp_path / "proj", free_ports(2)
    write_listeners_project(root, ports, chained=True)
    for port in ports:
        (root / f".server_{port}.lock").touch()  # what an earlier run leaves behind
    try:
        run = run_entry(spawn, root, "start", "-d")
        assert run.result.returncode == 0, run.result.stderr
        assert all(accepts(port) for port in ports)
        assert "/proc/locks" not in run.opened
    finally:
        stopped = run_in(spawn, root, "stop")
    assert stopped.returncode == 0, stopped.stderr
