"""Finding, reading and validating a project file into a ``model.Project``.

Searched upward from a directory, nearest first; in each directory: ``portctl.toml``, then
``pyproject.toml`` holding ``[tool.portctl]``, then a ``Procfile``. The directory holding the
file is the project root. The root's ``.env`` is read with python-dotenv.

Every problem raises ConfigError (a BadInput: exit 2) naming the file, the line and the key.
TOML parsers give no positions, so the line is found in the text (``_Lines``): the table's
header line (``[services.api]``), then, up to the next header, the first line whose key
(quotes and spaces removed) is the key, or starts the key's dotted path (an inline table).
A key that cannot be found that way is reported at its table's header, else at line 1.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from ..core.backoff import BackoffPolicy
from ..base.errors import BadInput
from ..core.spec import SECONDS_MIN, check_name, seconds_problem
from .model import AUTO, CONDITIONS, STOP_SIGNALS, Project, Service, did_you_mean, placeholders

PROJECT_FILE = "portctl.toml"
PYPROJECT = "pyproject.toml"
PROCFILE = "Procfile"
DOTENV = ".env"
PROCFILE_FIRST_PORT = 5000  # foreman's: entry i prefers 5000 + 100 * i, then the 99 after it
PROCFILE_STEP = 100
RESTART_MODES = ("no", "on-failure", "always")
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~\\\n]|^\w+=")
_TOOL_TABLE = re.compile(r"^[ \t]*\[[ \t]*tool[ \t]*\.[ \t]*portctl[ \t]*[\].]", re.MULTILINE)
# a file key's converter: (loader, key path, raw value) -> the Service field's value
_Convert = Callable[[Any, tuple[str, ...], Any], Any]


class ConfigError(BadInput):
    """A project file problem: ``FILE:LINE: KEY: PROBLEM`` (exit 2)."""

    def __init__(self, file: Path, line: int, key: str, problem: str, hint: str = "") -> None:
        where = f"{file}:{line}" + (f": {key}" if key else "")
        super().__init__(f"{where}: {problem}", hint)
        self.file, self.line, self.key = file, line, key


def find_project(start: Path) -> Optional[Project]:
    """The project whose file is nearest above ``start`` (included), or None when none is."""
    for directory in [start, *start.parents]:
        file = _project_file(directory)
        if file is not None:
            return load_project(file)
    return None


def require_project(start: Path) -> Project:
    """The project of ``start`` (see find_project); BadInput (exit 2) when there is none."""
    project = find_project(start)
    if project is None:
        raise BadInput(f"no project file in {start} or above",
                       f"write a {PROJECT_FILE} (see docs/projects.md), [tool.portctl] in "
                       f"{PYPROJECT}, or a {PROCFILE}")
    return project


def load_project(file: Path) -> Project:
    """The project described by ``file`` (a portctl.toml, a pyproject.toml, or a Procfile)."""
    file = file.resolve()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, 1, "", f"cannot read: {exc}") from None
    dotenv = _dotenv(file.parent)
    if file.name == PROCFILE:
        return Project(file.parent, file, _procfile_services(file, text), dotenv)
    data = _parse_toml(file, text)
    prefix: tuple[str, ...] = ()
    if file.name == PYPROJECT:
        prefix = ("tool", "portctl")
        data = data.get("tool", {}).get("portctl", {})
    return _Loader(file, text, prefix, dotenv).project(data)


def _project_file(directory: Path) -> Optional[Path]:
    if (directory / PROJECT_FILE).is_file():
        return directory / PROJECT_FILE
    pyproject = directory / PYPROJECT
    if pyproject.is_file():
        try:
            if _TOOL_TABLE.search(pyproject.read_text(encoding="utf-8")):
                return pyproject
        except (OSError, UnicodeDecodeError):
            pass
    if (directory / PROCFILE).is_file():
        return directory / PROCFILE
    return None


def _parse_toml(file: Path, text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise ConfigError(file, int(found.group(1)) if found else 1, "",
                          f"not valid TOML: {str(exc).split(' (at ')[0]}") from None


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines with python-dotenv's semantics (quotes, ``export``, ``${VAR}``)."""
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path, interpolate=True).items() if v is not None}


def _dotenv(root: Path) -> dict[str, str]:
    path = root / DOTENV
    return _read_env_file(path) if path.is_file() else {}


