"""The command line's declarations: each command's options, arguments and help, and one
call into ``commands`` (the application layer: parsed values in, an exit code out).

``commands`` imports the library inside each command, so ``portctl who`` does not pay for
the supervisor and ``--version`` pays for nothing but click.
"""
from __future__ import annotations

import copy
import re
import traceback
from pathlib import Path
from typing import Any, Optional

import click

from . import commands, complete, render
from .. import __version__
from ..base import defaults, messages


class _UsageLine(click.UsageError):
    """A usage error shown as portctl shows its own errors: ``portctl: error: WHAT (HINT)``,
    one line on stderr, exit 2 (click's show() prints the usage, a "Try" line and "Error:")."""

    def __init__(self, message: str, hint: str, ctx: Optional[click.Context] = None) -> None:
        super().__init__(message, ctx)
        self.hint = hint

    def show(self, file: Any = None) -> None:
        render.error(self.message, self.hint)


class _Port(click.ParamType):
    """1-65535 in ASCII digits (Python's int() would take "٣" for 3), read as click reads an
    integer. Shown as PORT (its help needs no `[1<=x<=65535]`); a bad one is an invalid port,
    in one line (with "or auto" where ``auto`` is taken)."""

    name = "port"
    _RANGE = click.IntRange(1, 65535)

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> int:
        if not (isinstance(value, str) and not value.isascii()):
            try:
                return int(self._RANGE.convert(value, param, ctx))
            except click.BadParameter:
                pass
        auto = param is not None and isinstance(param.type, PortOrAuto)
        raise _UsageLine(*messages.usage_bad_port(value, auto), ctx)


PORT = _Port()


class Seconds(click.ParamType):
    """A finite number of seconds within the bounds ``spec.SECONDS_MIN`` sets for ``field``."""

    name = "SECONDS"

    def __init__(self, field: str) -> None:
        self.field = field

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> float:
        from ..core.spec import seconds_problem

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

    name = "port"

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
        from ..core.ports import parse_range

        try:
            return parse_range(str(value))
        except ValueError:
            self.fail(messages.bad_range(str(value))[0], param, ctx)


class _Command(click.Command):
    """A command whose parse errors know their command (click's parser raises some without
    one), so that the error line names the right `portctl CMD --help`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise


class _StartCommand(_Command):
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
            raise _UsageLine(messages.forgotten_dashes(before, command), "", ctx) from None


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


def _usage_line(exc: click.UsageError) -> click.UsageError:
    """Any of click's usage errors, worded in portctl's one line (help asked for by giving no
    arguments stays help)."""
    if isinstance(exc, (_UsageLine, getattr(click.exceptions, "NoArgsIsHelpError", ()))):
        return exc
    return _UsageLine(*_usage_words(exc), exc.ctx)


def _usage_words(exc: click.UsageError) -> tuple[str, str]:
    """(what, hint) for one of click's usage errors, from its structure rather than its English
    where click gives the structure."""
    ctx = exc.ctx
    help_line = f"{ctx.command_path} --help" if ctx is not None else "portctl --help"
    if isinstance(exc, click.NoSuchOption):
        return messages.usage_no_such_option(exc.option_name, exc.possibilities or (), help_line)
    no_such_command = getattr(click.exceptions, "NoSuchCommand", ())  # click 8.4+
    if isinstance(exc, no_such_command):
        return messages.usage_no_such_command(exc.command_name, exc.possibilities or (), help_line)
    if isinstance(exc, click.BadOptionUsage):
        option = next((p for p in ctx.command.params if exc.option_name in getattr(p, "opts", ())), None) \
            if ctx is not None else None
        if isinstance(option, click.Option) and option.is_flag:
            return messages.usage_takes_no_value(exc.option_name, help_line)
        return messages.usage_needs_value(exc.option_name, help_line)
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return messages.usage_missing(f"{exc.param.param_type_name} {_param_words(exc.param)}", help_line)
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        problem = _sentence(exc.message).replace("not a valid integer range", "not a whole number")
        return messages.usage_bad_value(_param_words(exc.param), problem, help_line)
    extra = re.match(r"Got unexpected extra arguments? \((.*)\)\Z", exc.message)
    if extra:
        return messages.usage_extra_arguments(extra.group(1).split(" "), help_line)
    return messages.usage_other(_sentence(exc.message), help_line)


def _param_words(param: click.Parameter) -> str:
    """``--port`` for an option (its long name), ``PORT`` for an argument."""
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


def _sentence(text: str) -> str:
    """click's sentence as part of portctl's line: ``Missing command.`` -> ``missing command``."""
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text  # not NAME's N


# `portctl --help` ends with these. The exit codes are those of base.errors and of the README's
# table (tests/test_face_help.py checks that the three agree).
EPILOG = """\b
Exit codes:
  0    success (stopping what is already stopped included)
  1    other failure, with a one-line reason
  2    bad usage or bad input: an invalid port, an unknown option
  3    status: the instance asked about is not running
  4    the port is in use by another process (start without --force)
  5    refused by the production policy
  6    already running: a live portctl holds the port's lock or the name
  7    not ready in time: no connection accepted (or --health failed)
  8    permission denied signalling a process
  130  start -d interrupted by Ctrl+C while it waited (the instance goes on)
  A foreground start whose child exits on its own: the child's code.

