"""The application layer: every command's body, parsed values in, an exit code out. The click
CLI (``cli.py``, declarations only) and the click-free fast path (``entry.py``) both call
these, with the parameters named as click names them. Library errors propagate: the entry
that called maps them (``render.report``). Library modules are imported inside the commands,
so `who` does not pay for the supervisor."""
from __future__ import annotations

from . import render
from ..base import messages
from ..base.errors import BadInput, NotRunning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Optional, Sequence

    from ..core.runfiles import RunDir
    from ..core.spec import ServerSpec


# ---------------------------------------------------------------- the fast ones (no click, no psutil for status)
def who(run_dir: Path, port: int, as_json: bool = False) -> int:
    from ..core.ports import holders

    found = [h.to_dict() for h in holders(port)]
    if as_json:
        render.emit_json(found)
    else:
        render.who_report(port, found, str(run_dir or ""))
    return 0 if found else 1


def status(run_dir: Path, names: Sequence[str] = (), port: Optional[int] = None, as_json: bool = False) -> int:
    from ..core import status as states
    from ..core.runfiles import RunDir

    rows = [s.to_dict() for s in states.collect(RunDir(run_dir), port if not names else None)]
    if names:
        rows = [r for r in rows if r["name"] in names or (port is not None and r["port"] == port)]
    if as_json:
        render.emit_json(rows)
    else:
        render.table("portctl instances", render.STATUS_COLUMNS, [render.status_row(r) for r in rows])
        for row in rows:
            if row["state"] == "fatal":
                render.say(messages.fatal_hint(row["port"]))
    live = [r for r in rows if r["state"] in states.LIVE_STATES]
    if port is not None and not any(r["port"] == port for r in live):
        raise NotRunning.on_port(port)
    for name in names:
        if not any(r["name"] == name for r in live):
            raise NotRunning.named(name)
    return 0


def stop(run_dir: Path, names: Sequence[str] = (), port: Optional[int] = None, grace: Optional[float] = None) -> int:
    """Stop the instances NAMES and the one on PORT; with neither, the only one there is."""
    from ..core import stopping
    from ..core.runfiles import RunDir
    from .targets import to_stop

    where = RunDir(run_dir)
    ports, missing = to_stop(where, names, port)
    for name in missing:
        render.say(messages.nothing_named(name))
    if not ports and not missing:
        render.say(messages.nothing_running_in(where.path))
    for target in ports:
        if stopping.stop(where, target, grace, notify=render.warn):
            render.say(messages.stopped(target))
        else:
            render.say(messages.nothing_to_stop(target))
    return 0


def port_of(run_dir: Path, name: str) -> int:
    from ..core.runfiles import RunDir
    from ..core.status import find_by_name

    render.say(str(find_by_name(RunDir(run_dir), name).port))
    return 0


def url(run_dir: Path, name: str) -> int:
    from ..core.ports import instance_url
    from ..core.runfiles import RunDir
    from ..core.status import find_by_name

    found = find_by_name(RunDir(run_dir), name)
    assert found.record is not None
    render.say(instance_url(found.record.spec.host, found.port))
    return 0


# ---------------------------------------------------------------- start and restart
_SPEC_FIELDS = {"grace": "grace_s", "ready_timeout": "ready_timeout_s", "detach": "detached",
                "health_interval": "health_interval_s", "health_timeout": "health_timeout_s"}
_BACKOFF_FIELDS = {"backoff_initial": "initial_s", "backoff_max": "max_s", "backoff_reset": "reset_after_s",
                   "max_restarts": "max_restarts", "restart_window": "window_s"}


def spec_fields(options: dict[str, Any]) -> dict[str, Any]:
    """start's options as ServerSpec fields; the backoff ones as a dict under ``backoff``."""
    fields: dict[str, Any] = {"backoff": {}}
    for key, value in options.items():
        if key in _BACKOFF_FIELDS:
            fields["backoff"][_BACKOFF_FIELDS[key]] = value
        else:
            fields[_SPEC_FIELDS.get(key, key)] = value
    return fields


