"""What to run: one frozen description of a server instance, recorded from the first start."""
from __future__ import annotations

import os
import re
import sys
from ._record import Frozen, asdict, fields, replace
from .backoff import BackoffPolicy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_GRACE_S = 5.0
DEFAULT_READY_TIMEOUT_S = 30.0
RESTART_MODES = ("no", "on-failure", "always")

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME_MAX = 40


def demo_command() -> tuple[str, ...]:
    """The embedded demo app, run with the same interpreter as portctl."""
    return (sys.executable, "-m", "portctl.demo", "--host", "{host}", "--port", "{port}")


class ServerSpec(Frozen):
    """A server to supervise: its name, address, command, and how to stop, probe and restart it.

    ``command`` may contain ``{port}`` and ``{host}``; they are substituted at launch.
    An empty command means the embedded demo app.
    """

    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    command: tuple[str, ...] = ()
    name: str = ""
    grace_s: float = DEFAULT_GRACE_S
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    auto_port: bool = False  # any free port will do
    port_range: Optional[tuple[int, int]] = None  # candidates after ``port``
    detached: bool = False
    restart: str = "no"  # no | on-failure | always
    health: str = ""  # "" = TCP accept; a path (/health) or a URL = HTTP 2xx
    health_interval_s: float = 10.0
    health_timeout_s: float = 1.0
    health_failures: int = 3
    backoff: BackoffPolicy = BackoffPolicy()
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5

    @property
    def dynamic(self) -> bool:
        """Whether another port may be chosen when ``port`` is taken."""
        return self.auto_port or self.port_range is not None

    def __post_init__(self) -> None:
        if not self.command:
            object.__setattr__(self, "command", demo_command())
        if not self.name:
            object.__setattr__(self, "name", derive_name(self.command))
        if self.restart not in RESTART_MODES:
            raise ValueError(f"restart must be one of {', '.join(RESTART_MODES)}")

    def argv(self) -> list[str]:
        """The command with ``{port}`` and ``{host}`` substituted (nothing else is touched)."""
        return [
            arg.replace("{port}", str(self.port)).replace("{host}", self.host)
            for arg in self.command
        ]

    def child_env(self, token: str, run_dir: str = "",
                  base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The child's environment: the caller's plus PORT and HOST, and the instance's
        token, name, run dir and port (inherited by every descendant, so `who` and `clean`
        can tell our processes from others, and `who` can name the instance's record)."""
        env = dict(os.environ if base is None else base)
        env.update(PORT=str(self.port), HOST=self.host, PORTCTL_TOKEN=token,
                   PORTCTL_NAME=self.name, PORTCTL_RUN_DIR=run_dir, PORTCTL_PORT=str(self.port))
        env.setdefault("PYTHONUNBUFFERED", "1")  # a Python child's print() reaches the log at once
        return env

    def with_port(self, port: int) -> ServerSpec:
        return replace(self, port=port)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["command"] = list(self.command)
        data["port_range"] = list(self.port_range) if self.port_range else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerSpec:
        """Rebuild a spec from a record; raises ValueError/TypeError on bad shapes.
        Fields a record lacks (written by an older portctl) keep their defaults."""
        defaults = cls(command=("x",))
        kwargs: dict[str, Any] = {}
        for name in fields(cls):
            if name in data:
                kwargs[name] = _typed(name, data[name], getattr(defaults, name))
        if "port" not in kwargs or "command" not in kwargs:
            raise KeyError("port and command are required")
        return cls(**kwargs)


def _typed(name: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the field's default (records are untrusted)."""
    if name == "command":
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise ValueError("command must be a list of strings")
        return tuple(value)
    if name == "port_range":
        if value is None:
            return None
        low, high = value
        return (_int(low), _int(high))
    if isinstance(default, BackoffPolicy):
        if not isinstance(value, dict):
            raise ValueError("backoff must be an object")
        return BackoffPolicy(**{k: _typed(k, v, getattr(default, k)) for k, v in value.items()
                                if k in fields(default)})
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a boolean")
        return value
    if isinstance(default, int):
        return _int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number")
        return float(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def derive_name(command: tuple[str, ...]) -> str:
    """A short instance name from the command: ``uvicorn app.main:app`` -> ``app.main``."""
    if command == demo_command():
        return "demo"
    if "-c" in command[1:2]:  # python -c CODE: the code is no name
        return _NAME_OK.sub("-", os.path.basename(command[0])).strip("-")[:_NAME_MAX] or "server"
    words = [os.path.basename(a) for a in command if a and not a.startswith("-")]
    interesting = [w for w in words if not w.startswith("python") and w not in ("uvicorn", "-m")]
    base = (interesting or words or ["server"])[0].split(":")[0]
    return _NAME_OK.sub("-", base).strip("-")[:_NAME_MAX] or "server"


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value
