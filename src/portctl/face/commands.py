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
    from typing import Any, Callable, Optional, Sequence

    from ..core.runfiles import Record, RunDir
    from ..core.spec import ServerSpec
    from ..project.model import Project
    from ..project.run import Started


# ---------------------------------------------------------------- the fast ones (no click, no psutil for status)
def who(run_dir: Path, port: int, as_json: bool = False) -> int:
    from ..core.ports import holders

    found = [h.to_dict() for h in holders(port)]
    if as_json:
        render.emit_json(found)
    else:
        render.who_report(port, found, str(run_dir or ""))
    return 0 if found else 1


def status(run_dir: Path, names: Sequence[str] = (), port: Optional[int] = None, as_json: bool = False,
           wide: bool = False) -> int:
    from ..core import status as states
    from ..core.runfiles import RunDir

    if port is None:
        project = _project(names)
        if project is not None:
            return _project_status(project, RunDir(run_dir), names, as_json, wide)
    rows = [s.to_dict() for s in states.collect(RunDir(run_dir), port if not names else None)]
    if names:
        rows = [r for r in rows if r["name"] in names or (port is not None and r["port"] == port)]
    if as_json:
        render.emit_json(rows)
    elif rows:
        render.status_table(rows, wide=wide)
    elif not names and port is None:
        render.say(messages.no_instances(RunDir(run_dir).path))
    live = [r for r in rows if r["state"] in states.LIVE_STATES]
    if port is not None and not any(r["port"] == port for r in live):
        raise NotRunning.on_port(port)
    for name in names:
        if not any(r["name"] == name for r in live):
            raise NotRunning.named(name)
    return 0


def stop(run_dir: Path, names: Sequence[str] = (), port: Optional[int] = None, grace: Optional[float] = None) -> int:
    """Stop the instances NAMES and the one on PORT; with neither, the only one there is."""
    from ..core.runfiles import RunDir

    where = RunDir(run_dir)
    if port is None:
        project = _project(names)
        if project is not None:
            from ..project import run

            stopped = run.stop(project, where, names, grace, notify=render.warn)
            for name in stopped:
                render.say(messages.service_stopped(name))
            if not stopped:
                render.say(messages.services_not_running())
            return 0
    from ..core import stopping
    from .targets import to_stop

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


def port_of(run_dir: Path, name: str, wait: bool = False, timeout: float = 30.0) -> int:
    """Print the port of the running instance NAME; with ``wait``, first wait up to
    ``timeout`` seconds for it to be ready (NotReady, exit 7, when it is not)."""
    from ..core.runfiles import RunDir
    from ..core.status import find_by_name

    if wait:
        _wait_running(RunDir(run_dir), name, timeout)
    render.say(str(find_by_name(RunDir(run_dir), name).port))
    return 0


WAIT_POLL_S = 0.05


def _wait_running(run_dir: RunDir, name: str, wait_s: float) -> None:
    import time

    from ..base.errors import NotReady
    from ..core.status import find_by_name

    deadline = time.monotonic() + wait_s
    while True:
        try:
            find_by_name(run_dir, name)
            return
        except NotRunning:
            if time.monotonic() >= deadline:
                raise NotReady(*messages.not_ready_named(name, wait_s)) from None
        time.sleep(WAIT_POLL_S)


def url(run_dir: Path, name: str) -> int:
    from ..core.ports import instance_url
    from ..core.runfiles import RunDir
    from ..core.status import find_by_name

    found = find_by_name(RunDir(run_dir), name)
    assert found.record is not None
    render.say(instance_url(found.record.spec.host, found.port))
    return 0


# ---------------------------------------------------------------- projects
def _project(names: Sequence[str]) -> Optional[Project]:
    """The project here when NAMES (none: all) are its services; looked for with stats alone
    first, so a script's `status` outside any project loads no parser. A project file that
    does not load is said as a warning: these commands then act on the run dir's instances,
    as without one (service names are instance names)."""
    from ..core.runfiles import project_root

    if project_root() is None:
        return None
    from ..project.run import project_for

    try:
        return project_for(names)
    except BadInput as exc:
        render.warn(exc.message)
        return None


