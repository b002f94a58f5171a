"""The per-port OS lock: exclusive across processes, released by the kernel when its holder
dies, and the same lock filelock takes (each sees the other's)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import filelock
import pytest

from support.processes import Popen
from support.waits import lock_held, wait_file
from portctl._platform import platform
from portctl.lock import PortLock, is_held, remove_if_free

HOLD_BY = {
    "portctl": "from portctl.lock import PortLock; lock = PortLock(Path(sys.argv[1])); assert lock.acquire()",
    "filelock": "import filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire()",
}


def hold(spawn: Callable[..., Popen], how: str, path: Path) -> Popen:
    """A child that takes the lock on ``path`` the way ``how`` does, says so, and waits."""
    ready = path.with_name(path.name + ".ready")
    code = ("import sys, time; from pathlib import Path\n" + HOLD_BY[how] + "\n"
            "Path(sys.argv[2]).write_text('1'); time.sleep(60)")
    proc = spawn([sys.executable, "-c", code, str(path), str(ready)], stdin=subprocess.DEVNULL)
    wait_file(ready)
    return proc


@pytest.mark.parametrize("how", sorted(HOLD_BY))
def test_a_held_lock_is_refused_and_freed_when_its_holder_dies(how: str, spawn: Callable[..., Popen],
                                                                tmp_path: Path) -> None:
    path = tmp_path / ".server_8001.lock"
    holder = hold(spawn, how, path)
    lock = PortLock(path)
    assert not lock.acquire()
    assert is_held(path) and platform.lock_is_held(path) and lock_held(path)
    holder.kill()
    holder.wait(timeout=30)
    assert lock.acquire()
    try:
        assert lock_held(path)
    finally:
        lock.release()
    assert not lock_held(path) and not is_held(path)


def test_filelock_cannot_take_a_lock_portctl_holds(spawn: Callable[..., Popen], tmp_path: Path) -> None:
    path = tmp_path / ".server_8001.lock"
    hold(spawn, "portctl", path)
    with pytest.raises(filelock.Timeout):
        filelock.FileLock(str(path)).acquire(timeout=0)


def test_probing_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / ".server_8001.lock"
    assert not is_held(path) and not platform.lock_is_held(path)
    assert not path.exists()


def test_remove_if_free_keeps_a_held_lock_file_and_removes_a_free_one(spawn: Callable[..., Popen],
                                                                       tmp_path: Path) -> None:
    held, free = tmp_path / ".server_8001.lock", tmp_path / ".server_8002.lock"
    hold(spawn, "portctl", held)
    free.touch()
    assert not remove_if_free(held) and held.exists()
    assert remove_if_free(free) and not free.exists()


def test_a_lock_whose_file_was_replaced_is_taken_on_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / ".server_8001.lock"
    first = PortLock(path)
    assert first.acquire()
    path.unlink()  # as `clean` does to a lock file it holds
    second = PortLock(path)
    try:
        assert second.acquire()  # a new file at the path: not the unlinked one `first` holds
        assert lock_held(path)
    finally:
        second.release()
        first.release()
