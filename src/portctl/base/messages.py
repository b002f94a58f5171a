"""Every user-visible word, as pure text: errors' (message, hint) pairs (the exceptions of
``errors`` build theirs here), progress lines and hints. Nothing here prints, colours or
imports click or rich: the library uses it, and ``render`` (the CLI's face) shows it."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Optional, Sequence

Msg = tuple[str, str]

NOT_LOCAL = "address not available on this machine"  # a reason ports.resolve_host gives

# What may be done about a busy port, as policy.remedy judges it (take_port_hint words it)
PRODUCTION, ASK_ADMIN, FREE_IT = "production", "ask-admin", "free-it"

# ---------------------------------------------------------------- troubleshooting text
_SEE_HOLDER = {
    "linux": "see who holds it with `ss -ltnp 'sport = :{port}'` or `lsof -i :{port} -sTCP:LISTEN`",
    "macos": "see who holds it with `lsof -nP -i :{port} -sTCP:LISTEN`",
    "posix": "see who holds it with `lsof -nP -i :{port}` or `sockstat -l -p {port}`",
    "windows": "see who holds it with `netstat -ano | findstr :{port}` or PowerShell "
               "`Get-NetTCPConnection -LocalPort {port} | Select OwningProcess`",
}
_PRIVILEGE = {
    "windows": "run it from an Administrator terminal",
}


def _platform_name() -> str:
    from ..platform.current import platform  # imported on demand: it pulls in psutil

    return str(platform.NAME)


def _see_holder(port: int) -> str:
    return _SEE_HOLDER.get(_platform_name(), _SEE_HOLDER["posix"]).format(port=port)


def _privilege() -> str:
    return _PRIVILEGE.get(_platform_name(), "run it with the right rights (e.g. sudo)")


# ---------------------------------------------------------------- error messages
def bad_port(value: object) -> Msg:
    return f"invalid port {value!r}", "use a number from 1 to 65535"


def bad_host(host: str, reason: str) -> Msg:
    if reason == NOT_LOCAL:
        return (f"cannot use host {host!r}: {reason}",
                "give an address of this machine: 127.0.0.1, 0.0.0.0 (all interfaces) or one of its own")
    return f"cannot use host {host!r}: {reason}", "give an IP address or a resolvable name"


def run_dir_unusable(path: object, why: str) -> Msg:
    return f"run dir {path} {why}", "use --run-dir or PORTCTL_RUN_DIR"


def bad_name(name: object) -> Msg:
    return (f"invalid name {name!r}",
            "use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'")


def already_running(port: int, pid: Optional[int], *, force: bool = False, run_dir: str = "") -> Msg:
    who = f"pid {pid}" if pid else "another portctl"
    if force:  # --force frees a port from others; our own instance is replaced by restart
        return (f"port {port} is already managed by a running portctl ({who})",
                f"replace it with `{_portctl(run_dir)} restart --port {port} --force`")
    return (f"port {port} is already managed by a running portctl ({who})",
            f"stop it with `{_portctl(run_dir)} stop --port {port}`")


def port_in_use(port: int, holders: Sequence[Any], *, run_dir: str = "", remedy: str = "") -> Msg:
    """``run_dir``: where the failed start recorded its spec (so `restart --force` retries it);
    ``remedy`` (``policy.remedy``): what the hint may offer; none, no hint."""
    listed = "; ".join(_holder_short(h) for h in holders) or "a process we cannot see"
    retry = f"{_portctl(run_dir)} restart --port {port} --force"
    return f"port {port} is in use by {listed}", take_port_hint(port, remedy, retry) if remedy else ""


def take_port_hint(port: int, remedy: str, retry: str = "") -> str:
    """What may be done about a busy port, as ``remedy`` (``policy.remedy``: the policy in
    force and our rights) allows: never --force or free where they would be refused.
    ``retry``: the command that retries what failed, forcing."""
    if remedy == PRODUCTION:
        return f"{_see_holder(port)}; stop it with its own service manager, or pick another port"
    if remedy == ASK_ADMIN:
        return f"see who holds it with `{_as_admin(f'portctl who {port}')}`, or pick another port"
    if retry:
        return f"free it with `{retry}` or `portctl free {port}`, or pick another port"
    return f"free it with `portctl free {port}`"


def _as_admin(command: str) -> str:
    return command if _platform_name() == "windows" else f"sudo {command}"


def _portctl(run_dir: str, *, always: bool = False) -> str:
    """``portctl``, with ``--run-dir DIR`` when DIR is not the user's current directory (the
    shell's $PWD: a detached supervisor runs in the run dir, but inherits its user's $PWD)."""
    if not run_dir or (not always and os.path.abspath(run_dir) == _user_cwd()):
        return "portctl"
    import shlex

    return f"portctl --run-dir {shlex.quote(str(run_dir))}"


def _user_cwd() -> str:
    return os.path.abspath(os.environ.get("PWD") or os.getcwd())


def forgotten_dashes(before: Sequence[str], command: Sequence[str]) -> str:
    import shlex

    line = shlex.join(["portctl", "start", *before, "--", *command])
    return f"put the server command after `--`: {line}"


def preferred_taken(port: Optional[int]) -> str:
    return f"port {port} is in use or managed by another portctl"


def port_race(port: int, reason: str) -> str:
    return f"port {port} could not be used ({reason}); trying the next candidate"


def no_port_found(tried: Sequence[int]) -> Msg:
    return (f"no usable port after trying {', '.join(map(str, tried))}",
            "widen --port-range, or use --port auto")


def bad_range(text: str) -> Msg:
    return f"invalid port range {text!r}", "use LOW-HIGH with 1 <= LOW <= HIGH <= 65535, e.g. 8000-8100"


def no_such_instance(name: str) -> Msg:
    return (f"no running instance named {name!r} in this run dir",
            "see `portctl status`; names come from --name or the command")


def too_many_restarts(count: int, window_s: float) -> str:
    return f"gave up after {count} restarts within {window_s:g} s"


def fatal(port: int, reason: str) -> str:
    return f"instance on port {port} is fatal: {reason}; the port is released"


def daemon_silent(code: Optional[int]) -> Msg:
    how = "is still running" if code is None else f"exited with code {code}"
    return f"the detached supervisor {how} without reporting", "see the log below"


def stopped_before_ready() -> str:
    return "the instance stopped before it served"


def detached_interrupted(name: str) -> str:
    return (f"interrupted; {name} goes on starting in the background: watch it with "
            f"`portctl status` or `portctl logs {name} -f`")


def log_tail_header(path: str) -> str:
    return f"--- last lines of {path} ---"


def no_log(what: str) -> Msg:
    return f"no log for {what}", "logs exist for detached instances (start -d)"


def still_busy(port: int) -> Msg:
    return f"port {port} is still in use after stopping its holders", _see_holder(port)


def other_run_dir(port: int, run_dir: str, other_port: int) -> Msg:
    import shlex

    return (f"port {port} is held by a portctl instance of another run dir, {run_dir}; nothing stopped",
            f"stop it there: `portctl --run-dir {shlex.quote(run_dir)} stop --port {other_port}`")


def production_refused(port: int, pid: int) -> Msg:
    return (f"refusing to stop pid {pid} on port {port}: portctl did not start it (production)",
            f"{_see_holder(port)}; stop it with its own service manager")


def permission_denied(pid: int) -> Msg:
    return f"not allowed to signal pid {pid}", _privilege()


def invisible_holder(port: int) -> Msg:
    return (f"port {port} is held by a process you may not see (another user's)",
            f"{_see_holder(port)}; {_privilege()}")


def other_user(pid: int, username: Optional[str]) -> Msg:
    owner = username or "another user"
    return f"pid {pid} belongs to {owner}, not to you", _privilege()


def survivors(pids: Iterable[int]) -> Msg:
    listed = ", ".join(map(str, pids))
    return (f"processes {listed} survived SIGKILL",
            "they may be stuck in the kernel (state D); check them with ps")


def not_ready(port: int, host: str, timeout_s: float, listening: Sequence[int] = ()) -> Msg:
    """``listening``: the ports the child's tree listens on instead (when it does)."""
    message = f"the child did not accept connections on port {port} within {timeout_s:g} s"
    if listening:
        ports = ", ".join(map(str, sorted(listening)))
        return (f"{message}: your command listens on {ports}, not {port}",
                "pass --port {port} or read $PORT; portctl substitutes {port} in the command")
    return message, f"check that it listens on {host}:{port}, or raise --ready-timeout"


