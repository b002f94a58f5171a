"""The command line: each command parses, makes one library call, and renders.

Library modules are imported inside the commands, so ``portctl who`` does not pay for
the supervisor and ``--version`` pays for nothing but click.
"""
from __future__ import annotations

import copy
import os
import traceback
from pathlib import Path
from typing import Any, Optional

import click

from . import __version__, output
from .errors import BadInput, PortctlError


class _Port(click.IntRange):
    """1-65535 in ASCII digits (Python's int() would take "٣" for 3)."""

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, str) and not value.isascii():
            self.fail(f"{value!r} is not a port number (ASCII digits, 1 to 65535)", param, ctx)
        return super().convert(value, param, ctx)


PORT = _Port(1, 65535)


class Seconds(click.ParamType):
    """A finite number of seconds within the bounds ``spec.SECONDS_MIN`` sets for ``field``."""

    name = "SECONDS"

    def __init__(self, field: str) -> None:
        self.field = field

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> float:
        from .spec import seconds_problem

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        problem = seconds_problem(self.field, number)
        if problem:
            self.fail(f"{value!r} {problem}", param, ctx)
        return number


SECONDS = Seconds("grace_s")
# True once main() runs: the process is portctl's own. Called in-process (CliRunner), a
# foreground supervisor hands the caller's signal dispositions back when it returns.
_OWN_PROCESS = False


class PortOrAuto(click.ParamType):
    """A port number, or ``auto`` (returned as 0) for any free port."""

    name = "PORT|auto"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> int:
        if isinstance(value, int) or str(value).strip().lower() != "auto":
            return int(PORT.convert(value, param, ctx))
        return 0


class PortRange(click.ParamType):
    name = "LOW-HIGH"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        from .ports import parse_range

        try:
            return parse_range(str(value))
        except ValueError:
            self.fail(output.bad_range(str(value))[0], param, ctx)


class _StartCommand(click.Command):
    """`start` whose server command came without `--` (``start --port 8001 uvicorn app:app
    --port {port}``): click would complain about the command's own options; say where the
    command goes instead, with the line to type."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["portctl.dashes"] = "--" in args  # words after -- are a command, never services
        try:
            return super().parse_args(ctx, list(args))
        except click.UsageError:
            if "--" in args:
                raise
            before, command = _split_at_command(self, list(args))
            if not command:
                raise
            raise click.UsageError(output.forgotten_dashes(before, command), ctx) from None


def _split_at_command(command: click.Command, args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` split where the first non-option word begins (portctl's options, the server
    command); ([], []) when portctl's own options do not parse."""
    ctx = click.Context(command, allow_interspersed_args=False, resilient_parsing=True)
    try:
        opts, _, _ = command.make_parser(ctx).parse_args(list(args))
    except click.UsageError:
        return [], []
    words = opts.get("command")  # the COMMAND argument takes every word from the first on
    rest = [str(w) for w in words] if isinstance(words, (list, tuple)) else []
    return args[:len(args) - len(rest)], rest