class _Lines:
    """Where a key is written: see the module's docstring."""

    def __init__(self, text: str, prefix: tuple[str, ...]) -> None:
        self.lines = text.splitlines()
        self.prefix = prefix
        self.headers = {i: _norm(line.strip()[1:].split("]")[0]) for i, line in enumerate(self.lines)
                        if line.strip().startswith("[") and not line.strip().startswith("[[")}

    def of(self, path: tuple[str, ...]) -> int:
        for cut in range(len(path), -1, -1):
            start = self._header(self.prefix + path[:cut])
            if start is None:
                continue
            rest = ".".join(path[cut:])
            if not rest:
                return max(start + 1, 1)
            for i in range(start + 1, self._next_header(start)):
                key = _norm(self.lines[i].split("=")[0]) if "=" in self.lines[i] else ""
                if key and (key == rest or rest.startswith(key + ".") or key.startswith(rest + ".")):
                    return i + 1
        return 1

    def _header(self, table: tuple[str, ...]) -> Optional[int]:
        if not table:
            return -1
        wanted = ".".join(table)
        return next((i for i, name in self.headers.items() if name == wanted), None)

    def _next_header(self, start: int) -> int:
        return next((i for i in sorted(self.headers) if i > start), len(self.lines))


def _norm(key: str) -> str:
    return re.sub(r"[\s\"']", "", key)


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _string(ld: _Loader, path: tuple[str, ...], value: Any) -> str:
    if not isinstance(value, str):
        raise ld.fail(path, f"must be a string, not {_kind(value)}")
    return value


