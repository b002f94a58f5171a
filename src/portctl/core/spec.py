"""What to run: one frozen description of a server instance, recorded from the first start."""
from __future__ import annotations

import math
import os
import re
import sys
from ..base import defaults
from ..base.frozen import Frozen, asdict, fields, replace
from .backoff import BackoffPolicy
from ..base.errors import BadInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Optional

RESTART_MODES = ("no", "on-failure", "always")
CHILD_STOP_SIGNALS = ("TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2")  # what asks a child to stop (POSIX)

MAX_SECONDS = 86400.0  # every timing is finite and at most a day
# The lower bound of each timing (seconds) and whether the bound itself is allowed.
SECONDS_MIN: dict[str, tuple[float, bool]] = {
    "grace_s": (0.0, True),
    "ready_timeout_s": (0.0, False),
    "health_interval_s": (0.1, True),
    "health_timeout_s": (0.0, False),
    "initial_s": (0.0, True),
    "max_s": (0.0, True),
    "reset_after_s": (0.0, True),
    "window_s": (0.0, False),
}

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME_MAX = 40
NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")  # 1-64 characters, no leading "."


class BadName(BadInput, ValueError):
    """An instance name that is no name: it becomes a file name under ``.portctl/logs/``, so
    ``../x``, ``/x``, ``.hidden`` or anything outside ``[A-Za-z0-9._-]{1,64}`` is refused."""


def check_name(name: str) -> str:
    """``name`` if it is a valid instance name, else BadName (exit 2; a ValueError too)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadName.for_name(name)
    return name


def demo_command() -> tuple[str, ...]:
    """The embedded demo app, run with the same interpreter as portctl."""
    return (sys.executable, "-m", "portctl.demo", "--host", "{host}", "--port", "{port}")


class ServerSpec(Frozen, kw_only=True):
    """A server to supervise: its name, address, command, and how to stop, probe and restart it.

    ``command`` may contain ``{port}`` and ``{host}``; they are substituted at launch.
    An empty command means the embedded demo app.
    """

    port: int = defaults.PORT
    host: str = defaults.HOST
    command: tuple[str, ...] = ()
    name: str = ""
    grace_s: float = defaults.GRACE_S
    ready_timeout_s: float = defaults.READY_TIMEOUT_S
    auto_port: bool = False  # any free port will do
    port_range: Optional[tuple[int, int]] = None  # candidates after ``port``
    detached: bool = False
    restart: str = "no"  # no | on-failure | always
    health: str = ""  # "" = TCP accept; a path (/health) or a URL = HTTP 2xx
    health_interval_s: float = defaults.HEALTH_INTERVAL_S
    health_timeout_s: float = defaults.HEALTH_TIMEOUT_S
    health_failures: int = defaults.HEALTH_FAILURES
    backoff: BackoffPolicy = BackoffPolicy()
    log_max_bytes: int = defaults.LOG_MAX_BYTES
    log_backups: int = defaults.LOG_BACKUPS
    cwd: str = ""  # the child's working directory ("": the run dir, for specs recorded without one)
    executable: str = ""  # command[0] resolved to an absolute path when it was recorded ("": look it up)
    env: Optional[tuple[tuple[str, str], ...]] = None  # the recorded environment (None: inherit ours)
    auto_name: bool = False  # derived from the command: taken by another live instance, it gets -PORT
    stop_signal: str = "TERM"  # sent to the child's group first (POSIX; Windows: CTRL_BREAK always)
    timestamps: bool = False  # each line of the child's output gets the local time it was read

    @property
    def dynamic(self) -> bool:
        """Whether another port may be chosen when ``port`` is taken."""
        return self.auto_port or self.port_range is not None

    def __post_init__(self) -> None:
        if not self.command:
            object.__setattr__(self, "command", demo_command())
        if not self.name:
            object.__setattr__(self, "name", derive_name(self.command))
            object.__setattr__(self, "auto_name", True)
        check_name(self.name)
        if self.restart not in RESTART_MODES:
            raise ValueError(f"restart must be one of {', '.join(RESTART_MODES)}")
        if self.stop_signal not in CHILD_STOP_SIGNALS:
            raise ValueError(f"stop_signal must be one of {', '.join(CHILD_STOP_SIGNALS)}")
        for owner in (self, self.backoff):
            for field in fields(owner):
                if field in SECONDS_MIN:
                    check_seconds(field, getattr(owner, field))

    def argv(self) -> list[str]:
        """The command with ``{port}`` and ``{host}`` substituted (nothing else is touched),
        and the recorded executable in place of its first word."""
        argv = [
            arg.replace("{port}", str(self.port)).replace("{host}", self.host)
            for arg in self.command
        ]
        if self.executable:
            argv[0] = self.executable
        return argv

    def child_env(self, token: str, run_dir: str = "",
                  base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The child's environment: the caller's plus PORT and HOST, and the instance's
        token, name, run dir and port (inherited by every descendant, so `who` and `clean`
        can tell our processes from others, and `who` can name the instance's record)."""
        env = dict(self.base_env() if base is None else base)
        env.update(PORT=str(self.port), HOST=self.host, PORTCTL_TOKEN=token,
                   PORTCTL_NAME=self.name, PORTCTL_RUN_DIR=run_dir, PORTCTL_PORT=str(self.port))
        env.setdefault("PYTHONUNBUFFERED", "1")  # a Python child's print() reaches the log at once
        return env

    def base_env(self) -> Mapping[str, str]:
        """The environment the child starts from: the recorded one, else ours."""
        return os.environ if self.env is None else dict(self.env)

    def spawn_problem(self) -> Optional[tuple[str, str]]:
        """Why the command could not be started right now, as (path, reason), or None: checked
        before `restart` stops an instance that serves."""
        import errno

        if self.cwd and not os.path.isdir(self.cwd):
            return self.cwd, os.strerror(errno.ENOENT)
        path = self.executable or resolve_executable(self.argv()[0], self.base_env(), self.cwd)
        if not path or not os.path.isfile(path):
            return (path or self.argv()[0]), os.strerror(errno.ENOENT)
        if not os.access(path, os.X_OK):
            return path, os.strerror(errno.EACCES)
        return None

    def names(self) -> list[str]:
        """The names this instance may take: its own; a derived one also NAME-PORT, for when
        another live instance runs the same command."""
        if not self.auto_name:
            return [self.name]
        suffixed = f"{derive_name(self.command)}-{self.port}"
        return [self.name] + ([suffixed] if suffixed != self.name else [])

    def with_port(self, port: int) -> ServerSpec:
        return replace(self, port=port)

    def to_dict(self, *, with_env: bool = False) -> dict[str, Any]:
        """The spec as JSON-able data; the environment (secrets, often) only ``with_env``:
        it goes to the saved spec (mode 0600) and the daemon, never into the record."""
        data = asdict(self)
        data["command"] = list(self.command)
        data["port_range"] = list(self.port_range) if self.port_range else None
        data["env"] = dict(self.env) if with_env and self.env is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerSpec:
        """Rebuild a spec from a record; raises ValueError/TypeError on bad shapes.
        Each value is checked by its field's decoder (``FIELD_DECODERS``); fields a record
        lacks (written by an older portctl) keep their defaults, others are ignored."""
        kwargs = {name: FIELD_DECODERS[name](name, data[name]) for name in fields(cls) if name in data}
        if "port" not in kwargs or "command" not in kwargs:
            raise KeyError("port and command are required")
        return cls(**kwargs)