def exited_early(code: int) -> Msg:
    return (f"the child exited with code {code} before accepting connections",
            "run the command by hand to see why")


def exited_zero_early() -> Msg:
    return ("the child exited with code 0 before it ever accepted a connection",
            "a server must keep running: check the command")


def exited(code: int) -> Msg:
    return f"the child exited on its own with code {code}", ""


def tampered(port: int, reason: str) -> Msg:
    return (f"refusing to signal the instance on port {port}: {reason}",
            "the run files were edited or are damaged; check by hand")


def pid_file_mismatch(port: int, file_pid: Optional[int], recorded: Optional[int]) -> str:
    return f".server_{port}.pid names pid {file_pid} but the recorded supervisor is pid {recorded}"


def holder_mismatch(holders: Iterable[int], recorded: Optional[int]) -> str:
    pids = ", ".join(map(str, sorted(holders)))
    if recorded is None:
        return f"the lock holder (pid {pids}) has no readable record"
    return f"the lock holder (pid {pids}) is not the recorded supervisor (pid {recorded})"


def supervisor_gone(recorded: Optional[int]) -> str:
    return f"the recorded supervisor (pid {recorded}) is not running, yet its lock is held"


def not_portctl(pid: int) -> str:
    return f"pid {pid} is not a portctl process"


