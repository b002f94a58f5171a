"""Fixtures and hooks only; the helpers they use live in tests/support (tested in
tests/test_helpers.py).

- Every process a test starts goes through the ``spawn`` fixture (a ``support.processes.Tracker``):
  registered and tagged before it is returned, its whole tree reaped after the test.
- ``_no_leaks`` (autouse) gives each test a fresh marker and fails it, naming them, if processes
  carrying that marker survive it; ``_session_marker`` does the same for the whole run.
- ``_no_global_changes`` (autouse) fails a test that changed signal dispositions, the working
  directory or the environment, after putting them back.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from support.apps import app
from support.global_state import global_state, restore_global_state
from support.portctl import Portctl
from support.processes import (KILL_WAIT_S, MARKER, RUN_ID, TEST_MARKER, Popen, Tracker, describe, leaks,
                               marked_processes, reap, reap_session, reap_zombie_children)
from support.waits import wait_file, wait_until


# --------------------------------------------------------------------------- markers

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``posix_only`` tests (POSIX signals, sessions, process groups) are skipped on Windows;
    ``linux_refined`` ones unless the Linux module is bound (not with PORTCTL_PORTABLE=1)."""
    from portctl._platform import platform

    skips = {"posix_only": sys.platform == "win32", "linux_refined": platform.NAME != "linux"}
    for marker, skipped in skips.items():
        if skipped:
            skip = pytest.mark.skip(reason=f"{marker}: not on {platform.NAME}")
            for item in items:
                if item.get_closest_marker(marker) is not None:
                    item.add_marker(skip)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session", autouse=True)
def _session_marker() -> Iterator[None]:
    """Tag everything this session starts; fail the run if any of it survived."""
    previous = os.environ.get(MARKER)
    os.environ[MARKER] = RUN_ID
    try:
        yield
    finally:
        reap_session()
        survivors = marked_processes(RUN_ID, MARKER)
        text = describe(survivors)
        stubborn = reap(survivors)
        if previous is None:
            os.environ.pop(MARKER, None)
        else:
            os.environ[MARKER] = previous
        assert not survivors, f"processes survived the test session: {text}" + (
            f" (and could not be killed: {describe(stubborn)})" if stubborn else "")


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Per test: a fresh marker in, and after teardown no process carrying it may survive."""
    test_id = uuid.uuid4().hex
    previous = os.environ.get(TEST_MARKER)
    os.environ[TEST_MARKER] = test_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TEST_MARKER, None)
        else:
            os.environ[TEST_MARKER] = previous
    leftovers = leaks(test_id)
    if leftovers:
        text = describe(leftovers)
        reap(leftovers)
        pytest.fail(f"{request.node.nodeid} leaked processes: {text}", pytrace=False)
    reap_zombie_children()


@pytest.fixture(autouse=True)
def _no_global_changes(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that runs portctl code in-process must leave signal dispositions, the working
    directory and the environment as it found them: a helper started later inherits them (a
    SIG_IGN left behind turns every graceful-stop test into a kill test). The state is restored
    and the test fails, naming what changed."""
    before = global_state()
    yield
    changed = restore_global_state(before)
    if changed:
        pytest.fail(f"{request.node.nodeid} changed global state: {'; '.join(changed)}", pytrace=False)


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    owned = Tracker()
    try:
        yield owned
    finally:
        owned.reap_all()


@pytest.fixture
def spawn(tracker: Tracker) -> Callable[..., Popen]:
    """``spawn(argv, env=None, **popen_kwargs)``: a tracked, tagged, reaped Popen."""
    return tracker.spawn


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


@pytest.fixture
def portctl(run_dir: Path, spawn: Callable[..., Popen]) -> Portctl:
    return Portctl(run_dir, spawn)


@pytest.fixture
def bystander(spawn: Callable[..., Popen], tmp_path: Path) -> Iterator[Popen]:
    """A live, sleeping process of ours that must never be signalled: it survives TERM/INT/HUP/
    USR1/USR2 and logs each one to ``bystander.signal_log`` (SIGKILL would show as an exit)."""
    log = tmp_path / f"bystander-{uuid.uuid4().hex[:8]}.signals"
    pid_file = tmp_path / f"bystander-{uuid.uuid4().hex[:8]}.pid"
    proc = spawn(app("slow", "--life", 90, "--signal-log", log, "--pid-file", pid_file))
    wait_file(pid_file)
    proc.signal_log = log  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:  # it shrugs off SIGTERM by design: no need for the tracker's grace
        proc.kill()
        proc.wait(timeout=KILL_WAIT_S)


@pytest.fixture
def listener(spawn: Callable[..., Popen], tmp_path: Path) -> Iterator[Callable[..., Popen]]:
    """``listener(port, *args, host="127.0.0.1")``: a foreign holder of ``port`` (tests/apps/
    listener.py), returned once it listens. It logs the signals it gets to ``.signal_log`` and
    survives them (so ``untouched(proc)`` works) unless ``obey_signals=True``."""

    def start(port: int, *args: object, host: str = "127.0.0.1", obey_signals: bool = False) -> Popen:
        tag = uuid.uuid4().hex[:8]
        ready, log = tmp_path / f"listener-{tag}.ready", tmp_path / f"listener-{tag}.signals"
        argv = app("listener", port, "--host", host, "--ready-file", ready, *args)
        if not obey_signals:
            argv += ["--signal-log", str(log)]
        proc = spawn(argv, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: ready.exists() or proc.poll() is not None, what=f"a listener on {host}:{port}")
        if proc.poll() is not None:
            raise AssertionError(f"listener on {host}:{port} failed: {proc.communicate()[1]}")
        log.touch()
        proc.signal_log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    started: list[Popen] = []
    yield start
    for proc in started:  # they shrug off SIGTERM by design: no need for the tracker's grace
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=KILL_WAIT_S)