# ---------------------------------------------------------------- decoding records
# Records are untrusted JSON: each field has a decoder, (field name, JSON value) -> the
# field's value, raising TypeError or ValueError. ``__post_init__`` then checks the ranges.
def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a boolean")
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    return value


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number")
    return float(value)


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{name} must be a list of strings")
    return tuple(value)


def _port_range(name: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{name} must be a list of two ports")
    return (_int(name, value[0]), _int(name, value[1]))


def _env(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{name} must be an object of strings")
    return tuple(sorted(value.items()))


def _optional(decode: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """``decode`` for an Optional field: null is None."""
    return lambda name, value: None if value is None else decode(name, value)


BACKOFF_DECODERS: dict[str, Callable[[str, Any], Any]] = {
    "initial_s": _float, "factor": _float, "max_s": _float, "reset_after_s": _float,
    "max_restarts": _int, "window_s": _float, "jitter": _float,
}


def _backoff(name: str, value: Any) -> BackoffPolicy:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object")
    return BackoffPolicy(**{k: BACKOFF_DECODERS[k](k, v) for k, v in value.items() if k in BACKOFF_DECODERS})


FIELD_DECODERS: dict[str, Callable[[str, Any], Any]] = {
    "port": _int, "host": _str, "command": _strings, "name": _str,
    "grace_s": _float, "ready_timeout_s": _float, "auto_port": _bool,
    "port_range": _optional(_port_range), "detached": _bool, "restart": _str,
    "health": _str, "health_interval_s": _float, "health_timeout_s": _float, "health_failures": _int,
    "backoff": _backoff, "log_max_bytes": _int, "log_backups": _int,
    "cwd": _str, "executable": _str, "env": _optional(_env), "auto_name": _bool, "stop_signal": _str,
    "timestamps": _bool,
}


def default_restart(detached: bool) -> str:
    """The restart mode when none is given: on-failure for a detached instance, else no."""
    return "on-failure" if detached else "no"


def recorded(spec: ServerSpec) -> ServerSpec:
    """``spec`` as `start` records it: with this shell's environment, and its command's first
    word resolved against that environment's PATH and its working directory, so a restart
    from any shell runs the same program the same way."""
    spec = replace(spec, env=tuple(sorted(os.environ.items())))
    return replace(spec, executable=resolve_executable(spec.command[0], spec.base_env(), spec.cwd))


def restarted(spec: ServerSpec, changes: Mapping[str, Any], *, shell_env: bool) -> ServerSpec:
    """The recorded ``spec`` with the options given to `restart` (``changes``: spec fields,
    ``backoff`` as a dict of the given backoff fields), and this shell's environment if
    ``shell_env`` (or if none was recorded). The executable is looked up again only when the
    command, the working directory or the environment changed. A restart mode that was the
    default for the old detached mode follows a new one, as it would at start."""
    fields = dict(changes)
    backoff = fields.pop("backoff", None)
    if backoff:
        fields["backoff"] = replace(spec.backoff, **backoff)
    if "detached" in fields and "restart" not in fields and spec.restart == default_restart(spec.detached):
        fields["restart"] = default_restart(fields["detached"])
    if "name" in fields:
        fields["auto_name"] = False  # set again if the given name is empty
    elif "command" in fields and spec.auto_name:
        fields["name"] = ""  # derived again from the new command
    if shell_env or spec.env is None:
        fields["env"] = tuple(sorted(os.environ.items()))
    new = replace(spec, **fields)
    if shell_env or not new.executable or {"command", "cwd"} & set(fields):
        new = replace(new, executable=resolve_executable(new.command[0], new.base_env(), new.cwd))
    return new


def resolve_executable(program: str, env: Mapping[str, str], cwd: str = "") -> str:
    """``program`` as an absolute path, "" when it cannot be found: a path is taken relative
    to ``cwd`` (default: ours), a bare name is looked up in ``env``'s PATH, as the shell that
    ran `start` found it; a restart from another shell then runs the same file."""
    import shutil

    where = cwd or os.getcwd()
    if os.sep in program or (os.altsep and os.altsep in program):
        path = os.path.join(where, program)
        return os.path.normpath(path) if os.path.isfile(path) else ""
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    return os.path.normpath(os.path.join(where, found)) if found else ""


def seconds_problem(field: str, value: float) -> str:
    """What is wrong with ``value`` as the timing ``field`` (see SECONDS_MIN); "" if nothing."""
    low, inclusive = SECONDS_MIN[field]
    if not math.isfinite(value) or value > MAX_SECONDS:
        return f"is not a finite number of seconds up to {MAX_SECONDS:g}"
    if value < low or (value == low and not inclusive):
        return f"must be {'>=' if inclusive else '>'} {low:g} s"
    return ""


def check_seconds(field: str, value: object) -> float:
    """``value`` as a float, or BadInput (exit 2) when it is no valid timing for ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{field} must be a number of seconds, not {value!r}")
    problem = seconds_problem(field, float(value))
    if problem:
        raise BadInput(f"{field} {value!r} {problem}")
    return float(value)


def derive_name(command: tuple[str, ...]) -> str:
    """A short instance name from the command: ``uvicorn app.main:app`` -> ``app.main``."""
    if command == demo_command():
        return "demo"
    if "-c" in command[1:2]:  # python -c CODE: the code is no name
        return _clean(os.path.basename(command[0]))
    words = [os.path.basename(a) for a in command if a and not a.startswith("-")]
    interesting = [w for w in words if not w.startswith("python") and w not in ("uvicorn", "-m")]
    base = (interesting or words or ["server"])[0].split(":")[0]
    return _clean(base)


def _clean(word: str) -> str:
    """``word`` made a valid name: other characters become ``-``, no leading ``.`` or ``-``."""
    return _NAME_OK.sub("-", word).lstrip(".-").rstrip("-")[:_NAME_MAX] or "server"