class _Group(click.Group):
    """Turns library errors into one line on stderr and their documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except PortctlError as exc:
            if ctx.params.get("verbose"):
                traceback.print_exc()
            output.error(exc.message, exc.hint)
            ctx.exit(exc.exit_code)
        except Exception as exc:  # a bug of ours: still one line, the traceback with -v
            if ctx.params.get("verbose"):
                traceback.print_exc()
            output.error(*output.internal_error(exc))
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portctl")
@click.option("--run-dir", type=click.Path(path_type=Path), envvar="PORTCTL_RUN_DIR",
              default=None, show_default="the nearest ancestor with .portctl/ or a project file, else here",
              help="Where pid files, records and locks live.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, run_dir: Optional[Path], verbose: bool) -> None:
    """Run a local server under supervision and own its port."""
    if run_dir is None:
        from .runfiles import find_run_dir

        run_dir = find_run_dir()
    ctx.obj = run_dir


def _run_dir() -> Any:
    from .runfiles import RunDir

    return RunDir(click.get_current_context().obj)


@cli.command(cls=_StartCommand)
@click.option("--port", type=PortOrAuto(), default=8000, show_default=True,
              help="Port number, or `auto` for any free port.")
@click.option("--port-range", type=PortRange(), default=None,
              help="Fall back to the first free port in LOW-HIGH, then to any free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--force", is_flag=True, help="Free the port from whatever holds it (policy applies).")
@click.option("--grace", type=SECONDS, default=5.0, show_default=True, help="Seconds between TERM and KILL.")
@click.option("--ready-timeout", type=Seconds("ready_timeout_s"), default=30.0, show_default=True)
@click.option("--name", default="", help="Instance name: 1-64 of A-Z a-z 0-9 . _ -, no leading . "
              "(default: derived from the command).")
@click.option("--cwd", type=click.Path(exists=True, file_okay=False, resolve_path=True), default=None,
              help="The child's working directory [default: where start runs].")
@click.option("-d", "--detach", is_flag=True, help="Run in the background; return once it serves.")
@click.option("--restart", type=click.Choice(["no", "on-failure", "always"]), default=None,
              help="Restart policy [default: no in the foreground, on-failure with -d].")
@click.option("--health", default="", metavar="PATH|URL",
              help="Ready and alive means HTTP 2xx here (e.g. /health); default: TCP accept.")
@click.option("--health-interval", type=Seconds("health_interval_s"), default=10.0, show_default=True)
@click.option("--health-timeout", type=Seconds("health_timeout_s"), default=1.0, show_default=True)
@click.option("--health-failures", type=click.IntRange(min=1), default=3, show_default=True,
              help="Consecutive failed probes that make the child unhealthy.")
@click.option("--backoff-initial", type=Seconds("initial_s"), default=1.0, show_default=True)
@click.option("--backoff-max", type=Seconds("max_s"), default=30.0, show_default=True)
@click.option("--backoff-reset", type=Seconds("reset_after_s"), default=30.0, show_default=True,
              help="Healthy uptime after which the backoff starts over.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=10, show_default=True,
              help="Restarts allowed within --restart-window before the instance is fatal.")
@click.option("--restart-window", type=Seconds("window_s"), default=60.0, show_default=True)
@click.option("--log-max-bytes", type=click.IntRange(min=1024), default=10 * 1024 * 1024, show_default=True)
@click.option("--log-backups", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--keep-going", is_flag=True, help="In a project: leave the services that started "
              "running when another fails.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def start(port: int, port_range: Optional[tuple[int, int]], force: bool, command: tuple[str, ...],
          keep_going: bool, **options: Any) -> None:
    """Start CMD (after --) on PORT and supervise it; no CMD runs the demo app. In a project
    (portctl.toml, [tool.portctl] or a Procfile here or above): start NAME... or every service,
    in dependency order."""
    from .backoff import BackoffPolicy
    from .spec import DEFAULT_PORT, ServerSpec, default_restart, recorded

    if not click.get_current_context().meta.get("portctl.dashes") and \
            not any(_given(key) for key in options if key != "detach") and not _given("port") \
            and not _given("port_range"):
        from .project import run

        project = run.project_for(command, commands=True)
        if project is not None:
            _start_project(project, command, options["detach"], force, keep_going)
            return
    fields = _spec_fields(options)
    fields["backoff"] = BackoffPolicy(**fields["backoff"])
    if fields["restart"] is None:
        fields["restart"] = default_restart(fields["detached"])
    fields["cwd"] = fields["cwd"] or os.getcwd()
    # --port-range alone, like --port auto, starts inside the range; --port P prefers P
    auto = port == 0 or (port_range is not None and not _given("port"))
    if auto:
        port = port_range[0] if port_range else DEFAULT_PORT
    spec = ServerSpec(port=port, port_range=port_range, auto_port=auto, command=command, **fields)
    _launch(recorded(spec), force)


def _start_project(project: Any, names: tuple[str, ...], detach: bool, force: bool, keep_going: bool) -> None:
    from .project import run

    run_dir = _run_dir()
    _check_writable(run_dir.path)
    if not detach:
        raise SystemExit(run.foreground(project, run_dir, names, force=force, keep_going=keep_going))
    result = run.start(project, run_dir, names, force=force, keep_going=keep_going)
    raise SystemExit(run.report(result, run_dir, keep_going=keep_going))


_SPEC_FIELDS = {"grace": "grace_s", "ready_timeout": "ready_timeout_s", "detach": "detached",
                "health_interval": "health_interval_s", "health_timeout": "health_timeout_s"}
_BACKOFF_FIELDS = {"backoff_initial": "initial_s", "backoff_max": "max_s", "backoff_reset": "reset_after_s",
                   "max_restarts": "max_restarts", "restart_window": "window_s"}


def _spec_fields(options: dict[str, Any]) -> dict[str, Any]:
    """start's options as ServerSpec fields; the backoff ones as a dict under ``backoff``."""
    fields: dict[str, Any] = {"backoff": {}}
    for key, value in options.items():
        if key in _BACKOFF_FIELDS:
            fields["backoff"][_BACKOFF_FIELDS[key]] = value
        else:
            fields[_SPEC_FIELDS.get(key, key)] = value
    return fields


def _given(name: str) -> bool:
    """Whether the option ``name`` was on the command line (not a default)."""
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) is ParameterSource.COMMANDLINE


