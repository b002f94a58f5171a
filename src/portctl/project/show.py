"""The resolved project as data and as text, for `portctl config check` and `config show`.

Nothing is started, so an ``"auto"`` port shows as ``auto`` and the placeholders naming it
stay as written; fixed ports are substituted. The environment shown is what the project adds
to the shell's (``.env``, ``env_file``, ``env``, ``PORTCTL_<NAME>_*``), never the shell's own.
Values of keys that look secret (``SECRET``, ``TOKEN``, ``PASSWORD``, ``KEY``, …) show as
``***``, in the text and in ``--json``: the output ends up in terminals, logs and issues.
"""
from __future__ import annotations

import re
from typing import Any

from .model import Project, Service

MASK = "***"
_SECRET = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|(^|_)(API_?)?KEY($|_)",
                     re.IGNORECASE)


def summary(project: Project) -> str:
    """One line: the file, the services and the start order."""
    names = project.names()
    return (f"{project.file}: ok, {len(names)} service{'s' if len(names) != 1 else ''} "
            f"({', '.join(names)}), start order: {order_text(project)}")


def order_text(project: Project) -> str:
    """``api, db; web``: levels separated by ``;``, the services of a level start together."""
    return "; ".join(", ".join(level) for level in project.start_order())


def describe(project: Project) -> dict[str, Any]:
    """The project as JSON-able data (the ``config show --json`` document)."""
    return {
        "root": str(project.root),
        "file": str(project.file),
        "start_order": [list(level) for level in project.start_order()],
        "services": [_service(project, s) for s in project.services],
    }


def lines(project: Project) -> list[str]:
    """``config show``'s text: one block per service, then the start order."""
    out = [f"project {project.root} ({project.file.name})"]
    for item in describe(project)["services"]:
        out.append(f"{item['name']}:")
        out.append(f"  command: {' '.join(item['command'])}")
        out.append(f"  cwd: {item['cwd']}")
        port = item["port"] if item["port_range"] is None else f"{item['port']} (range {item['port_range']})"
        out.append(f"  port: {port}  url: {item['url'] or '(when started)'}")
        if item["depends_on"]:
            out.append("  depends on: " + ", ".join(f"{n} ({c})" for n, c in item["depends_on"].items()))
        if item["health"]:
            out.append(f"  health: {item['health']}")
        restart = item["restart"] or "no (on-failure with -d)"
        out.append(f"  restart: {restart}  grace: {item['grace_s']:g} s  stop signal: {item['stop_signal']}")
        if item["sweep"]:
            out.append(f"  sweep: {', '.join(item['sweep'])}")
        if item["env"]:
            out.append("  env:")
            out.extend(f"    {key}={value}" for key, value in item["env"].items())
    out.append(f"start order: {order_text(project)}")
    return out


def _service(project: Project, service: Service) -> dict[str, Any]:
    values = project.placeholder_values({})
    env = project.environment(service.name, {}, {})
    port = service.port or None
    return {
        "name": service.name,
        "command": list(service.to_spec(values).command),
        "cwd": str(service.cwd),
        "port": port or "auto",
        "port_range": f"{service.port_range[0]}-{service.port_range[1]}" if service.port_range else None,
        "host": service.host,
        "url": service.url(port) if port else None,
        "depends_on": dict(service.depends_on),
        "health": service.to_spec(values).health,
        "ready_timeout_s": service.ready_timeout_s,
        "restart": service.restart or None,  # None: the mode's default
        "grace_s": service.grace_s,
        "stop_signal": service.stop_signal,
        "sweep": list(service.sweep),
        "env_files": [str(p) for p in service.env_files],
        "env": {key: MASK if _SECRET.search(key) else value for key, value in sorted(env.items())},
    }