def foreign_lock(port: int, holders: Iterable[int]) -> Msg:
    pids = ", ".join(map(str, sorted(holders)))
    return (f"port {port}'s lock .server_{port}.lock is held by pid {pids}, which is not a "
            "portctl supervisor; nothing was started",
            f"see it with `ps -p {pids.replace(', ', ',')}`; stop it to release the lock")


def stop_timeout(port: int, waited_s: float) -> Msg:
    return (f"the instance on port {port} did not stop within {waited_s:g} s",
            f"check it with `portctl status --port {port}`")


def busy_after_stop(port: int, holders: Sequence[Any]) -> Msg:
    listed = "; ".join(_holder_short(h) for h in holders) or "a process we cannot see"
    return f"the instance on port {port} stopped, but the port is still in use by {listed}", _see_holder(port)


def stopped_leftovers(port: int, pids: Sequence[int]) -> str:
    return (f"processes of the instance on port {port} outlived its supervisor; "
            f"stopped them (they carried its token): pids {', '.join(map(str, pids))}")


def not_running(port: int) -> Msg:
    return f"nothing is running on port {port}", f"start it with `portctl start --port {port}`"


def nothing_recorded(port: int) -> Msg:
    return (f"no instance was ever recorded for port {port}",
            f"start one with `portctl start --port {port} -- CMD`")


def name_taken(name: str, holder: Any) -> Msg:  # holder: a status.Status, or None
    where = f" (port {holder.port}, supervisor pid {holder.pid})" if holder is not None else ""
    return (f"an instance named {name!r} is already running in this run dir{where}",
            f"stop it with `portctl stop {name}`, or give this one another --name")


def name_suffixed(name: str, new_name: str) -> str:
    return f"another live instance is named {name!r}: this one is {new_name!r} (choose with --name)"


def several_instances(verb: str, run_dir: object, rows: Sequence[Any]) -> Msg:  # rows: status.Status
    listed = ", ".join(f"{_row_name(r)} (port {r.port})" for r in rows)
    first = rows[0]
    return (f"{len(rows)} instances in {run_dir}: {listed}; say which to {verb}",
            f"name them (`portctl {verb} {_row_name(first)}`) or give the port "
            f"(`portctl {verb} --port {first.port}`)")


def _row_name(row: Any) -> str:
    return row.record.spec.name if row.record is not None else "?"


def nothing_running_in(run_dir: object) -> str:
    return f"nothing running in {run_dir}"


def nothing_named(name: str) -> str:
    return f"nothing running named {name!r}"