def _launch(spec: Any, force: bool) -> None:
    """Run in the foreground (exit with the supervisor's code) or detached (report and return)."""
    run_dir = _run_dir()
    _check_writable(run_dir.path)
    if not spec.detached:
        from .supervisor import Supervisor, run_as_process

        raise SystemExit(run_as_process(Supervisor(spec, run_dir, force=force), exiting=_OWN_PROCESS))
    from .daemon import launch

    try:
        outcome = launch(spec, run_dir, force)
    except KeyboardInterrupt:  # only the wait is interrupted: the instance goes on
        output.warn(output.detached_interrupted(spec.name))
        raise SystemExit(130) from None
    for line in outcome.warnings:
        output.warn(line)
    if outcome.code == 0:
        output.say(output.detached_ready(outcome.url, outcome.pid, outcome.child_pid, outcome.log))
        return
    output.error(outcome.message, outcome.hint)
    if outcome.log:  # set only once a child ran: never an earlier run's or a race winner's log
        from .logs import tail

        output.log_tail(outcome.log, tail(Path(outcome.log), 20))
    raise SystemExit(outcome.code)


class _CommandAfterDashes(click.Command):
    """The words after ``--`` are the child's command, apart from the NAME arguments:
    `portctl restart api -- uvicorn app:app --port {port}`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["portctl.command"] = tuple(args[cut + 1:])
            args = args[:cut]
        return super().parse_args(ctx, args)


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
        raise BadInput(*output.run_dir_unusable(path, why))


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--port", type=PORT, default=None, help="The instance on this port.")
@click.option("--grace", type=SECONDS, default=None, help="Seconds between TERM and KILL (default: as started).")
def stop(names: tuple[str, ...], port: Optional[int], grace: Optional[float]) -> None:
    """Gracefully stop the instances NAME... and the one on PORT; with neither, the only
    instance of the run dir (several: they are listed, exit 2). Not running is success."""
    from . import commands

    raise SystemExit(commands.stop(click.get_current_context().obj, names, port, grace))


@cli.command(cls=_CommandAfterDashes)
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--port", type=PORT, default=None, help="The instance on this port (nothing recorded there "
              "and a command after --: start it there).")
@click.option("--update-env", is_flag=True, help="Use this shell's environment and PATH, not the recorded ones.")
def restart(names: tuple[str, ...], port: Optional[int], update_env: bool, force: bool, **options: Any) -> None:
    """Stop the instances NAME... and the one on PORT (with neither, the only one of the run
    dir), then start each again with its recorded command, executable, environment, working
    directory and options. Options given here, and a command after --, replace the recorded
    ones; a command with nothing recorded starts it."""
    from . import instances
    from .targets import restart_plan

    ctx = click.get_current_context()
    if port is None and not ctx.meta.get("portctl.command"):
        from .project import run

        project = run.project_for(names)
        if project is not None:
            if any(_given(key) for key in options if key != "detach") or update_env:
                raise BadInput(*output.project_options(project.file))
            run_dir = _run_dir()
            result = run.restart(project, run_dir, names, force=force)
            raise SystemExit(run.report(result, run_dir, keep_going=False))
    changes = _spec_fields({key: value for key, value in options.items() if _given(key)})
    if not changes["backoff"]:
        del changes["backoff"]
    command = ctx.meta.get("portctl.command", ())
    if command:
        changes["command"] = command
    run_dir = _run_dir()
    for stop_port, spec in restart_plan(run_dir, names, port, changes, shell_env=update_env):
        if stop_port is not None:
            instances.stop(run_dir, stop_port, notify=output.warn)
        _launch(spec, force)


def _restart_options() -> list[click.Parameter]:
    """start's options, for restart: without defaults, since the recorded values are kept."""
    shared = []
    for param in start.params:
        if param.name in ("port", "command", "keep_going"):
            continue
        param = copy.copy(param)
        if isinstance(param, click.Option):
            param.show_default = False
        shared.append(param)
    return shared


restart.params.extend(_restart_options())


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--port", type=PORT, default=None, help="Only this port (exit 3 if not running).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def status(names: tuple[str, ...], port: Optional[int], as_json: bool) -> None:
    """Every instance known in the run dir (or only NAME... and PORT: exit 3 if one is not running)."""
    from . import commands

    raise SystemExit(commands.status(click.get_current_context().obj, port, as_json, names))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
def clean(dry_run: bool) -> None:
    """Remove stale pid files, records and locks; stop verified orphans of our instances."""
    from . import instances

    actions = instances.clean(_run_dir(), dry_run)
    for action, target in actions:
        output.say(output.clean_action(action, target, dry_run))
    if not actions:
        output.say(output.clean_nothing())