def start(run_dir: Path, port: int, port_range: Optional[tuple[int, int]], force: bool, command: tuple[str, ...],
          *, port_given: bool, exiting: bool, **options: Any) -> int:
    """Start ``command`` on ``port`` (0: any free one) under supervision. ``port_given``: the
    port was on the command line, not a default; ``exiting``: this process ends with the
    command (a foreground supervisor then keeps the signal dispositions it set)."""
    import os

    from ..base import defaults
    from ..core.backoff import BackoffPolicy
    from ..core.runfiles import RunDir
    from ..core.spec import ServerSpec, default_restart, recorded

    fields = spec_fields(options)
    fields["backoff"] = BackoffPolicy(**fields["backoff"])
    if fields["restart"] is None:
        fields["restart"] = default_restart(fields["detached"])
    fields["cwd"] = fields["cwd"] or os.getcwd()
    # --port-range alone, like --port auto, starts inside the range; --port P prefers P
    auto = port == 0 or (port_range is not None and not port_given)
    if auto:
        port = port_range[0] if port_range else defaults.PORT
    spec = ServerSpec(port=port, port_range=port_range, auto_port=auto, command=command, **fields)
    return _launch(RunDir(run_dir), recorded(spec), force, exiting)


def restart(run_dir: Path, names: Sequence[str], port: Optional[int], update_env: bool, force: bool,
            command: tuple[str, ...], given: dict[str, Any], *, exiting: bool) -> int:
    """Stop the instances NAMES and the one on PORT, then start each again as recorded, with
    the options ``given`` on the command line and ``command`` (when not empty) replacing the
    recorded ones."""
    from ..core import stopping
    from ..core.runfiles import RunDir
    from .targets import restart_plan

    changes = spec_fields(given)
    if not changes["backoff"]:
        del changes["backoff"]
    if command:
        changes["command"] = command
    where = RunDir(run_dir)
    for stop_port, spec in restart_plan(where, names, port, changes, shell_env=update_env):
        if stop_port is not None:
            stopping.stop(where, stop_port, notify=render.warn)
        code = _launch(where, spec, force, exiting)
        if code or not spec.detached:
            return code
    return 0


def _launch(run_dir: RunDir, spec: ServerSpec, force: bool, exiting: bool) -> int:
    """Run in the foreground (the supervisor's code) or detached (report; 0 once it serves)."""
    _check_writable(run_dir.path)
    if not spec.detached:
        from ..core.supervisor import Supervisor, run_as_process

        return run_as_process(Supervisor(spec, run_dir, force=force, notify=render.say, warn=render.warn),
                              exiting=exiting)
    from ..core.daemon import launch

    try:
        outcome = launch(spec, run_dir, force)
    except KeyboardInterrupt:  # only the wait is interrupted: the instance goes on
        render.warn(messages.detached_interrupted(spec.name))
        return 130
    for line in outcome.warnings:
        render.warn(line)
    if outcome.code == 0:
        render.say(messages.detached_ready(outcome.url, outcome.pid, outcome.child_pid, outcome.log))
        return 0
    render.error(outcome.message, outcome.hint)
    if outcome.log:  # set only once a child ran: never an earlier run's or a race winner's log
        from pathlib import Path

        from ..core.logs import tail

        render.log_tail(outcome.log, tail(Path(outcome.log), 20))
    return outcome.code


def _check_writable(path: Path) -> None:
    """`start` writes its files in the run dir: a missing, non-directory or read-only one is
    bad input (exit 2), said before anything is launched."""
    import os
    import tempfile

    why = "does not exist" if not path.exists() else "is not a directory" if not path.is_dir() else ""
    if not why:
        try:
            fd, probe = tempfile.mkstemp(prefix=".portctl-probe-", dir=path)
        except OSError:
            why = "is not writable"
        else:
            os.close(fd)
            os.unlink(probe)
    if why:
        raise BadInput.run_dir_unusable(path, why)


# ---------------------------------------------------------------- the others
def clean(run_dir: Path, dry_run: bool, *, sweep: bool = False, names: Sequence[str] = (),
          anywhere: bool = False, force: bool = False, here: Optional[Path] = None) -> int:
    """Stale files and verified orphans; with ``sweep``, then the strays of the project's
    services ``names`` (all by default): listed, and stopped with ``force``."""
    from ..core import stale
    from ..core.runfiles import RunDir

    project = _sweep_project(here, names) if sweep and here is not None else None
    actions = stale.clean(RunDir(run_dir), dry_run)
    for action, target in actions:
        render.say(messages.clean_action(action, target, dry_run))
    if not actions:
        render.say(messages.clean_nothing())
    if project is not None:
        _sweep(project, RunDir(run_dir), names, anywhere, force and not dry_run, dry_run)
    return 0


