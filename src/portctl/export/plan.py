"""What every export target needs from a project: the chosen services in start order, a fixed
port for each (the targets have no dynamic ports), their environments and their commands.

A dynamic port (``"auto"``, or a port with a ``port_range`` to fall back on) becomes the port
the service holds when it runs (read from the run dir's records), else its first candidate:
its own port, or for ``"auto"`` the first of ``port_range`` (else 8000 on) not fixed by another
service; either way a warning says so.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from ..errors import BadInput
from ..project.model import AUTO_FIRST_PORT, Project, Service, substitute

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


class Manifest(NamedTuple):
    """One output file: its name (no directory) and its whole text."""

    filename: str
    text: str


class Export(NamedTuple):
    """The files of one target, in a fixed order, and the warnings to show on stderr."""

    manifests: tuple[Manifest, ...]
    warnings: tuple[str, ...]


class Plan(NamedTuple):
    """The project, the exported services in start order, and each one's fixed port."""

    project: Project
    services: tuple[Service, ...]
    ports: dict[str, int]
    warnings: tuple[str, ...]

    @property
    def name(self) -> str:
        """The project's name: its root directory's, as a DNS label (``my_app`` -> ``my-app``)."""
        return dns_label(self.project.root.name or "portctl")

    def environment(self, service: Service, host: str) -> dict[str, str]:
        """The variables the project gives ``service`` (``.env``, ``env_file``, ``env``,
        ``PORTCTL_<NAME>_*``, then ``PORT`` and ``HOST``; not the shell's), sorted by name.
        ``host`` is the address it serves on."""
        env = self.project.environment(service.name, self.ports, {})
        env.update(PORT=str(self.ports[service.name]), HOST=host)
        return dict(sorted(env.items()))

    def set_environment(self, service: Service, host: str) -> dict[str, str]:
        """Only the variables set in the project file (``env``) and by portctl
        (``PORTCTL_<NAME>_*``, ``PORT``, ``HOST``), sorted: for a target that reads the
        ``.env`` and ``env_file`` files itself."""
        values = self.project.placeholder_values(self.ports)
        env = {k: substitute(v, values) for k, v in service.env.items()}
        env.update(self.project.portctl_vars(self.ports))
        env.update(PORT=str(self.ports[service.name]), HOST=host)
        return dict(sorted(env.items()))

    def env_files(self, service: Service) -> list[str]:
        """The files the service's environment is read from, lowest precedence first: the
        root's ``.env`` (when it has values), then its ``env_file``s."""
        files = [self.project.root / ".env"] if self.project.dotenv else []
        return [str(p) for p in files + list(service.env_files)]

    def command(self, service: Service, host: str) -> list[str]:
        """The service's command with every placeholder substituted, ``{host}`` as ``host``."""
        port = self.ports[service.name]
        spec = service.to_spec(self.project.placeholder_values(self.ports), port=port)
        return [arg.replace("{port}", str(port)).replace("{host}", host) for arg in spec.command]

    def health(self, service: Service) -> str:
        """The service's ``health`` with its placeholders substituted ("" for TCP accept)."""
        return service.to_spec(self.project.placeholder_values(self.ports)).health

    def in_containers(self) -> Plan:
        """This plan as containers see it: each service reached at its own name
        (``http://api:8000``), the name a Compose service and a Kubernetes Service answer to."""
        services = tuple(s._replace(host=dns_label(s.name)) for s in self.project.services)
        project = self.project._replace(services=services)
        chosen = tuple(project.service(s.name) for s in self.services)
        return self._replace(project=project, services=chosen)


def make_plan(project: Project, names: Iterable[str], running: Mapping[str, int]) -> Plan:
    """The plan for ``names`` (all when empty) and their dependencies: fixed ports first, then
    the running ports, then each remaining dynamic one on its first candidate not taken."""
    order = [n for level in project.start_order(names) for n in level]
    services = tuple(project.service(n) for n in order)
    dynamic = [s for s in project.services if s.auto or s.port_range is not None]
    ports = {s.name: s.port for s in project.services if not (s.auto or s.port_range is not None)}
    warnings: list[str] = []

    def fix(service: Service, port: int, why: str) -> None:
        ports[service.name] = port
        if service.name in order:
            was = '"auto"' if service.auto else f"{service.port} (range {_range_text(service)})"
            warnings.append(f"{service.name}: port {was} fixed to {port}{why}")

    for service in dynamic:
        if running.get(service.name):
            fix(service, running[service.name], ", the port it runs on now")
    for service in dynamic:
        if service.name not in ports:
            port = service.port if not service.auto else _first_candidate(service, set(ports.values()))
            fix(service, port, " (not running; its first candidate)")
    _check_dns_names(services)
    return Plan(project, services, ports, tuple(warnings))


def running_ports(project: Project, run_dir: Path) -> dict[str, int]:
    """The port each service of ``project`` holds now, from the run dir's records."""
    from ..runfiles import RunDir
    from ..status import find_live

    found = {}
    for name in project.names():
        live = find_live(RunDir(run_dir), name)
        if live is not None:
            found[name] = live.port
    return found


def _range_text(service: Service) -> str:
    low, high = service.port_range or (0, 0)
    return f"{low}-{high}"


def _first_candidate(service: Service, taken: set[int]) -> int:
    low, high = service.port_range or (AUTO_FIRST_PORT, 65535)
    for port in range(low, high + 1):
        if port not in taken:
            return port
    raise BadInput(f"{service.name}: no port of {low}-{high} is left for the export")


def dns_label(name: str) -> str:
    """``name`` as an RFC 1035 label (lower case, ``-`` for anything else, starts with a
    letter, at most 63 characters), what Kubernetes wants of a Service's name."""
    label = _NOT_DNS.sub("-", name.lower()).strip("-")
    if not label[:1].isalpha():
        label = "s-" + label
    return label[:63].rstrip("-")


def _check_dns_names(services: tuple[Service, ...]) -> None:
    seen: dict[str, str] = {}
    for service in services:
        label = dns_label(service.name)
        if label in seen:
            raise BadInput(f"services {seen[label]!r} and {service.name!r} have the same DNS name "
                           f"{label!r} in an export", "rename one of them")
        seen[label] = service.name


def seconds_text(seconds: float) -> str:
    """A duration as ``5s`` or ``1500ms`` (Compose's and systemd's syntax; whole ms)."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def whole_seconds(seconds: float, least: int = 1) -> int:
    """``seconds`` rounded up to a whole number, at least ``least`` (Kubernetes' fields)."""
    return max(least, math.ceil(seconds))


def restart_mode(service: Service) -> str:
    """The restart policy exported: the service's, or ``on-failure`` (the detached default)."""
    return service.restart or "on-failure"