def _project_status(project: Project, run_dir: RunDir, names: Sequence[str], as_json: bool,
                    wide: bool = False) -> int:
    """`status` in a project: every service (or NAME...); exit 3 when a named one is not running."""
    from ..project.run import status_rows
    from ..core.status import LIVE_STATES

    rows = status_rows(project, run_dir)
    if names:
        rows = [r for r in rows if r["name"] in names]
    if as_json:
        render.emit_json(rows)
    else:
        render.status_table(rows, wide=wide)
    for name in names:
        if not any(r["name"] == name and r["state"] in LIVE_STATES for r in rows):
            raise NotRunning.named(name)
    return 0


LOG_TAIL_LINES = 20  # shown under a service that failed to start
WATCH_POLL_S = 0.5  # the foreground's look at which services still run
LOG_DRAIN_S = 0.3  # the foreground's last read of the logs, beyond their 0.1 s poll


def start_project(run_dir: Path, names: Sequence[str], detach: bool, force: bool,
                  keep_going: bool) -> Optional[int]:
    """`start [NAME...]` in a project: detached, report and return; else the foreground view.
    None when there is no project here, or NAME... are not its services (a command to run)."""
    from ..project import run
    from ..core.runfiles import RunDir

    project = run.project_for(names, commands=True)
    if project is None:
        return None
    where = RunDir(run_dir)
    _check_writable(where.path)
    if not detach:
        return _foreground(project, where, names, force=force, keep_going=keep_going)
    try:
        with render.waiting(messages.waiting_for(names or project.names(), None)) as shown:
            result = run.start(project, where, names, force=force, keep_going=keep_going, notify=render.warn,
                               waiting=_still_waiting(shown))
    except KeyboardInterrupt:  # only the wait is interrupted: what was launched goes on
        render.warn(messages.project_interrupted())
        return 130
    return _report(result, where)


def _still_waiting(shown: render.Waiting) -> Callable[[Sequence[str]], None]:
    """What the spinner says as a project's services become ready: those still waited on."""

    def update(left: Sequence[str]) -> None:
        if left:
            shown.what = messages.waiting_for(left, None)

    return update


def restart_project(run_dir: Path, names: Sequence[str], force: bool, options_given: bool) -> Optional[int]:
    """`restart [NAME...]` in a project: the file read again, NAME... and their dependents.
    None when there is no project here or NAME... are not its services; other start options
    (``options_given``) are refused: they belong in the file."""
    from ..project import run
    from ..core.runfiles import RunDir

    project = _project(names)
    if project is None:
        return None
    if options_given:
        raise BadInput(*messages.project_options(project.file))
    where = RunDir(run_dir)
    return _report(run.restart(project, where, names, force=force), where)


def _report(result: Started, run_dir: RunDir, keep_going: bool = False) -> int:
    """Say what a project start did; its exit code: 0, or the first failure's."""
    from pathlib import Path

    from ..core.logs import tail
    from ..core.ports import instance_url
    from ..core.status import collect as instance_status

    for name in result.running:
        render.say(messages.service_already_running(name))
    for failure in result.failed:
        render.error(f"{failure.name}: {failure.message}", failure.hint)
        if failure.log:
            render.log_tail(failure.log, tail(Path(failure.log), LOG_TAIL_LINES))
    for name in result.skipped:
        render.warn(messages.service_not_started(name))
    if result.failed and not keep_going and result.launched:
        render.warn(messages.project_rolled_back(result.launched))
    if not result.failed:
        found = {s.record.spec.name: s for s in instance_status(run_dir) if s.record}
        for name in result.launched:
            row = found.get(name)
            url = instance_url(row.record.spec.host, row.port) if row and row.record else ""
            render.ready(messages.service_started(name, url))
    return result.failed[0].code if result.failed else 0


