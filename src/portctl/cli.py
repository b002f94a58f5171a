"""The command line: each command parses, makes one library call, and renders.

Library modules are imported inside the commands, so ``portctl who`` does not pay for
the supervisor and ``--version`` pays for nothing.
"""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Optional

import click

from . import __version__, output
from .errors import BadInput, PortctlError

PORT = click.IntRange(1, 65535)
SECONDS = click.FloatRange(min=0)


class _Group(click.Group):
    """Turns library errors into one line on stderr and their documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PortctlError as exc:
            if ctx.params.get("verbose"):
                traceback.print_exc()
            output.error(exc.message, exc.hint)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portctl")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PORTCTL_RUN_DIR",
              default=".", show_default="current directory", help="Where pid files, records and locks live.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, run_dir: Path, verbose: bool) -> None:
    """Run a local server under supervision and own its port."""
    from .runfiles import RunDir

    ctx.obj = RunDir(run_dir)


@cli.command()
@click.option("--port", type=PORT, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--force", is_flag=True, help="Free the port from whatever holds it (policy applies).")
@click.option("--grace", type=SECONDS, default=5.0, show_default=True, help="Seconds between TERM and KILL.")
@click.option("--ready-timeout", type=SECONDS, default=30.0, show_default=True)
@click.option("--name", default="", help="Instance name (default: derived from the command).")
@click.option("-d", "--detach", is_flag=True, help="Run in the background (not available yet).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def start(run_dir: Any, port: int, host: str, force: bool, grace: float, ready_timeout: float,
          name: str, detach: bool, command: tuple[str, ...]) -> None:
    """Start CMD (after --) on PORT and supervise it; no CMD runs the demo app."""
    if detach:
        raise BadInput(*output.detach_not_yet())
    from .spec import ServerSpec
    from .supervisor import Supervisor

    spec = ServerSpec(port=port, host=host, command=command, name=name, grace_s=grace,
                      ready_timeout_s=ready_timeout)
    raise SystemExit(Supervisor(spec, run_dir, force=force).run())


@cli.command()
@click.option("--port", type=PORT, default=8000, show_default=True)
@click.option("--grace", type=SECONDS, default=None, help="Seconds between TERM and KILL (default: as started).")
@click.pass_obj
def stop(run_dir: Any, port: int, grace: Optional[float]) -> None:
    """Gracefully stop the instance on PORT (not running is success)."""
    from . import instances

    if not instances.stop(run_dir, port, grace, notify=output.warn):
        output.say(output.nothing_to_stop(port))
        return
    output.say(output.stopped(port))


@cli.command()
@click.option("--port", type=PORT, default=8000, show_default=True)
@click.option("--force", is_flag=True, help="Also free the port from whatever holds it.")
@click.pass_obj
def restart(run_dir: Any, port: int, force: bool) -> None:
    """Stop the instance on PORT and start it again with its recorded command."""
    from . import instances
    from .supervisor import Supervisor

    record = run_dir.read_record(port)
    if record is None:
        raise PortctlError(*output.nothing_recorded(port))
    instances.stop(run_dir, port, notify=output.warn)
    raise SystemExit(Supervisor(record.spec, run_dir, force=force).run())


@cli.command()
@click.option("--port", type=PORT, default=None, help="Only this port (exit 3 if not running).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
def status(run_dir: Any, port: Optional[int], as_json: bool) -> None:
    """Every instance known in the run dir."""
    from . import instances

    rows = [s.to_dict() for s in instances.status(run_dir, port)]
    if as_json:
        output.emit_json(rows)
    else:
        output.table("portctl instances", ["PORT", "NAME", "STATE", "PID", "CHILD", "UPTIME", "COMMAND"],
                     [_status_row(r) for r in rows])
    if port is not None and not any(r["state"] in ("running", "starting") for r in rows):
        output.error(*output.not_running(port))
        raise SystemExit(3)


def _status_row(r: dict[str, Any]) -> list[str]:
    uptime = f"{r['uptime_s']:.0f}s" if r["uptime_s"] is not None else "-"
    return [str(r["port"]), str(r["name"] or "-"), r["state"], str(r["pid"] or "-"),
            str(r["child_pid"] or "-"), uptime, " ".join(r["command"])[:60]]


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.pass_obj
def clean(run_dir: Any, dry_run: bool) -> None:
    """Remove stale pid files, records and locks; stop verified orphans of our instances."""
    from . import instances

    actions = instances.clean(run_dir, dry_run)
    for action, target in actions:
        output.say(output.clean_action(action, target, dry_run))
    if not actions:
        output.say(output.clean_nothing())


@cli.command()
@click.argument("port", type=PORT)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def who(port: int, as_json: bool) -> None:
    """Which processes listen on PORT (any address, IPv4 and IPv6)."""
    from . import ports

    holders = [h.to_dict() for h in ports.holders(port)]
    if as_json:
        output.emit_json(holders)
    elif holders:
        output.table(f"port {port}", ["PID", "NAME", "USER", "ADDRESS", "COMMAND"],
                     [[str(h["pid"] or "?"), h["name"], h["username"], f"{h['address']} ({h['family']})",
                       " ".join(h["cmdline"])[:80]] for h in holders])
        output.say(output.free_hint(port))
    else:
        output.say(output.nothing_holds(port))
    if not holders:
        raise SystemExit(1)


@cli.command()
@click.argument("port", type=PORT)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--grace", type=SECONDS, default=5.0, show_default=True)
@click.pass_obj
def free(run_dir: Any, port: int, host: str, grace: float) -> None:
    """Stop whatever holds PORT (whole process trees), subject to the policy."""
    from . import instances

    if not instances.free(run_dir, port, host, grace, notify=output.say):
        output.say(output.nothing_holds(port))


def main() -> None:
    """Console entry point."""
    cli(prog_name="portctl", auto_envvar_prefix=None)