def nothing_to_restart(run_dir: object, saved: Sequence[int]) -> Msg:
    hint = (f"restart a recorded one with `portctl restart --port {saved[0]}`" if saved
            else "start one with `portctl start -- CMD`")
    return f"nothing is running in {run_dir}", hint


def never_named(name: str) -> Msg:
    return (f"no instance named {name!r} was ever recorded in this run dir",
            f"start it with `portctl restart {name} -- CMD` (or `portctl start --name {name} -- CMD`)")


def restart_needs_one(why: str) -> Msg:
    return f"{why}: restart one instance at a time", "name one instance, or give --port"


def cannot_restart(path: str, reason: str, port: int) -> Msg:
    return (f"cannot restart the instance on port {port}: {path!r}: {reason}; it was left as it is",
            "fix the command, or restart with --update-env (this shell's environment and PATH) "
            "or with a new command after --")


def internal_error(exc: BaseException) -> Msg:
    return f"internal error: {exc!r}", "run again with -v for the traceback, and report it"


def spawn_failed(argv: Sequence[str], reason: str) -> Msg:
    return f"cannot run {argv[0]!r}: {reason}", "check the command after `--`"


def unknown_environment(variable: str, value: str) -> str:
    return (f"{variable}={value} names no known environment: the development policy applies "
            f"(portctl may stop processes holding a port; set {variable}=production to forbid it)")


def policy_allows(policy: str, port: int, pids: Sequence[int]) -> str:
    return f"the {policy} allows stopping pids {', '.join(map(str, pids))} holding port {port}"


# ---------------------------------------------------------------- progress lines
def stale_files(port: int, pid: Optional[int]) -> str:
    who = f"pid {pid}" if pid else "no valid pid"
    return f"removing stale .server_{port}.pid ({who}; no portctl holds its lock); nothing signalled"


def reclaimed(port: int, pids: Sequence[int]) -> str:
    return f"stopped orphans of an earlier instance on port {port}: pids {', '.join(map(str, pids))}"


def stopping_other_instance(port: int, run_dir: str, other_port: int) -> str:
    return f"port {port} is held by the portctl instance on port {other_port} of {run_dir}: stopping it"


def freed(port: int, pids: Sequence[int]) -> str:
    return f"freed port {port}: stopped pids {', '.join(map(str, pids))}"


def ready(url: str, pid: int, child_pid: int, elapsed_s: float) -> str:
    return f"portctl: serving {url} (supervisor {pid}, child {child_pid}) ready in {elapsed_s * 1000:.0f} ms"


# The ready lines of `start`: one line leading with the URL, then the details (the face dims them).
def ready_at(name: str, url: str, elapsed_s: Optional[float] = None) -> str:
    took = f" in {elapsed_s:.1f} s" if elapsed_s is not None else ""
    return f"{name} ready at {url}{took}"


def lan_url(url: str) -> str:
    return f"  LAN: {url}"


def ready_details(pid: Optional[int], child_pid: Optional[int], *, name: str = "",
                  log: Optional[str] = None, run_dir: str = "") -> list[str]:
    """Below the ready line: the pids, then the log and how to follow it (detached), or how
    to stop (foreground: no ``log``)."""
    lines = [f"  supervisor pid {pid}, child pid {child_pid}"]
    if log:
        return lines + [f"  log: {log}", f"  follow it: {_portctl(run_dir)} logs {name} -f"]
    return lines + [ready_foreground()]


def ready_foreground() -> str:
    return "  Ctrl+C to stop"


def waiting_for(names: Sequence[str], port: Optional[int]) -> str:
    """The spinner's words while `start` waits (the face adds the elapsed time)."""
    return f"waiting for {', '.join(names)}" + (f" on :{port}" if port else "")


def port_moved(port: int, used: int, holder: Optional[tuple[int, str]]) -> str:
    who = f" (pid {holder[0]}, {holder[1]})" if holder else ""
    return f"{port} busy{who}, using {used}"


def stopping() -> str:
    return "stopping (Ctrl+C again to kill now)..."