def _foreground(project: Project, run_dir: RunDir, names: Sequence[str], *, force: bool,
                keep_going: bool) -> int:
    """`start` without -d in a project: start, then print every service's output after a
    ``HH:MM:SS name |`` prefix until Ctrl+C (or TERM, HUP), which stops what this start
    launched, dependents first. A service that ends is said once; the others go on. Returns
    when none is left (exit 1)."""
    import threading

    from ..project import run

    wanted = [n for level in project.start_order(names) for n in level]
    width = max(len(n) for n in wanted)
    lines = run.LogLines(run_dir, wanted)
    interrupted = threading.Event()

    def show(seconds: float) -> None:
        for name, line in lines.within(seconds, interrupted.is_set if seconds > LOG_DRAIN_S else lambda: False):
            render.say(render.service_line(name, width, line, wanted.index(name), clock=True))

    previous = run.catch_stop_signals(interrupted)
    try:
        with render.waiting(messages.waiting_for(wanted, None)) as shown:
            result = run.start(project, run_dir, names, force=force, keep_going=keep_going, foreground=True,
                               interrupted=interrupted.is_set, notify=render.warn, waiting=_still_waiting(shown))
        code = _report(result, run_dir, keep_going)
        if result.failed and not keep_going and not interrupted.is_set():  # run.start stopped its own
            return code
        if result.launched and not interrupted.is_set():
            render.details([messages.ready_foreground()])
        mine, live = set(result.launched), set(result.launched) | set(result.running)
        while live and not interrupted.is_set():
            show(WATCH_POLL_S)
            now = set(run.live_services(project, run_dir))
            for name in sorted(live - now):
                render.warn(messages.service_exited(name))
            live &= now
        if not live and not interrupted.is_set():
            show(LOG_DRAIN_S)
            render.warn(messages.project_all_exited())
            return 1
        targets = sorted(mine & live)
        if targets:
            render.say(messages.project_stopping(targets))
            ports = {name: s.port for name, s in run.live_services(project, run_dir).items()}
            stopped = run.stop(project, run_dir, targets, dependents=False, notify=render.warn)
        show(LOG_DRAIN_S)
        if targets:  # the last line, after the services' last log lines
            render.say(messages.project_stopped(sorted(stopped), sorted(ports[n] for n in stopped if n in ports)))
        return code
    finally:
        lines.close()
        run.restore_signals(previous)


def logs_project(run_dir: Path, names: Sequence[str], lines: int, follow: bool) -> Optional[int]:
    """`logs [NAME...]` in a project: the last ``lines`` of each service (or NAME...), each
    line after its ``name |`` prefix; ``follow``: then every new line, interleaved. None when
    there is no project here or NAME... are not its services."""
    from ..core.runfiles import RunDir

    project = _project(names)
    if project is None:
        return None
    return _logs_prefixed(RunDir(run_dir), list(names) or list(project.names()), lines, follow)


def _logs_prefixed(where: RunDir, chosen: Sequence[str], lines: int, follow: bool) -> int:
    """The logs of ``chosen`` (a project's services, or several instances): the last ``lines``
    of each, each line after its ``name |`` prefix; ``follow``: then every new line, interleaved."""
    from ..core.logs import tail
    from ..project import run

    width = max(len(n) for n in chosen)
    if not follow:
        for index, name in enumerate(chosen):
            for line in tail(where.log_file(name), lines):
                render.say(render.service_line(name, width, line, index))
        return 0
    reader = run.LogLines(where, chosen, lines)
    try:
        while True:
            for name, line in reader.within(3600.0):
                render.say(render.service_line(name, width, line, chosen.index(name), clock=True))
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()