@cli.command()
@click.argument("name")
def forget(name: str) -> None:
    """Drop what is remembered of the stopped instance NAME: its saved spec (for `restart`)
    and the files a failed run of it left (a fatal or stale record)."""
    from .status import LIVE_STATES, status

    run_dir = _run_dir()
    rows = [row for row in status(run_dir) if row.record and row.record.spec.name == name]
    live = [row for row in rows if row.state in LIVE_STATES]
    if live:
        raise PortctlError(*output.forget_live(name, live[0].port))
    for row in rows:
        run_dir.remove(row.port)
    ports = set(run_dir.forget_specs(name)) | {row.port for row in rows}
    output.say(output.forgotten(name, sorted(ports)))


@cli.command()
@click.argument("port", type=PORT)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def who(port: int, as_json: bool) -> None:
    """Which processes listen on PORT (any address, IPv4 and IPv6)."""
    from . import commands

    raise SystemExit(commands.who(port, as_json, click.get_current_context().obj))


@cli.command()
@click.argument("port", type=PORT)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--grace", type=SECONDS, default=5.0, show_default=True)
def free(port: int, host: str, grace: float) -> None:
    """Stop whatever holds PORT (whole process trees), subject to the policy."""
    from . import instances

    if not instances.free(_run_dir(), port, host, grace, notify=output.say):
        output.say(output.nothing_holds(port))


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--port", type=PORT, default=None, help="The instance on this port instead of NAME.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (survives rotation).")
def logs(names: tuple[str, ...], port: Optional[int], lines: int, follow: bool) -> None:
    """Print (and follow) the log of a detached instance; in a project, of its services
    (NAME... or all), each line after its name."""
    from . import instances
    from .logs import follow as follow_log, tail

    if port is None:
        from .project import run

        project = run.project_for(names)
        if project is not None:
            run.show_logs(project, _run_dir(), names, lines, follow)
            return
    if len(names) > 1:
        raise BadInput(*output.one_log_only())
    path = instances.log_path(_run_dir(), names[0] if names else None, port)
    if not follow:
        for line in tail(path, lines):
            output.say(line)
        return
    try:
        for line in follow_log(path, lines):
            output.say(line)
    except KeyboardInterrupt:
        pass


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True)
def events(follow: bool, lines: int) -> None:
    """Lifecycle events of the run dir's instances, as JSON lines."""
    from .events import events_file
    from .logs import follow as follow_log, tail

    path = events_file(_run_dir().path)
    try:
        for line in (follow_log(path, lines) if follow else tail(path, lines)):
            output.say(line)
    except KeyboardInterrupt:
        pass


@cli.command(name="port")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait until NAME is ready (exit 7 after --timeout).")
@click.option("--timeout", type=Seconds("ready_timeout_s"), default=30.0, show_default=True,
              help="Seconds --wait waits.")
def port_of(name: str, wait: bool, timeout: float) -> None:
    """Print the port of the running instance NAME (for scripts: `$(portctl port api)`)."""
    from . import commands

    raise SystemExit(commands.port_of(click.get_current_context().obj, name, timeout if wait else None))


@cli.command()
@click.argument("name")
def url(name: str) -> None:
    """Print the URL of the running instance NAME."""
    from . import commands

    raise SystemExit(commands.url(click.get_current_context().obj, name))


@cli.command(name="find-port")
@click.option("--preferred", type=PORT, default=None, help="Try this port first.")
@click.option("--range", "port_range", type=PortRange(), default=None, help="Then LOW-HIGH in order.")
@click.option("--host", default="127.0.0.1", show_default=True)
def find_port(preferred: Optional[int], port_range: Optional[tuple[int, int]], host: str) -> None:
    """Print a free port: the preferred one, else the first free in the range, else any."""
    from .ports import find_free_port

    output.say(str(find_free_port(preferred, port_range, host)))


@cli.group()
def config() -> None:
    """Check or show the project file (portctl.toml, [tool.portctl] in pyproject.toml, or a
    Procfile) found here or above."""


@config.command(name="check")
def config_check() -> None:
    """Validate the project file: one summary line, or the first problem with its line (exit 2)."""
    from .project.config import require_project
    from .project.show import summary

    output.say(summary(require_project(Path.cwd())))


@config.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def config_show(as_json: bool) -> None:
    """Print the resolved project: services, ports, environment (secrets masked), start order."""
    from .project.config import require_project
    from .project.show import describe, lines

    project = require_project(Path.cwd())
    if as_json:
        output.emit_json(describe(project))
        return
    for line in lines(project):
        output.say(line)


def main() -> None:
    """Console entry point: this process is portctl's own, and ends when the command does."""
    global _OWN_PROCESS
    _OWN_PROCESS = True
    output.log_to()
    cli(prog_name="portctl")