def _sweep_project(here: Path, names: Sequence[str]) -> Any:
    """The project of ``here``, its services ``names`` checked for sweep patterns."""
    from ..project import sweep
    from ..project.config import require_project

    project = require_project(here)
    sweep.services(project, names)
    return project


def _sweep(project: Any, run_dir: RunDir, names: Sequence[str], anywhere: bool, force: bool,
           dry_run: bool) -> None:
    import time

    from ..project import sweep

    strays = sweep.find(project, names, anywhere=anywhere)
    if not strays:
        chosen = [s.name for s in sweep.services(project, names)]
        render.say(messages.sweep_none(chosen, messages.sweep_where(str(project.root), anywhere)))
        return
    now = time.time()
    render.table("strays", messages.SWEEP_COLUMNS, [s.row(now) for s in strays])
    if force:
        render.say(messages.sweep_stopped(sweep.stop(project, strays, run_dir)))
    else:
        render.say(messages.sweep_listed(len(strays), dry_run))


def free(run_dir: Path, port: int, host: str, grace: float) -> int:
    from ..core import freeing
    from ..core.runfiles import RunDir

    if not freeing.free_in_run_dir(RunDir(run_dir), port, host, grace, notify=render.say):
        render.say(messages.nothing_holds(port))
    return 0


def logs(run_dir: Path, name: Optional[str], port: Optional[int], lines: int, follow: bool) -> int:
    from ..core.logs import follow as follow_log, log_path, tail
    from ..core.runfiles import RunDir

    path = log_path(RunDir(run_dir), name, port)
    if not follow:
        for line in tail(path, lines):
            render.say(line)
        return 0
    try:
        for line in follow_log(path, lines):
            render.say(line)
    except KeyboardInterrupt:
        pass
    return 0


def events(run_dir: Path, follow: bool, lines: int) -> int:
    from ..core.events import events_file
    from ..core.logs import follow as follow_log, tail
    from ..core.runfiles import RunDir

    path = events_file(RunDir(run_dir).path)
    try:
        for line in (follow_log(path, lines) if follow else tail(path, lines)):
            render.say(line)
    except KeyboardInterrupt:
        pass
    return 0


def find_port(preferred: Optional[int], port_range: Optional[tuple[int, int]], host: str) -> int:
    from ..core.ports import unused_port

    render.say(str(unused_port(preferred, port_range, host)))
    return 0


def config_check(here: Path) -> int:
    from ..project.config import require_project
    from ..project.show import summary

    render.say(summary(require_project(here)))
    return 0


def config_show(here: Path, as_json: bool) -> int:
    from ..project.config import require_project
    from ..project.show import describe, lines

    project = require_project(here)
    if as_json:
        render.emit_json(describe(project))
        return 0
    for line in lines(project):
        render.say(line)
    return 0


def makefile(here: Path, prefix: str) -> int:
    from ..project import wrappers
    from ..project.config import require_project

    project = require_project(here)
    text = wrappers.makefile(project, prefix)
    found, clashing = wrappers.clashes(project, prefix, here)
    if clashing:
        render.warn(messages.makefile_clashes(found, clashing))
    render.write(text)
    return 0


def wrappers(here: Path, directory: Optional[Path]) -> int:
    from ..project import wrappers as bat
    from ..project.config import require_project

    project = require_project(here)
    for path in bat.write_wrappers(project, directory or project.root / "scripts"):
        render.say(messages.wrote(str(path)))
    return 0


def export(here: Path, run_dir: Path, target: str, names: Sequence[str], out_dir: Optional[Path]) -> int:
    from ..export import export as render_export
    from ..export import joined, write_files
    from ..export.plan import running_ports
    from ..project.config import require_project

    project = require_project(here)
    result = render_export(target, project, names, running_ports(project, run_dir))
    for warning in result.warnings:
        render.warn(warning)
    if out_dir is None:
        render.write(joined(target, result.manifests))
        return 0
    for path in write_files(out_dir, result.manifests):
        render.say(str(path))
    return 0