def forget(run_dir: Path, name: str) -> int:
    """Drop what is remembered of the stopped instance NAME: its saved spec (for `restart`)
    and the files a failed run of it left (a fatal or stale record)."""
    from ..base.errors import PortctlError
    from ..core.runfiles import RunDir
    from ..core.status import LIVE_STATES, collect as instance_status

    where = RunDir(run_dir)
    rows = [row for row in instance_status(where) if row.record and row.record.spec.name == name]
    live = [row for row in rows if row.state in LIVE_STATES]
    if live:
        raise PortctlError(*messages.forget_live(name, live[0].port))
    for row in rows:
        where.remove(row.port)
    ports = set(where.forget_specs(name)) | {row.port for row in rows}
    render.say(messages.forgotten(name, sorted(ports)))
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
    import time

    _check_writable(run_dir.path)
    began = time.monotonic()
    if not spec.detached:
        from ..core.supervisor import Supervisor, run_as_process

        def ready(record: Record) -> None:
            assert record.child is not None
            _ready(record.spec.name, record.spec.host, record.spec.port, time.monotonic() - began,
                   messages.ready_details(record.supervisor.pid, record.child.pid))

        return run_as_process(Supervisor(spec, run_dir, force=force, notify=render.say, warn=render.warn,
                                         on_ready=ready), exiting=exiting)
    from ..core.daemon import launch

    try:
        with render.waiting(messages.waiting_for([spec.name], None if spec.dynamic else spec.port)):
            outcome = launch(spec, run_dir, force)
    except KeyboardInterrupt:  # only the wait is interrupted: the instance goes on
        render.warn(messages.detached_interrupted(spec.name))
        return 130
    for line in outcome.warnings:
        render.warn(line)
    if outcome.code == 0:
        name = outcome.name or spec.name
        _ready(name, spec.host, outcome.port or spec.port, time.monotonic() - began,
               messages.ready_details(outcome.pid, outcome.child_pid, name=name, log=outcome.log,
                                      run_dir=str(run_dir.path)))
        return 0
    render.error(outcome.message, outcome.hint)
    if outcome.log:  # set only once a child ran: never an earlier run's or a race winner's log
        from pathlib import Path

        from ..core.logs import tail

        render.log_tail(outcome.log, tail(Path(outcome.log), 20))
    return outcome.code


def _ready(name: str, host: str, port: int, elapsed_s: float, details: Sequence[str]) -> None:
    """The ready line (the URL on one line), the LAN URL for a wildcard host, the details."""
    from ..core.ports import instance_url, lan_url

    lan = lan_url(host, port)
    render.ready(messages.ready_at(name, instance_url(host, port), elapsed_s),
                 [messages.lan_url(lan)] if lan else [], details)


def _check_writable(path: Path) -> None:
    """`start` writes its files in the run dir: a missing, non-directory or read-only one is
    bad input (exit 2), said before anything is launched."""
    import os

    from ..base.atomic import create_beside

    why = "does not exist" if not path.exists() else "is not a directory" if not path.is_dir() else ""
    if not why:
        try:
            fd, probe = create_beside(path / ".portctl-probe")
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


def logs(run_dir: Path, names: Sequence[str], port: Optional[int], lines: int, follow: bool) -> int:
    """`logs`: the instance on PORT (or NAME), a project's services, else the instances NAME...
    (default: all with a log): one log as it is, several each line after its name."""
    from ..core.logs import follow as follow_log, log_names, log_path, tail
    from ..core.runfiles import RunDir

    where = RunDir(run_dir)
    if port is None:
        code = logs_project(run_dir, names, lines, follow)
        if code is not None:
            return code
        chosen = log_names(where, names)
        if len(chosen) > 1:
            return _logs_prefixed(where, chosen, lines, follow)
        path = where.log_file(chosen[0])
    else:
        path = log_path(where, names[0] if names else None, port)
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


def events(run_dir: Path, follow: bool, lines: int, as_json: bool = False) -> int:
    """The last ``lines`` events (and, with ``follow``, each new one): a human line each,
    or the JSON lines as they are recorded (``as_json``); damaged lines are skipped."""
    import json

    from ..core.events import events_file
    from ..core.logs import follow as follow_log, tail
    from ..core.runfiles import RunDir

    path = events_file(RunDir(run_dir).path)
    try:
        for line in (follow_log(path, lines) if follow else tail(path, lines)):
            if as_json:
                render.say(line)
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                render.event(event)
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