def killed_after(grace_s: float, hurried: bool) -> str:
    return "killed at once (stop signal repeated)" if hurried else f"killed after {grace_s:g} s grace"


def stopped_free(port: int, free: bool) -> str:
    return f"stopped; port {port} free" if free else f"stopped; port {port} still in use"


def project_stopping(names: Sequence[str]) -> str:
    return f"stopping {', '.join(names)}..."


def project_stopped(names: Sequence[str], ports: Sequence[int]) -> str:
    if not names:
        return "stopped; nothing was left running"
    free = ", ".join(map(str, ports))
    return f"stopped {', '.join(names)}; port{'s' if len(ports) > 1 else ''} {free} free"


def stopped(port: int) -> str:
    return f"portctl: port {port} stopped and free"


def nothing_to_stop(port: int) -> str:
    return f"nothing running on port {port}"


def clean_action(action: str, path_or_pid: str, dry_run: bool) -> str:
    return f"{'would ' if dry_run else ''}{action} {path_or_pid}"


def clean_nothing() -> str:
    return "nothing to clean"


# `clean --sweep`: strays matching a service's sweep patterns
SWEEP_COLUMNS = ["PID", "SERVICE", "AGE", "CWD", "COMMAND"]


def no_sweep_patterns(names: Sequence[str], file: str) -> Msg:
    return (f"no sweep patterns for {', '.join(names)} in {file}",
            "give the service sweep = ['REGEX', ...]: regexes matched against command lines")


def sweep_none(names: Sequence[str], where: str) -> str:
    return f"no strays of {', '.join(names)} {where}"


def sweep_where(root: str, anywhere: bool) -> str:
    return "anywhere" if anywhere else f"under {root}"


def sweep_listed(count: int, dry_run: bool) -> str:
    what = f"{count} stray{'s' if count != 1 else ''}"
    if dry_run:
        return f"dry run: {what} would be stopped with --force; nothing stopped"
    return f"{what} left running: add --force to stop {'them' if count != 1 else 'it'} (whole trees)"


def sweep_stopped(pids: Sequence[int]) -> str:
    return f"stopped {len(pids)} stray{'s' if len(pids) != 1 else ''}: pid {', '.join(map(str, pids))}"


def sweep_refused(pid: int, service: str) -> Msg:
    return (f"refusing to stop pid {pid} (a stray of {service}): portctl did not start it (production)",
            "stop it with its own service manager; without --force, clean --sweep only lists")


def makefile_clashes(makefile: str, targets: Sequence[str]) -> str:
    return (f"{makefile} already has the targets {', '.join(targets)}: make would keep one recipe of "
            f"each; take a prefix (portctl makefile --prefix pc-)")


def wrote(path: str) -> str:
    return f"wrote {path}"


def sweep_allowed(policy: str, pids: Sequence[int]) -> str:
    return f"the {policy} allows stopping the strays {', '.join(map(str, pids))}"


def nothing_holds(port: int) -> str:
    return f"nothing listens on port {port}"


def stop_own_hint(holders: Sequence[dict[str, Any]], run_dir: str = "") -> str:
    """When ``who`` showed only our own instance: how to stop it through portctl; else ""."""
    instances = [h["instance"] for h in holders if h.get("instance")]
    if instances and len(instances) == len(holders) and instances[0].get("port"):
        home = str(instances[0].get("run_dir") or "")
        here = os.path.abspath(run_dir or _user_cwd())
        portctl = "portctl" if not home or os.path.abspath(home) == here else _portctl(home, always=True)
        return f"stop it with: {portctl} stop --port {instances[0]['port']}"
    return ""


def no_instances(run_dir: object) -> str:
    return f"no instances in {run_dir}"


def supervisor_dead(pid: Optional[int]) -> str:
    """Why a row of `status` is stale."""
    return f"supervisor {pid} is gone; its files are left" if pid else "supervisor gone; its files are left"


def restarting_after(reason: str) -> str:
    return f"restarting after: {reason}"


