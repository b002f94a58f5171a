"""The command line: each command parses, makes one library call, and renders.

Library modules are imported inside the commands, so ``portctl who`` does not pay for
the supervisor and ``--version`` pays for nothing but click.
"""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Optional

import click

from . import __version__, output
from .errors import PortctlError

PORT = click.IntRange(1, 65535)
SECONDS = click.FloatRange(min=0)


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
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PORTCTL_RUN_DIR",
              default=".", show_default="current directory", help="Where pid files, records and locks live.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, run_dir: Path, verbose: bool) -> None:
    """Run a local server under supervision and own its port."""
    ctx.obj = run_dir


def _run_dir() -> Any:
    from .runfiles import RunDir

    return RunDir(click.get_current_context().obj)


@cli.command()
@click.option("--port", type=PortOrAuto(), default=8000, show_default=True,
              help="Port number, or `auto` for any free port.")
@click.option("--port-range", type=PortRange(), default=None,
              help="Fall back to the first free port in LOW-HIGH, then to any free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--force", is_flag=True, help="Free the port from whatever holds it (policy applies).")
@click.option("--grace", type=SECONDS, default=5.0, show_default=True, help="Seconds between TERM and KILL.")
@click.option("--ready-timeout", type=SECONDS, default=30.0, show_default=True)
@click.option("--name", default="", help="Instance name (default: derived from the command).")
@click.option("-d", "--detach", is_flag=True, help="Run in the background; return once it serves.")
@click.option("--restart", type=click.Choice(["no", "on-failure", "always"]), default=None,
              help="Restart policy [default: no in the foreground, on-failure with -d].")
@click.option("--health", default="", metavar="PATH|URL",
              help="Ready and alive means HTTP 2xx here (e.g. /health); default: TCP accept.")
@click.option("--health-interval", type=SECONDS, default=10.0, show_default=True)
@click.option("--health-timeout", type=SECONDS, default=1.0, show_default=True)
@click.option("--health-failures", type=click.IntRange(min=1), default=3, show_default=True,
              help="Consecutive failed probes that make the child unhealthy.")
@click.option("--backoff-initial", type=SECONDS, default=1.0, show_default=True)
@click.option("--backoff-max", type=SECONDS, default=30.0, show_default=True)
@click.option("--backoff-reset", type=SECONDS, default=30.0, show_default=True,
              help="Healthy uptime after which the backoff starts over.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=10, show_default=True,
              help="Restarts allowed within --restart-window before the instance is fatal.")
@click.option("--restart-window", type=SECONDS, default=60.0, show_default=True)
@click.option("--log-max-bytes", type=click.IntRange(min=1024), default=10 * 1024 * 1024, show_default=True)
@click.option("--log-backups", type=click.IntRange(min=1), default=5, show_default=True)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def start(port: int, port_range: Optional[tuple[int, int]], force: bool, detach: bool,
          restart: Optional[str], command: tuple[str, ...], **options: Any) -> None:
    """Start CMD (after --) on PORT and supervise it; no CMD runs the demo app."""
    from .backoff import BackoffPolicy
    from .spec import DEFAULT_PORT, ServerSpec

    backoff = BackoffPolicy(
        initial_s=options.pop("backoff_initial"), max_s=options.pop("backoff_max"),
        reset_after_s=options.pop("backoff_reset"), max_restarts=options.pop("max_restarts"),
        window_s=options.pop("restart_window"))
    spec = ServerSpec(
        port=port or DEFAULT_PORT, auto_port=port == 0, port_range=port_range, command=command,
        detached=detach, restart=restart or ("on-failure" if detach else "no"), backoff=backoff,
        grace_s=options.pop("grace"), ready_timeout_s=options.pop("ready_timeout"),
        health_interval_s=options.pop("health_interval"), health_timeout_s=options.pop("health_timeout"),
        **options)
    _launch(spec, force)


def _launch(spec: Any, force: bool) -> None:
    """Run in the foreground (exit with the supervisor's code) or detached (report and return)."""
    run_dir = _run_dir()
    if not spec.detached:
        from .supervisor import Supervisor, run_as_process

        raise SystemExit(run_as_process(Supervisor(spec, run_dir, force=force)))
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
    if outcome.log:
        from .logs import tail

        output.log_tail(outcome.log, tail(Path(outcome.log), 20))
    raise SystemExit(outcome.code)


@cli.command()
@click.option("--port", type=PORT, default=8000, show_default=True)
@click.option("--grace", type=SECONDS, default=None, help="Seconds between TERM and KILL (default: as started).")
def stop(port: int, grace: Optional[float]) -> None:
    """Gracefully stop the instance on PORT (not running is success)."""
    from . import commands

    raise SystemExit(commands.stop(click.get_current_context().obj, port, grace))


@cli.command()
@click.option("--port", type=PORT, default=8000, show_default=True)
@click.option("--force", is_flag=True, help="Also free the port from whatever holds it.")
def restart(port: int, force: bool) -> None:
    """Stop the instance on PORT (if it runs) and start it again with its recorded command."""
    from . import instances

    run_dir = _run_dir()
    spec = run_dir.read_spec(port)
    if spec is None:
        raise PortctlError(*output.nothing_recorded(port))
    instances.stop(run_dir, port, notify=output.warn)
    _launch(spec, force)


@cli.command()
@click.option("--port", type=PORT, default=None, help="Only this port (exit 3 if not running).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def status(port: Optional[int], as_json: bool) -> None:
    """Every instance known in the run dir."""
    from . import commands

    raise SystemExit(commands.status(click.get_current_context().obj, port, as_json))


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
@click.argument("port", type=PORT)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def who(port: int, as_json: bool) -> None:
    """Which processes listen on PORT (any address, IPv4 and IPv6)."""
    from . import commands

    raise SystemExit(commands.who(port, as_json))


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
@click.argument("name", required=False)
@click.option("--port", type=PORT, default=None, help="The instance on this port instead of NAME.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (survives rotation).")
def logs(name: Optional[str], port: Optional[int], lines: int, follow: bool) -> None:
    """Print (and follow) the log of a detached instance."""
    from . import instances
    from .logs import follow as follow_log, tail

    path = instances.log_path(_run_dir(), name, port)
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
def port_of(name: str) -> None:
    """Print the port of the running instance NAME (for scripts: `$(portctl port api)`)."""
    from . import commands

    raise SystemExit(commands.port_of(click.get_current_context().obj, name))


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


def main() -> None:
    """Console entry point."""
    cli(prog_name="portctl")