def _strings(ld: _Loader, path: tuple[str, ...], value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ld.fail(path, f"must be a string or an array of strings, not {_kind(value)}")


def _seconds(field: str) -> _Convert:
    def convert(ld: _Loader, path: tuple[str, ...], value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ld.fail(path, f"must be a number of seconds, not {_kind(value)}")
        problem = seconds_problem(field, float(value))
        if problem:
            raise ld.fail(path, f"{value!r} {problem}")
        return float(value)
    assert field in SECONDS_MIN
    return convert


def _integer(low: int) -> _Convert:
    def convert(ld: _Loader, path: tuple[str, ...], value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ld.fail(path, f"must be an integer >= {low}, not {value!r}")
        return value
    return convert


def _boolean(ld: _Loader, path: tuple[str, ...], value: Any) -> bool:
    if not isinstance(value, bool):
        raise ld.fail(path, f"must be true or false, not {value!r}")
    return value


def _choice(choices: tuple[str, ...]) -> _Convert:
    def convert(ld: _Loader, path: tuple[str, ...], value: Any) -> str:
        if value not in choices:
            raise ld.fail(path, f"must be one of {', '.join(choices)}, not {value!r}",
                          did_you_mean(str(value), choices))
        return str(value)
    return convert


def _command(ld: _Loader, path: tuple[str, ...], value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            words = tuple(shlex.split(value))
        except ValueError as exc:
            raise ld.fail(path, f"cannot be split into words: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        words = tuple(value)
    else:
        raise ld.fail(path, f"must be a string or an array of strings, not {_kind(value)}")
    if not words or not words[0]:
        raise ld.fail(path, "is empty")
    return words


def _cwd(ld: _Loader, path: tuple[str, ...], value: Any) -> Path:
    cwd = (ld.root / _string(ld, path, value)).resolve()
    if not cwd.is_dir():
        raise ld.fail(path, f"{cwd} is not a directory")
    return cwd


def _port(ld: _Loader, path: tuple[str, ...], value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ld.fail(path, f'must be a port number (1-65535) or "auto", not {value!r}')
    return value


def _port_range(ld: _Loader, path: tuple[str, ...], value: Any) -> tuple[int, int]:
    found = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value) if isinstance(value, str) else None
    low, high = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if not 1 <= low <= high <= 65535:
        raise ld.fail(path, f'must be "LOW-HIGH" with 1 <= LOW <= HIGH <= 65535, not {value!r}')
    return low, high


def _host(ld: _Loader, path: tuple[str, ...], value: Any) -> str:
    host = _string(ld, path, value).strip()
    if not host:
        raise ld.fail(path, "is empty")
    return host


def _env(ld: _Loader, path: tuple[str, ...], value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ld.fail(path, f"must be a table, not {_kind(value)}")
    env = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, (int, float)):
            item = str(item)
        elif not isinstance(item, str):
            raise ld.fail(path + (key,), f"must be a string, a number or a boolean, not {_kind(item)}")
        env[key] = item
    return env


def _env_files(ld: _Loader, path: tuple[str, ...], value: Any) -> tuple[Path, ...]:
    files = tuple((ld.root / name).resolve() for name in _strings(ld, path, value))
    for file in files:
        if not file.is_file():
            raise ld.fail(path, f"{file}: no such file")
    return files


def _health(ld: _Loader, path: tuple[str, ...], value: Any) -> str:
    health = _string(ld, path, value)
    if health and not health.startswith(("/", "http://", "https://", "{services.")):
        raise ld.fail(path, f"must be a path (/health) or an http(s) URL, not {value!r}")
    return health


def _stop_signal(ld: _Loader, path: tuple[str, ...], value: Any) -> str:
    name = _string(ld, path, value).upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in STOP_SIGNALS:
        raise ld.fail(path, f"must be one of {', '.join(STOP_SIGNALS)}, not {value!r}",
                      did_you_mean(name, STOP_SIGNALS))
    return name


def _depends_on(ld: _Loader, path: tuple[str, ...], value: Any) -> dict[str, str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {name: "ready" for name in value}
    if not isinstance(value, dict):
        raise ld.fail(path, f"must be an array of names or a table NAME = CONDITION, not {_kind(value)}")
    for name, condition in value.items():
        if condition not in CONDITIONS:
            raise ld.fail(path + (name,), f"must be one of {', '.join(CONDITIONS)}, not {condition!r}",
                          did_you_mean(str(condition), CONDITIONS))
    return dict(value)


def _sweep(ld: _Loader, path: tuple[str, ...], value: Any) -> tuple[str, ...]:
    patterns = _strings(ld, path, value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ld.fail(path, f"{pattern!r} is not a regular expression: {exc}") from None
    return patterns


# file key -> (Service field, converter); "backoff.X" fields make the BackoffPolicy
KEYS: dict[str, tuple[str, _Convert]] = {
    "command": ("command", _command),
    "cwd": ("cwd", _cwd),
    "port": ("port", _port),
    "port_range": ("port_range", _port_range),
    "host": ("host", _host),
    "env": ("env", _env),
    "env_file": ("env_files", _env_files),
    "health": ("health", _health),
    "ready_timeout": ("ready_timeout_s", _seconds("ready_timeout_s")),
    "restart": ("restart", _choice(RESTART_MODES)),
    "grace": ("grace_s", _seconds("grace_s")),
    "stop_signal": ("stop_signal", _stop_signal),
    "depends_on": ("depends_on", _depends_on),
    "sweep": ("sweep", _sweep),
    "health_interval": ("health_interval_s", _seconds("health_interval_s")),
    "health_timeout": ("health_timeout_s", _seconds("health_timeout_s")),
    "health_failures": ("health_failures", _integer(1)),
    "backoff_initial": ("backoff.initial_s", _seconds("initial_s")),
    "backoff_max": ("backoff.max_s", _seconds("max_s")),
    "backoff_reset": ("backoff.reset_after_s", _seconds("reset_after_s")),
    "max_restarts": ("backoff.max_restarts", _integer(0)),
    "restart_window": ("backoff.window_s", _seconds("window_s")),
    "log_max_bytes": ("log_max_bytes", _integer(1024)),
    "log_backups": ("log_backups", _integer(1)),
    "timestamps": ("timestamps", _boolean),
}
SERVICE_ONLY = ("command", "port", "depends_on", "sweep")  # not in [defaults]


class _Loader:
    """Builds a Project from the parsed table, raising ConfigError at the first problem."""

    def __init__(self, file: Path, text: str, prefix: tuple[str, ...], dotenv: dict[str, str]) -> None:
        self.file, self.root, self.dotenv = file, file.parent, dotenv
        self.lines = _Lines(text, prefix)
        self.prefix = prefix

    def fail(self, path: tuple[str, ...], problem: str, hint: str = "") -> ConfigError:
        return ConfigError(self.file, self.lines.of(path), ".".join(self.prefix + path), problem, hint)

    def project(self, data: dict[str, Any]) -> Project:
        self.known(data, (), ("defaults", "services"))
        defaults = self.table(data, ("defaults",))
        for key in SERVICE_ONLY:
            if key in defaults:
                raise self.fail(("defaults", key), "not a project-wide setting",
                                f"set {key} in each [services.NAME] table")
        self.known(defaults, ("defaults",), [k for k in KEYS if k not in SERVICE_ONLY])
        base = self.fields(defaults, ("defaults",))
        tables = self.table(data, ("services",))
        if not tables:
            raise self.fail(("services",) if "services" in data else (), "no services defined",
                            'add a [services.NAME] table with command = "..."')
        services = tuple(self.service(name, self.table(tables, ("services", name)), base)
                         for name in tables)
        project = Project(self.root, self.file, services, self.dotenv)
        self.check_links(project)
        return project

    def table(self, data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        value = data.get(path[-1], {})
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, not {_kind(value)}")
        return value

    def known(self, data: dict[str, Any], path: tuple[str, ...], allowed: Any) -> None:
        for key in data:
            if key not in allowed:
                hint = did_you_mean(key.replace("-", "_"), allowed) or did_you_mean(key, allowed)
                raise self.fail(path + (key,), "unknown key", hint)

    def fields(self, data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        return {KEYS[key][0]: KEYS[key][1](self, path + (key,), value) for key, value in data.items()}

    def service(self, name: str, data: dict[str, Any], base: dict[str, Any]) -> Service:
        path = ("services", name)
        try:
            check_name(name)
        except BadInput as exc:
            raise self.fail(path, exc.message, exc.hint) from None
        self.known(data, path, KEYS)
        if "command" not in data:
            raise self.fail(path, "no command", 'add command = "..."')
        fields = dict(base)
        own = self.fields(data, path)
        env = {**fields.get("env", {}), **own.get("env", {})}
        fields.update(own)
        fields["env"] = env
        backoff = {key[8:]: fields.pop(key) for key in list(fields) if key.startswith("backoff.")}
        fields["backoff"] = BackoffPolicy(**backoff)
        fields.setdefault("cwd", self.root)
        file_env: dict[str, str] = {}
        for env_file in fields.get("env_files", ()):
            file_env.update(_read_env_file(env_file))
        return Service(name=name, file_env=file_env, **fields)

    def check_links(self, project: Project) -> None:
        """Names in depends_on and placeholders, cycles, and fixed ports used twice."""
        names = project.names()
        for service in project.services:
            path = ("services", service.name)
            for dep in service.depends_on:
                if dep not in names:
                    raise self.fail(path + ("depends_on",), f"unknown service {dep!r}",
                                    did_you_mean(dep, names) or f"services: {', '.join(names)}")
            texts: list[tuple[tuple[str, ...], str]] = [(path + ("command",), a) for a in service.command]
            texts += [(path + ("health",), service.health)]
            texts += [(path + ("env", key), value) for key, value in service.env.items()]
            for where, text in texts:
                for name, _ in placeholders(text):
                    if name not in names:
                        raise self.fail(where, f"unknown service {name!r} in {{services.{name}.…}}",
                                        did_you_mean(name, names) or f"services: {', '.join(names)}")
        cycle = project.find_cycle()
        if cycle:
            raise self.fail(("services", cycle[0], "depends_on"), f"dependency cycle: {' -> '.join(cycle)}")
        owners: dict[int, str] = {}
        for service in project.services:
            if service.port != AUTO:
                other = owners.setdefault(service.port, service.name)
                if other != service.name:
                    line = self.lines.of(("services", other, "port"))
                    raise self.fail(("services", service.name, "port"),
                                    f"port {service.port} is also the port of service {other!r} (line {line})",
                                    'give each service its own port, or port = "auto"')


def _procfile_services(file: Path, text: str) -> tuple[Service, ...]:
    """``NAME: COMMAND`` lines (``#`` comments and blank lines skipped), in order. Entry i
    prefers port 5000 + 100 * i (foreman's), then the 99 ports after it."""
    services: list[Service] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = re.fullmatch(r"([^:\s]+)\s*:\s*(.*)", stripped)
        if not found or not found.group(2):
            raise ConfigError(file, number, "", "expected NAME: COMMAND")
        name, command = found.groups()
        try:
            check_name(name)
        except BadInput as exc:
            raise ConfigError(file, number, name, exc.message, exc.hint) from None
        if name in seen:
            raise ConfigError(file, number, name, f"defined twice (first on line {seen[name]})")
        seen[name] = number
        port = PROCFILE_FIRST_PORT + PROCFILE_STEP * len(services)
        services.append(Service(name, procfile_command(command), file.parent, port,
                                (port, min(port + PROCFILE_STEP - 1, 65535))))
    if not services:
        raise ConfigError(file, 1, "", "no services defined", "add a line NAME: COMMAND")
    return tuple(services)


def procfile_command(line: str) -> tuple[str, ...]:
    """A Procfile command as argv: split into words, ``$PORT`` as portctl's ``{port}``;
    one using other shell syntax (``&&``, pipes, variables, ``A=b cmd``) runs as
    ``sh -c LINE``, which sees PORT in its environment."""
    simple = re.sub(r"\$\{PORT\}|\$PORT\b", "{port}", line)
    if not _SHELL_SYNTAX.search(simple):
        try:
            return tuple(shlex.split(simple))
        except ValueError:
            pass
    return ("sh", "-c", line)