def short_command(cmdline: Sequence[str], limit: int = 80) -> str:
    """``/usr/local/bin/python3.12 -m uvicorn app.main:app --port 8001`` ->
    ``python3.12 -m uvicorn app.main:app --port 8001``: the program's basename, every
    argument; when too long, the middle gives way to ``...``."""
    words = " ".join(cmdline).split()
    if not words:
        return ""
    words[0] = os.path.basename(words[0].replace("\\", "/")) or words[0]
    text = " ".join(words)
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}...{text[len(text) - (limit - 3 - keep):]}"


def _holder_short(h: Any) -> str:
    cmd = short_command(h.cmdline) or h.name
    return f"pid {h.pid} ({h.name}, {h.username}: {cmd})" if h.pid else f"an unknown process on {h.address}"


# Projects: the words of `start`, `stop`, `restart` and `forget` for named services.
def service_started(name: str, url: str) -> str:
    return ready_at(name, url) if url else f"{name}: started"


def project_interrupted() -> str:
    return ("interrupted; the services already launched go on starting in the background: "
            "watch them with `portctl status`")


def service_already_running(name: str) -> str:
    return f"{name}: already running"


def service_not_started(name: str) -> str:
    return f"{name}: not started (a dependency failed, or the start was given up)"


def project_rolled_back(names: Sequence[str]) -> str:
    return f"stopped what this start launched: {', '.join(names)} (--keep-going leaves it running)"


def service_exited(name: str) -> str:
    return f"{name} has exited; the other services go on (`portctl status` says how it ended)"


def project_all_exited() -> str:
    return "every service has exited"


def service_stopped(name: str) -> str:
    return f"{name}: stopped"


def services_not_running() -> str:
    return "no service of the project is running"


def project_options(file: object) -> Msg:
    return (f"a project's services take their options from {file}",
            "edit the file, then `portctl restart NAME`; or give a command after -- for a single instance")


def no_log_among(name: str, known: Sequence[str]) -> Msg:
    return f"no log for {name!r}", f"logs here: {', '.join(known)}; only detached instances have one"


def not_ready_named(name: str, timeout_s: float) -> Msg:
    return f"{name} was not ready within {timeout_s:g} s", f"see `portctl status` and `portctl logs {name}`"


def forget_live(name: str, port: int) -> Msg:
    return f"{name} is running on port {port}", f"stop it first: portctl stop {name}"


def forgotten(name: str, ports: Sequence[int]) -> str:
    if not ports:
        return f"nothing remembered of {name}"
    return f"forgot {name} (saved for port {', '.join(map(str, ports))})"


# ---------------------------------------------------------------- usage errors (the CLI's parse)
# Each is (what, hint): `portctl: error: WHAT (HINT)`, exit 2. ``help_line`` is the command
# that shows the help of the command being parsed (`portctl start --help`).

def usage_no_such_option(option: str, close: Sequence[str], help_line: str) -> Msg:
    return f"no such option {option}", _did_you_mean(close, help_line)


def usage_no_such_command(name: str, close: Sequence[str], help_line: str) -> Msg:
    return f"no such command {name!r}", _did_you_mean(close, help_line)


def _did_you_mean(close: Sequence[str], help_line: str) -> str:
    if not close:
        return f"see {help_line}"
    return f"did you mean {close[0]}? see {help_line}"


def usage_missing(what: str, help_line: str) -> Msg:
    """``what``: `argument PORT`, `option --name`, `command`."""
    return f"missing {what}", f"see {help_line}"


def usage_needs_value(option: str, help_line: str) -> Msg:
    return f"option {option} needs a value", f"see {help_line}"


def usage_takes_no_value(option: str, help_line: str) -> Msg:
    return f"option {option} takes no value", f"see {help_line}"


def usage_extra_arguments(words: Sequence[str], help_line: str) -> Msg:
    import shlex

    return f"unexpected argument{'s' if len(words) > 1 else ''} {shlex.join(words)}", f"see {help_line}"


def usage_bad_port(value: object, auto: bool) -> Msg:
    return f"invalid port {value!r}", "a number 1–65535" + (", or auto" if auto else "")


def usage_bad_value(what: str, problem: str, help_line: str) -> Msg:
    return f"invalid {what}: {problem}", f"see {help_line}"


def usage_other(text: str, help_line: str) -> Msg:
    return text, f"see {help_line}"
