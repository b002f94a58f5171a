"""The commands scripts and Makefiles call most (`who`, `status`, `port`, `url`, `stop`):
parsed arguments in, an exit code out. Both the click CLI and the click-free entry call them."""
from __future__ import annotations

from . import output
from ..base.errors import NotRunning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Optional, Sequence


def who(port: int, as_json: bool, run_dir: Optional[Path] = None) -> int:
    from ..core.ports import holders

    found = [h.to_dict() for h in holders(port)]
    if as_json:
        output.emit_json(found)
    else:
        output.who_report(port, found, str(run_dir or ""))
    return 0 if found else 1


def status(run_dir: Path, port: Optional[int], as_json: bool, names: Sequence[str] = ()) -> int:
    from ..core import status as states
    from ..core.runfiles import RunDir

    rows = [s.to_dict() for s in states.collect(RunDir(run_dir), port if not names else None)]
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


def stop(run_dir: Path, names: Sequence[str], port: Optional[int], grace_s: Optional[float]) -> int:
    """Stop the instances NAMES and the one on PORT; with neither, the only one there is."""
    from ..core import stopping
    from ..core.runfiles import RunDir
    from .targets import to_stop

    where = RunDir(run_dir)
    ports, missing = to_stop(where, names, port)
    for name in missing:
        output.say(output.nothing_named(name))
    if not ports and not missing:
        output.say(output.nothing_running_in(where.path))
    for target in ports:
        if stopping.stop(where, target, grace_s, notify=output.warn):
            output.say(output.stopped(target))
        else:
            output.say(output.nothing_to_stop(target))
    return 0


def port_of(run_dir: Path, name: str) -> int:
    from ..core.runfiles import RunDir
    from ..core.status import find_by_name

    output.say(str(find_by_name(RunDir(run_dir), name).port))
    return 0


def url(run_dir: Path, name: str) -> int:
    from ..core.runfiles import RunDir
    from ..core.status import find_by_name

    found = find_by_name(RunDir(run_dir), name)
    assert found.record is not None
    output.say(output.instance_url(found.record.spec.host, found.port))
    return 0
