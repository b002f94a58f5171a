"""A project's services as frozen records, and the pure wiring between them: the start order,
the ``{services.NAME.port|url}`` placeholders, the ``PORTCTL_<NAME>_PORT|URL`` variables, each
service's environment and the ServerSpec the supervisor runs. No I/O here: ``config`` reads
the files (the project file, ``.env``, every ``env_file``) into these records."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Optional

from ..base import defaults
from ..core.backoff import BackoffPolicy
from ..base.errors import BadInput
from ..core.spec import CHILD_STOP_SIGNALS, ServerSpec, resolve_executable

AUTO = 0  # Service.port when any free port will do ("auto")
CONDITIONS = ("started", "ready", "healthy")  # depends_on conditions, as Compose's
STOP_SIGNALS = CHILD_STOP_SIGNALS
DEFAULT_HOST = defaults.HOST
AUTO_FIRST_PORT = defaults.PORT  # where `start --port auto` begins too
_PLACEHOLDER = re.compile(r"\{services\.([A-Za-z0-9_.-]+?)\.(port|url)\}")
_NOT_IN_VAR = re.compile(r"[^A-Za-z0-9_]")


class Service(NamedTuple):
    """One ``[services.NAME]``: what to run, where, on which port, and how to supervise it.

    ``port`` is AUTO (0) for any free port (from ``port_range`` first when one is given).
    ``env`` is the service's own table (``[defaults].env`` merged under it); ``file_env`` the
    values of its ``env_files``, read in order (a later file wins). ``restart`` "" means the
    default of the mode (``on-failure`` detached, else ``no``)."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    port: int = AUTO
    port_range: Optional[tuple[int, int]] = None
    host: str = DEFAULT_HOST
    env: dict[str, str] = {}
    env_files: tuple[Path, ...] = ()
    file_env: dict[str, str] = {}
    health: str = ""
    ready_timeout_s: float = defaults.READY_TIMEOUT_S
    restart: str = ""
    grace_s: float = defaults.GRACE_S
    stop_signal: str = "TERM"
    depends_on: dict[str, str] = {}  # NAME -> started | ready | healthy
    sweep: tuple[str, ...] = ()  # Python regexes matched against command lines
    health_interval_s: float = defaults.HEALTH_INTERVAL_S
    health_timeout_s: float = defaults.HEALTH_TIMEOUT_S
    health_failures: int = defaults.HEALTH_FAILURES
    backoff: BackoffPolicy = BackoffPolicy()
    log_max_bytes: int = defaults.LOG_MAX_BYTES
    log_backups: int = defaults.LOG_BACKUPS
    timestamps: bool = False

    @property
    def auto(self) -> bool:
        """Whether the port is chosen at start (``"auto"``), not fixed."""
        return self.port == AUTO

    def url(self, port: int) -> str:
        """``http://HOST:PORT``, with a wildcard host replaced by the loopback one can connect to."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": DEFAULT_HOST}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def to_spec(self, values: Mapping[str, str], env: Optional[Mapping[str, str]] = None,
                port: Optional[int] = None, *, detached: bool = False) -> ServerSpec:
        """The ServerSpec the supervisor runs for this service. ``values`` are the placeholder
        values (``Project.placeholder_values``); ``env`` the whole child environment (None:
        inherit the supervisor's). ``port`` fixes the port (no other is tried: dependents were
        told this one); None keeps the service's own choice (fixed, or auto from its range).
        Given ``env``, the command's first word is resolved against its PATH and the service's
        cwd, as `start` records it: a restart runs the same program."""
        if port is not None:
            spec_port, port_range, auto = port, None, False
        elif self.auto:
            spec_port = self.port_range[0] if self.port_range else AUTO_FIRST_PORT
            port_range, auto = self.port_range, True
        else:
            spec_port, port_range, auto = self.port, self.port_range, False
        restart = self.restart or ("on-failure" if detached else "no")
        command = tuple(substitute(arg, values) for arg in self.command)
        executable = "" if env is None else resolve_executable(command[0], env, str(self.cwd))
        return ServerSpec(
            port=spec_port, host=self.host, name=self.name,
            command=command, executable=executable,
            grace_s=self.grace_s, ready_timeout_s=self.ready_timeout_s, auto_port=auto,
            port_range=port_range, detached=detached, restart=restart,
            health=substitute(self.health, values), health_interval_s=self.health_interval_s,
            health_timeout_s=self.health_timeout_s, health_failures=self.health_failures,
            backoff=self.backoff, log_max_bytes=self.log_max_bytes, log_backups=self.log_backups,
            stop_signal=self.stop_signal, timestamps=self.timestamps,
            cwd=str(self.cwd), env=None if env is None else tuple(sorted(env.items())))


class Project(NamedTuple):
    """A project: its root (the directory holding ``file``, the default run dir), the file it
    came from (``portctl.toml``, ``pyproject.toml`` or ``Procfile``), its services in file
    order, and the values of the root's ``.env`` (empty without one)."""

    root: Path
    file: Path
    services: tuple[Service, ...]
    dotenv: dict[str, str] = {}

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def service(self, name: str) -> Service:
        """The service NAME; BadInput (exit 2) naming the closest names when there is none."""
        for service in self.services:
            if service.name == name:
                return service
        raise BadInput(f"no service {name!r} in {self.file}", did_you_mean(name, self.names())
                       or f"services: {', '.join(self.names())}")

    def selection(self, names: Iterable[str] = (), *, dependents: bool = False) -> set[str]:
        """``names`` (all services when empty) with everything they depend on, or with
        everything that depends on them (``dependents``): what starting, or stopping, them
        involves."""
        chosen = [self.service(n).name for n in names] or list(self.names())
        edges = self._dependents() if dependents else {s.name: set(s.depends_on) for s in self.services}
        seen: set[str] = set()
        while chosen:
            name = chosen.pop()
            if name not in seen:
                seen.add(name)
                chosen.extend(edges[name])
        return seen

    def start_order(self, names: Iterable[str] = ()) -> tuple[tuple[str, ...], ...]:
        """Levels of service names: each level depends only on earlier ones, so its services
        may start in parallel; each level sorted by name. ``names`` (default all) come with
        their dependencies. BadInput on a cycle (``config`` refuses those earlier)."""
        todo = self.selection(names)
        needs = {n: set(self.service(n).depends_on) & todo for n in todo}
        levels: list[tuple[str, ...]] = []
        while needs:
            ready = tuple(sorted(n for n, deps in needs.items() if not deps))
            if not ready:
                raise BadInput(f"dependency cycle: {' -> '.join(self.find_cycle() or sorted(needs))}")
            levels.append(ready)
            for name in ready:
                del needs[name]
            for deps in needs.values():
                deps.difference_update(ready)
        return tuple(levels)

    def stop_order(self, names: Iterable[str] = ()) -> tuple[tuple[str, ...], ...]:
        """The start order reversed: dependents first. ``names`` (default all) come with every
        service that depends on them, which stops before them."""
        chosen = self.selection(names, dependents=True)
        return tuple(tuple(n for n in level if n in chosen)
                     for level in reversed(self.start_order())
                     if any(n in chosen for n in level))

    def find_cycle(self) -> Optional[list[str]]:
        """One dependency cycle as names, its first name repeated at the end
        (``["api", "worker", "api"]``), or None. Deterministic: searched in file order."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        path: list[str] = []
        known = set(self.names())

        def visit(name: str) -> Optional[list[str]]:
            state[name] = 1
            path.append(name)
            for dep in self.service(name).depends_on:
                if dep not in known:
                    continue
                if state.get(dep) == 1:
                    return path[path.index(dep):] + [dep]
                if dep not in state:
                    found = visit(dep)
                    if found:
                        return found
            path.pop()
            state[name] = 2
            return None

        for name in self.names():
            if name not in state:
                found = visit(name)
                if found:
                    return found
        return None

    def placeholder_values(self, ports: Mapping[str, int]) -> dict[str, str]:
        """``{"services.NAME.port": "8001", "services.NAME.url": "http://127.0.0.1:8001"}``
        for every service whose port is known: given in ``ports`` (the resolved ones), or
        fixed in the file."""
        values = {}
        for service in self.services:
            port = ports.get(service.name) or service.port
            if port:
                values[f"services.{service.name}.port"] = str(port)
                values[f"services.{service.name}.url"] = service.url(port)
        return values

    def portctl_vars(self, ports: Mapping[str, int]) -> dict[str, str]:
        """``PORTCTL_<NAME>_PORT`` and ``PORTCTL_<NAME>_URL`` for every service whose port is
        known (NAME upper-cased, any character but A-Z 0-9 _ as ``_``)."""
        values = self.placeholder_values(ports)
        out = {}
        for name in self.names():
            if f"services.{name}.port" in values:
                var = env_var_name(name)
                out[f"PORTCTL_{var}_PORT"] = values[f"services.{name}.port"]
                out[f"PORTCTL_{var}_URL"] = values[f"services.{name}.url"]
        return out

    def environment(self, name: str, ports: Mapping[str, int],
                    shell: Mapping[str, str]) -> dict[str, str]:
        """The child environment of service NAME, lowest precedence first: ``shell``, the
        root's ``.env``, the service's ``env_file`` values, its ``env`` table (placeholders
        substituted), then the PORTCTL_<NAME>_PORT|URL variables, which always win."""
        service = self.service(name)
        values = self.placeholder_values(ports)
        env = dict(shell)
        env.update(self.dotenv)
        env.update(service.file_env)
        env.update({k: substitute(v, values) for k, v in service.env.items()})
        env.update(self.portctl_vars(ports))
        return env

    def spec(self, name: str, ports: Mapping[str, int], shell: Mapping[str, str], *,
             detached: bool = False) -> ServerSpec:
        """The ServerSpec of service NAME on its resolved port (``ports[NAME]``; else the
        service's own choice), with its whole environment built on ``shell``."""
        service = self.service(name)
        return service.to_spec(self.placeholder_values(ports), self.environment(name, ports, shell),
                               ports.get(name), detached=detached)

    def _dependents(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {n: set() for n in self.names()}
        for service in self.services:
            for dep in service.depends_on:
                out.setdefault(dep, set()).add(service.name)
        return out


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{services.NAME.port}`` / ``{services.NAME.url}`` found in
    ``values`` replaced; others (an auto port not chosen yet) and ``{port}``/``{host}`` (the
    supervisor's own) are left as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(0)[1:-1], m.group(0)), text)


def placeholders(text: str) -> list[tuple[str, str]]:
    """The (NAME, "port"|"url") of every ``{services.NAME.…}`` placeholder in ``text``."""
    return [(m.group(1), m.group(2)) for m in _PLACEHOLDER.finditer(text)]


def env_var_name(name: str) -> str:
    """The NAME part of PORTCTL_<NAME>_PORT: ``web-ui`` -> ``WEB_UI``."""
    return _NOT_IN_VAR.sub("_", name).upper()


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean 'port'?`` for the closest of ``choices``, or ""."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
