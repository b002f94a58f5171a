"""What shell completion offers (cli declares where): the names of the run dir's instances and
of the project's services, and the ports the run dir knows. The shell calls portctl on every
Tab, so a run dir or project file that cannot be read completes nothing: these never raise
and never print (a word on stdout would be offered to the user as a completion)."""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Optional


def names(run_dir: Optional[Path], incomplete: str, *, instances: bool = True, services: bool = True) -> list[str]:
    """The names starting with ``incomplete``: of the instances (live or remembered) in
    ``run_dir`` (None: found from the current directory), and of the project's services."""
    found: set[str] = set()
    if instances:
        found.update(_quietly(lambda: _instances(run_dir).values()))
    if services:
        found.update(_quietly(_service_names))
    return sorted(n for n in found if n and n.startswith(incomplete))


def ports(run_dir: Optional[Path], incomplete: str) -> list[str]:
    """The ports starting with ``incomplete`` of the instances (live or remembered) in
    ``run_dir``, ascending."""
    return [p for p in _quietly(lambda: sorted(_instances(run_dir))) if p.startswith(incomplete)]


def _quietly(read: Callable[[], Iterable[object]]) -> list[str]:
    """``read()``'s words, with nothing printed on the way; none when anything fails."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return [str(word) for word in read()]
        except Exception:  # a broken run dir, a bad project file: nothing to offer
            return []


def _instances(run_dir: Optional[Path]) -> dict[int, str]:
    """port -> name of every instance with a record or a saved spec in the run dir."""
    from ..core.runfiles import RunDir, find_run_dir

    run = RunDir(run_dir if run_dir is not None else find_run_dir())
    found = {}
    for port in sorted(set(run.ports()) | set(run.saved_ports())):
        spec = run.read_spec(port)  # the saved spec, else the live record's
        if spec is not None:
            found[port] = spec.name
    return found


def _service_names() -> tuple[str, ...]:
    from ..project.config import find_project

    project = find_project(Path(os.getcwd()))
    return project.names() if project is not None else ()
