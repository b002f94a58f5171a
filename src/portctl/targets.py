"""Which instances `stop` and `restart` mean: the NAME arguments and ``--port``, or with
neither, the only instance of the run dir (several: list them, exit 2; never port 8000 by
default). And what `restart` starts for each: the recorded spec with the given options."""
from __future__ import annotations

import os

from .backoff import BackoffPolicy
from .errors import BadInput, PortctlError
from .runfiles import RunDir
from .spec import ServerSpec, default_restart, recorded, restarted
from .status import LIVE_STATES, Status, status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional, Sequence

Plan = tuple["Optional[int]", ServerSpec]  # (the port to stop first, or None; what to start)


def _name(row: Status) -> Optional[str]:
    return row.record.spec.name if row.record is not None else None


def _only(verb: str, run_dir: RunDir, rows: list[Status]) -> list[int]:
    if len(rows) > 1:
        raise BadInput.several_instances(verb, run_dir.path, rows)
    return [row.port for row in rows]


def to_stop(run_dir: RunDir, names: Sequence[str], port: Optional[int]) -> tuple[list[int], list[str]]:
    """The ports to stop, and the names no live instance has."""
    live = [row for row in status(run_dir) if row.state in LIVE_STATES]
    if not names and port is None:
        return _only("stop", run_dir, live), []
    found = [row.port for row in live if _name(row) in names]
    missing = [name for name in names if name not in {_name(row) for row in live}]
    return sorted(set(found) | ({port} if port is not None else set())), missing


def _recorded_by_name(run_dir: RunDir, rows: list[Status], name: str) -> list[int]:
    """Ports of the instances called ``name``: live ones, else ones that died (their files are
    still there), else the last spec saved under that name."""
    live = [row.port for row in rows if row.state in LIVE_STATES and _name(row) == name]
    dead = [row.port for row in rows if row.state not in LIVE_STATES and _name(row) == name]
    if live or dead:
        return live or dead
    saved = [(p, run_dir.read_spec(p)) for p in run_dir.saved_ports()]
    return [p for p, spec in saved if spec is not None and spec.name == name]


def to_restart(run_dir: RunDir, names: Sequence[str], port: Optional[int]) -> tuple[list[int], list[str]]:
    """The ports to restart, and the names found nowhere. Bare: the only live instance, else
    the only one that died (fatal or stale files)."""
    rows = status(run_dir)
    if not names and port is None:
        live = [row for row in rows if row.state in LIVE_STATES]
        return _only("restart", run_dir, live or rows), []
    ports: set[int] = {port} if port is not None else set()
    missing = []
    for name in names:
        found = _recorded_by_name(run_dir, rows, name)
        ports.update(found)
        if not found:
            missing.append(name)
    return sorted(ports), missing


def restart_plan(run_dir: RunDir, names: Sequence[str], port: Optional[int],
                 changes: Mapping[str, Any], *, shell_env: bool) -> list[Plan]:
    """What `restart` does, checked before anything is stopped: for each target, the port to
    stop and the spec to start. ``changes`` are the given start options as spec fields (with
    ``command`` when one came after ``--``); ``shell_env`` takes this shell's environment.
    With nothing recorded and a command given, it is a start. Raises when the command of any
    target could not be spawned, so a healthy instance is never stopped for nothing."""
    ports, missing = to_restart(run_dir, names, port)
    command = changes.get("command")
    if len(ports) + len(missing) > 1 and command:
        raise BadInput.restart_needs_one("a command after -- replaces one instance's")
    if missing and not command:
        raise PortctlError.never_named(missing[0])
    specs = [(p, run_dir.read_spec(p)) for p in ports]
    plans: list[Plan] = []
    for p, spec in specs:
        if spec is None and not command:
            raise PortctlError.nothing_recorded(p)
        if spec is None:  # nothing recorded on the given port: start there
            plans.append((None, _fresh(changes, port=p, auto_port=False)))
        else:
            plans.append((p, restarted(spec, changes, shell_env=shell_env)))
    if not plans:
        if not command:
            raise PortctlError.nothing_to_restart(run_dir.path, run_dir.saved_ports())
        plans.append((None, _fresh(changes, **({"name": missing[0]} if missing else {}))))
    if len(plans) > 1 and not all(spec.detached for _, spec in plans):
        raise BadInput.restart_needs_one("only detached instances can be restarted together")
    for stop_port, spec in plans:
        problem = spec.spawn_problem() if stop_port is not None else None  # a fresh one fails as `start` does
        if problem is not None and stop_port is not None:
            raise PortctlError.cannot_restart(problem[0], problem[1], stop_port)
    return plans


def _fresh(changes: Mapping[str, Any], **fields: Any) -> ServerSpec:
    """A new spec from the given options, the rest defaulted as `start` does."""
    given = {**fields, **changes}
    if "port" not in given and given.get("port_range"):
        given.update(port=given["port_range"][0], auto_port=True)
    backoff = given.pop("backoff", None)
    if backoff:
        given["backoff"] = BackoffPolicy(**backoff)
    given.setdefault("restart", default_restart(bool(given.get("detached"))))
    given.setdefault("cwd", os.getcwd())
    return recorded(ServerSpec(**given))