\b
Environment:
  PORTCTL_RUN_DIR           the run dir, as --run-dir gives it
  PORTCTL_ENV, ENVIRONMENT  production: never stop a process portctl did not
                            start (PORTCTL_ENV wins)
  NO_COLOR                  plain text, even on a terminal
  TERM=dumb                 plain text, as NO_COLOR
  COLUMNS                   the width status fits (else the terminal's)
  PORTCTL_PORTABLE=1        Linux: read processes and sockets with psutil, as
                            on macOS (to diagnose portctl itself)
  _PORTCTL_COMPLETE         shell completion (README: Shell completion)
"""


class _Group(_Command, click.Group):
    """Turns library errors into one line on stderr and their documented exit code, and usage
    errors (click's parse, at any depth) into the same one line, exit 2."""

    command_class = _Command
    group_class = type  # `config` is one of these too

    def make_context(self, info_name: Optional[str], args: list[str], parent: Optional[click.Context] = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _usage_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage_line(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # ours or a bug (then "internal error"): one line, the traceback with -v
            if ctx.params.get("verbose"):
                traceback.print_exc()
            ctx.exit(render.report(exc))


def _complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Tab for NAME: the run dir's instances and the project's services."""
    return complete.names(_completion_run_dir(ctx), incomplete)


def _complete_instances(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return complete.names(_completion_run_dir(ctx), incomplete, services=False)


def _complete_services(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    if ctx.meta.get("portctl.dashes"):  # `start ... -- CMD`: the shell's own words
        return []
    return complete.names(None, incomplete, instances=False)


def _complete_ports(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Tab for PORT: the ports of the run dir's instances."""
    return complete.ports(_completion_run_dir(ctx), incomplete)


def _complete_start_port(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Tab for start's PORT: `auto`, then the ports the run dir's instances had."""
    auto = ["auto"] if "auto".startswith(incomplete) else []
    return auto + complete.ports(_completion_run_dir(ctx), incomplete)


def _completion_run_dir(ctx: click.Context) -> Optional[Path]:
    """``--run-dir`` or PORTCTL_RUN_DIR as parsed so far (completion runs no callback)."""
    value = ctx.find_root().params.get("run_dir")
    return Path(value) if value else None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="portctl")
@click.option("--run-dir", type=click.Path(path_type=Path), envvar="PORTCTL_RUN_DIR",
              default=None, show_default="the nearest ancestor with .portctl/ or a project file, else here",
              help="Where pid files, records and locks live.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, run_dir: Optional[Path], verbose: bool) -> None:
    """Run a local server under supervision and own its port."""
    if run_dir is None:
        from ..core.runfiles import find_run_dir

        run_dir = find_run_dir()
    ctx.obj = run_dir


def _run_dir() -> Path:
    """The run dir the group resolved (``--run-dir``, PORTCTL_RUN_DIR or found)."""
    return Path(click.get_current_context().obj)


@cli.command(cls=_StartCommand, short_help="Start a server on a port and supervise it.")
@click.option("-p", "--port", type=PortOrAuto(), default=defaults.PORT, show_default=True,
              shell_complete=_complete_start_port, help="Port number, or `auto` for any free port.")
@click.option("--port-range", type=PortRange(), default=None,
              help="Fall back to the first free port in LOW-HIGH, then to any free port.")
@click.option("--host", default=defaults.HOST, show_default=True, metavar="HOST",
              help="The address the child listens on ({host} in CMD, HOST in its environment); "
              "0.0.0.0 for every interface.")
@click.option("--force", is_flag=True, help="Free the port from whatever holds it (policy applies).")
@click.option("--grace", type=SECONDS, default=defaults.GRACE_S, show_default=True, help="Seconds between TERM and KILL.")
@click.option("--ready-timeout", type=Seconds("ready_timeout_s"), default=defaults.READY_TIMEOUT_S,
              show_default=True, help="Seconds to wait for the child to accept connections (and pass "
              "--health), else exit 7.")
@click.option("--name", default="", metavar="NAME", help="Instance name: 1-64 of A-Z a-z 0-9 . _ -, no leading . "
              "(default: derived from the command).")
@click.option("--cwd", type=click.Path(exists=True, file_okay=False, resolve_path=True), default=None,
              help="The child's working directory [default: where start runs].")
@click.option("-d", "--detach", is_flag=True, help="Run in the background; return once it serves.")
@click.option("--restart", type=click.Choice(["no", "on-failure", "always"]), default=None,
              help="Restart policy [default: no in the foreground, on-failure with -d].")
@click.option("--health", default="", metavar="PATH|URL",
              help="Ready and alive means HTTP 2xx here (e.g. /health); default: TCP accept.")
@click.option("--health-interval", type=Seconds("health_interval_s"), default=defaults.HEALTH_INTERVAL_S,
              show_default=True, help="Seconds between health probes while it runs (with --health).")
@click.option("--health-timeout", type=Seconds("health_timeout_s"), default=defaults.HEALTH_TIMEOUT_S,
              show_default=True, help="Seconds one health probe may take.")
@click.option("--health-failures", type=click.IntRange(min=1), default=defaults.HEALTH_FAILURES, show_default=True,
              metavar="N",
              help="Consecutive failed probes that make the child unhealthy.")
@click.option("--backoff-initial", type=Seconds("initial_s"), default=1.0, show_default=True,
              help="Seconds before a second restart in a row (the first is at once), doubling after.")
@click.option("--backoff-max", type=Seconds("max_s"), default=30.0, show_default=True,
              help="The longest wait between restarts, in seconds.")
@click.option("--backoff-reset", type=Seconds("reset_after_s"), default=30.0, show_default=True,
              help="Healthy uptime after which the backoff starts over.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=10, show_default=True, metavar="N",
              help="Restarts allowed within --restart-window before the instance is fatal.")
@click.option("--restart-window", type=Seconds("window_s"), default=60.0, show_default=True,
              help="Seconds over which --max-restarts counts.")
@click.option("--log-max-bytes", type=click.IntRange(min=1024), default=defaults.LOG_MAX_BYTES, show_default=True,
              metavar="BYTES",
              help="Rotate a detached instance's log before it passes this size.")
@click.option("--log-backups", type=click.IntRange(min=1), default=defaults.LOG_BACKUPS, show_default=True, metavar="N",
              help="Rotated logs to keep (NAME.log.1 is the newest).")
@click.option("--timestamps/--no-timestamps", default=False,
              help="Prefix each line of the child's output with its local time (ISO 8601, ms).")
@click.option("--keep-going", is_flag=True, help="In a project: leave the services that started "
              "running when another fails.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[NAME... | -- CMD...]",
                shell_complete=_complete_services)
def start(port: int, port_range: Optional[tuple[int, int]], force: bool, command: tuple[str, ...],
          keep_going: bool, **options: Any) -> None:
    """Start CMD (after --) on PORT and supervise it; no CMD runs the demo app. In a project
    (portctl.toml, [tool.portctl] or a Procfile here or above): start NAME... or every service,
    in dependency order.

    In CMD, {port} and {host} become the port and the host (with --port auto, the port found
    free); the child also gets PORT and HOST in its environment. Without CMD, portctl runs its
    demo app (it answers GET /health), so a first try needs nothing else.

    \b
    Examples:
      portctl start
      portctl start -p 8001 -- uvicorn app:app --port {port}
      portctl start -d -p auto -- python -m http.server {port} --bind {host}
      portctl start -d api        (a project's service api)
    """
    if not click.get_current_context().meta.get("portctl.dashes") and not _given("port") \
            and not _given("port_range") and not any(_given(key) for key in options if key != "detach"):
        code = commands.start_project(_run_dir(), command, options["detach"], force, keep_going)
        if code is not None:
            raise SystemExit(code)
    raise SystemExit(commands.start(_run_dir(), port, port_range, force, command, port_given=_given("port"),
                                    exiting=_OWN_PROCESS, **options))


def _given(name: str) -> bool:
    """Whether the option ``name`` was on the command line (not a default)."""
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) is ParameterSource.COMMANDLINE


class _CommandAfterDashes(_Command):
    """The words after ``--`` are the child's command, apart from the NAME arguments:
    `portctl restart api -- uvicorn app:app --port {port}`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["portctl.command"] = tuple(args[cut + 1:])
            args = args[:cut]
        return super().parse_args(ctx, args)


@cli.command(short_help="Stop instances gracefully (not running is success).")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=_complete_names)
@click.option("-p", "--port", type=PORT, default=None, shell_complete=_complete_ports,
              help="The instance on this port.")
@click.option("--grace", type=SECONDS, default=None, help="Seconds between TERM and KILL (default: as started).")
def stop(names: tuple[str, ...], port: Optional[int], grace: Optional[float]) -> None:
    """Gracefully stop the instances NAME... and the one on PORT; with neither, the only
    instance of the run dir (several: they are listed, exit 2). Not running is success."""
    raise SystemExit(commands.stop(run_dir=_run_dir(), names=names, port=port, grace=grace))


@cli.command(cls=_CommandAfterDashes, short_help="Stop instances, then start them again as recorded.")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=_complete_names)
@click.option("-p", "--port", type=PORT, default=None, shell_complete=_complete_ports,
              help="The instance on this port (nothing recorded there "
              "and a command after --: start it there).")
@click.option("--update-env", is_flag=True, help="Use this shell's environment and PATH, not the recorded ones.")
def restart(names: tuple[str, ...], port: Optional[int], update_env: bool, force: bool, **options: Any) -> None:
    """Stop the instances NAME... and the one on PORT (with neither, the only one of the run
    dir), then start each again with its recorded command, executable, environment, working
    directory and options. Options given here, and a command after --, replace the recorded
    ones; a command with nothing recorded starts it."""
    command = click.get_current_context().meta.get("portctl.command", ())
    given = {key: value for key, value in options.items() if _given(key)}
    if port is None and not command:
        code = commands.restart_project(_run_dir(), names, force,
                                        options_given=update_env or any(k != "detach" for k in given))
        if code is not None:
            raise SystemExit(code)
    raise SystemExit(commands.restart(_run_dir(), names, port, update_env, force, command, given,
                                      exiting=_OWN_PROCESS))


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


@cli.command(short_help="Show the run dir's instances: state, pids, port, health.")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=_complete_names)
@click.option("-p", "--port", type=PORT, default=None, shell_complete=_complete_ports,
              help="Only this port (exit 3 if not running).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--wide", is_flag=True, help="Every column (host, child pid, start time, last exit), nothing cut.")
def status(names: tuple[str, ...], port: Optional[int], as_json: bool, wide: bool) -> None:
    """Every instance known in the run dir (or only NAME... and PORT: exit 3 if one is not running)."""
    raise SystemExit(commands.status(run_dir=_run_dir(), names=names, port=port, as_json=as_json, wide=wide))


@cli.command(short_help="Remove stale run files and orphans; --sweep: strays.")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=_complete_services)
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option("--sweep", is_flag=True, help="Then list the strays of the project's services NAME... (default: "
              "all): your processes matching their sweep patterns, under the project root.")
@click.option("--anywhere", is_flag=True, help="--sweep: wherever the strays' working directory is.")
@click.option("--force", is_flag=True, help="--sweep: stop the strays, whole trees (policy applies).")
def clean(names: tuple[str, ...], dry_run: bool, sweep: bool, anywhere: bool, force: bool) -> None:
    """Remove stale pid files, records and locks; stop verified orphans of our instances.
    With --sweep, then list the strays of the project's services (stop them with --force)."""
    if not sweep and (names or anywhere or force):
        raise click.UsageError("NAME, --anywhere and --force go with --sweep")
    raise SystemExit(commands.clean(_run_dir(), dry_run, sweep=sweep, names=names, anywhere=anywhere,
                                    force=force, here=Path.cwd()))


@cli.command(short_help="Show which processes listen on PORT.")
@click.argument("port", type=PORT, shell_complete=_complete_ports)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def who(port: int, as_json: bool) -> None:
    """Which processes listen on PORT (any address, IPv4 and IPv6)."""
    raise SystemExit(commands.who(run_dir=_run_dir(), port=port, as_json=as_json))


@cli.command(short_help="Stop whatever holds PORT, subject to the policy.")
@click.argument("port", type=PORT, shell_complete=_complete_ports)
@click.option("--host", default=defaults.HOST, show_default=True, metavar="HOST",
              help="The address on which the port must be free afterwards.")
@click.option("--grace", type=SECONDS, default=defaults.GRACE_S, show_default=True,
              help="Seconds between TERM and KILL.")
def free(port: int, host: str, grace: float) -> None:
    """Stop whatever holds PORT (whole process trees), subject to the policy."""
    raise SystemExit(commands.free(_run_dir(), port, host, grace))


@cli.command(short_help="Print (and follow) the log of detached instances.")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=_complete_names)
@click.option("-p", "--port", type=PORT, default=None, shell_complete=_complete_ports,
              help="The instance on this port instead of NAME.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="Lines of the log to print first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (survives rotation).")
def logs(names: tuple[str, ...], port: Optional[int], lines: int, follow: bool) -> None:
    """Print (and follow) the logs of detached instances: NAME..., the one on PORT, a project's
    services, else all; several are shown each line after its name."""
    raise SystemExit(commands.logs(_run_dir(), names, port, lines, follow))


@cli.command(short_help="Forget a stopped instance: its saved spec and leftover files.")
@click.argument("name", shell_complete=_complete_instances)
def forget(name: str) -> None:
    """Drop what is remembered of the stopped instance NAME: its saved spec (for `restart`)
    and the files a failed run of it left."""
    raise SystemExit(commands.forget(_run_dir(), name))


@cli.command(short_help="Print the lifecycle events of the run dir's instances.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="Events to print first.")
@click.option("--json", "as_json", is_flag=True, help="The events as recorded, one JSON object a line.")
def events(follow: bool, lines: int, as_json: bool) -> None:
    """Lifecycle events of the run dir's instances: time, name, event, details (--json for scripts)."""
    raise SystemExit(commands.events(_run_dir(), follow, lines, as_json))


@cli.command(name="port", short_help="Print the port of the running instance NAME.")
@click.argument("name", shell_complete=_complete_names)
@click.option("--wait", is_flag=True, help="Wait until NAME is ready (exit 7 after --timeout).")
@click.option("--timeout", type=Seconds("ready_timeout_s"), default=30.0, show_default=True,
              help="Seconds --wait waits.")
def port_of(name: str, wait: bool, timeout: float) -> None:
    """Print the port of the running instance NAME (for scripts: `$(portctl port api)`)."""
    if wait:
        raise SystemExit(commands.port_of(run_dir=_run_dir(), name=name, wait=True, timeout=timeout))
    raise SystemExit(commands.port_of(run_dir=_run_dir(), name=name))  # as the fast path calls it


@cli.command(short_help="Print the URL of the running instance NAME.")
@click.argument("name", shell_complete=_complete_names)
def url(name: str) -> None:
    """Print the URL of the running instance NAME."""
    raise SystemExit(commands.url(run_dir=_run_dir(), name=name))


@cli.command(name="find-port", short_help="Print a free port (preferred, in a range, or any).")
@click.option("--preferred", type=PORT, default=None, help="Try this port first.")
@click.option("--range", "port_range", type=PortRange(), default=None, help="Then LOW-HIGH in order.")
@click.option("--host", default=defaults.HOST, show_default=True, metavar="HOST",
              help="The address the port must be free on.")
def find_port(preferred: Optional[int], port_range: Optional[tuple[int, int]], host: str) -> None:
    """Print a free port: the preferred one, else the first free in the range, else any."""
    raise SystemExit(commands.find_port(preferred, port_range, host))


@cli.group(short_help="Check or show the project file.")
def config() -> None:
    """Check or show the project file (portctl.toml, [tool.portctl] in pyproject.toml, or a
    Procfile) found here or above."""


@config.command(name="check", short_help="Validate the project file (exit 2 on a problem).")
def config_check() -> None:
    """Validate the project file: one summary line, or the first problem with its line (exit 2)."""
    raise SystemExit(commands.config_check(Path.cwd()))


@config.command(name="show", short_help="Print the resolved project (secrets masked).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def config_show(as_json: bool) -> None:
    """Print the resolved project: services, ports, environment (secrets masked), start order."""
    raise SystemExit(commands.config_show(Path.cwd(), as_json))


@cli.command(short_help="Print a Makefile fragment for the project's services.")
@click.option("--prefix", default="", help="Put before every target name (pc- gives pc-start, "
              "pc-stop-NAME, ...), so none clashes with your Makefile's own.")
def makefile(prefix: str) -> None:
    """Print a Makefile fragment for the project's services: start, stop, restart, status,
    and per service start-NAME, stop-NAME, restart-NAME, status-NAME, logs-NAME, force-clean-NAME."""
    raise SystemExit(commands.makefile(Path.cwd(), prefix))


@cli.command(short_help="Write .bat wrappers for the project's services (Windows).")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def wrappers(directory: Optional[Path]) -> None:
    """Write start-NAME.bat, stop-NAME.bat and restart-NAME.bat (a force restart) for every
    service, for Windows, into DIRECTORY (default: scripts under the project root)."""
    raise SystemExit(commands.wrappers(Path.cwd(), directory))


@cli.command(name="export", short_help="Render the project as systemd units, Compose or Kubernetes.")
@click.argument("target", type=click.Choice(["systemd", "compose", "kubernetes"]), metavar="TARGET")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=_complete_services)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write one file per unit or manifest into DIR (made if missing) instead of stdout.")
def export_cmd(target: str, names: tuple[str, ...], out_dir: Optional[Path]) -> None:
    """Render the project (or NAMEs and their dependencies) as systemd units, a Compose file or
    Kubernetes manifests. An "auto" port is fixed: see docs/deploy.md."""
    raise SystemExit(commands.export(Path.cwd(), click.get_current_context().obj, target, names, out_dir))


def main() -> None:
    """Console entry point: this process is portctl's own, and ends when the command does."""
    global _OWN_PROCESS
    _OWN_PROCESS = True
    render.log_to()
    cli(prog_name="portctl")
