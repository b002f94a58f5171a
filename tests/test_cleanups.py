"""Issue 10 item 7: what was dead is gone, and `PortLock` is no context manager that would
enter without taking the lock."""
from __future__ import annotations

from pathlib import Path

import pytest

from portctl.base import messages
from portctl.core import ports
from portctl.core.lock import PortLock
from portctl.core.runfiles import RunDir


def test_entering_a_port_lock_is_refused_rather_than_silently_not_locking(tmp_path: Path) -> None:
    lock = PortLock(tmp_path / ".server_8000.lock")
    with pytest.raises((TypeError, AttributeError)):
        with lock:  # type: ignore[attr-defined]
            pass  # pragma: no cover
    assert lock.acquire()
    lock.release()


@pytest.mark.parametrize("module, name", [
    (messages, "bad_number"), (ports, "wait_accepting"),
])
def test_dead_helpers_are_gone(module: object, name: str) -> None:
    assert not hasattr(module, name)


def test_removing_run_files_never_takes_the_lock_file(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.write_pid(8000, 1)
    run_dir.lock_file(8000).write_text("")
    assert run_dir.remove(8000) == [run_dir.pid_file(8000)]
    assert run_dir.lock_file(8000).exists()
    with pytest.raises(TypeError):
        run_dir.remove(8000, lock_file=True)  # type: ignore[call-arg]
