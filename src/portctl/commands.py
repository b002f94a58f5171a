"""The commands scripts and Makefiles call most (`who`, `status`, `port`, `url`, `stop`):
parsed arguments in, an exit code out. Both the click CLI and the click-free entry call them."""
from __future__ import annotations

from . import output
from .errors import NotRunning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Optional, Sequence

    from .project.model import Project
    from .runfiles import RunDir


def who(port: int, as_json: bool, run_dir: Optional[Path] = None) -> int:
    from .ports import holders

    found = [h.to_dict() for h in holders(port)]
    if as_json:
        output.emit_json(found)
    else:
        output.who_report(port, found, str(run_dir or ""))
    return 0 if found else 1


def status(run_dir: Path, port: Optional[int], as_json: bool, names: Sequence[str] = ()) -> int:
    from . import status as states
    from .runfiles import RunDir

    if port is None:
        project = _project(names)
        if project is not None:
            from .project import run

            return run.show_status(project, RunDir(run_dir), names, as_json)
    rows = [s.to_dict() for s in states.status(RunDir(run_dir), port if not names else None)]
    if names:
        rows = [r for r in rows if r["name"] in names or (port is not None and r["port"] == port)]
    if as_json:
        output.emit_json(rows)
    else:
        output.table("portctl instances", output.STATUS_COLUMNS, [output.status_row(r) for r in rows])
        for row in rows:
            if row["state"] == "fatal":
                output.say(output.fatal_hint(row["port"]))
    live = [r for r in rows if r["state"] in states.LIVE_STATES]
    if port is not None and not any(r["port"] == port for r in live):
        raise NotRunning(*output.not_running(port))
    for name in names:
        if not any(r["name"] == name for r in live):
            raise NotRunning(*output.no_such_instance(name))
    return 0


def _project(names: Sequence[str]) -> Optional[Project]:
    """The project here when NAMES (none: all) are its services; looked for with stats alone
    first, so a script's `status` outside any project loads no parser. A project file that
    does not load is said as a warning: these commands then act on the run dir's instances,
    as without one (service names are instance names)."""
    from .runfiles import project_root

    if project_root() is None:
        return None
    from .errors import BadInput
    from .project.run import project_for

    try:
        return project_for(names)
    except BadInput as exc:
        output.warn(exc.message)
        return None


def stop(run_dir: Path, names: Sequence[str], port: Optional[int], grace_s: Optional[float]) -> int:
    """Stop the instances NAMES and the one on PORT; with neither, the only one there is."""
    from . import instances
    from .runfiles import RunDir
    from .targets import to_stop

    where = RunDir(run_dir)
    if port is None:
        project = _project(names)
        if project is not None:
            from .project import run

            stopped = run.stop(project, where, names, grace_s)
            for name in stopped:
                output.say(output.service_stopped(name))
            if not stopped:
                output.say(output.services_not_running())
            return 0
    ports, missing = to_stop(where, names, port)
    for name in missing:
        output.say(output.nothing_named(name))
    if not ports and not missing:
        output.say(output.nothing_running_in(where.path))
    for target in ports:
        if instances.stop(where, target, grace_s, notify=output.warn):
            output.say(output.stopped(target))
        else:
            output.say(output.nothing_to_stop(target))
    return 0


def port_of(run_dir: Path, name: str, wait_s: Optional[float] = None) -> int:
    """Print the port of the running instance NAME; with ``wait_s``, first wait that long
    for it to be ready (NotReady, exit 7, when it is not)."""
    from .runfiles import RunDir
    from .status import find_by_name

    if wait_s is not None:
        _wait_running(RunDir(run_dir), name, wait_s)
    output.say(str(find_by_name(RunDir(run_dir), name).port))
    return 0


WAIT_POLL_S = 0.05


def _wait_running(run_dir: RunDir, name: str, wait_s: float) -> None:
    import time

    from .errors import NotReady
    from .status import find_by_name

    deadline = time.monotonic() + wait_s
    while True:
        try:
            find_by_name(run_dir, name)
            return
        except NotRunning:
            if time.monotonic() >= deadline:
                raise NotReady(*output.not_ready_named(name, wait_s)) from None
        time.sleep(WAIT_POLL_S)


def url(run_dir: Path, name: str) -> int:
    from .runfiles import RunDir
    from .status import find_by_name

    found = find_by_name(RunDir(run_dir), name)
    assert found.record is not None
    output.say(output.instance_url(found.record.spec.host, found.port))
    return 0
