"""A Compose file (``compose.yaml``): one service per portctl service.

Each service runs the image ``PROJECT-NAME:latest`` (to be built with the service's code; its
WORKDIR plays the part of ``cwd``) and serves on ``0.0.0.0`` inside its container; the other
services reach it at ``http://NAME:PORT`` (its Compose name), so the ``{services.NAME.url}``
placeholders and ``PORTCTL_<NAME>_URL`` variables say that. The port is published on the host
at the same number, on the address the service was to serve on (``127.0.0.1`` stays local). ``env_file`` lists the root's ``.env`` and the service's ``env_file``s
(Compose reads them), ``environment`` the service's ``env`` and portctl's variables, which
win over the files as in portctl. ``health`` becomes a ``curl`` healthcheck (the image needs curl);
Compose interpolates ``$VAR``, so every ``$`` of a command or a value is written ``$$``.
``depends_on`` maps ``started`` to ``service_started`` and ``ready`` / ``healthy`` to
``service_healthy`` when the dependency has a ``health``, else to ``service_started`` (Compose
cannot see a port accept connections without a check).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..project.model import Service
from . import yamltext
from .plan import Manifest, Plan, dns_label, restart_mode, seconds_text, whole_seconds

FILENAME = "compose.yaml"
_RESTART = {"no": "no", "on-failure": "on-failure", "always": "always"}


def render(plan: Plan) -> tuple[Manifest, ...]:
    """The one Compose file of the plan."""
    inner = plan.in_containers()
    services = {dns_label(s.name): _service(inner, s, plan.project.service(s.name).host) for s in inner.services}
    return (Manifest(FILENAME, yamltext.dump({"name": plan.name, "services": services})),)


def _service(plan: Plan, service: Service, host: str) -> dict[str, Any]:
    port = plan.ports[service.name]
    out: dict[str, Any] = {
        "image": f"{plan.name}-{dns_label(service.name)}:latest",
        "command": [_literal(w) for w in plan.command(service, "0.0.0.0")],
        "ports": [published(host, port)],
    }
    if plan.env_files(service):
        out["env_file"] = plan.env_files(service)
    out["environment"] = {k: _literal(v) for k, v in plan.set_environment(service, "0.0.0.0").items()}
    health = plan.health(service)
    if health:
        out["healthcheck"] = {
            "test": ["CMD", "curl", "-fsS", "-o", "/dev/null", "--max-time",
                     str(whole_seconds(service.health_timeout_s)), health_url(health, port)],
            "interval": seconds_text(service.health_interval_s),
            "timeout": seconds_text(service.health_timeout_s),
            "retries": service.health_failures,
            "start_period": seconds_text(service.ready_timeout_s),
        }
    deps = {dns_label(n): {"condition": _condition(plan, n, c)} for n, c in sorted(service.depends_on.items())}
    if deps:
        out["depends_on"] = deps
    out["stop_signal"] = f"SIG{service.stop_signal}"
    out["stop_grace_period"] = seconds_text(service.grace_s)
    out["restart"] = _RESTART[restart_mode(service)]
    return out


def published(host: str, port: int) -> str:
    """The ``ports:`` entry: on the host address the service was served on (``127.0.0.1:P:P``
    keeps it local), on every address for a wildcard host (``P:P``)."""
    if host in ("", "0.0.0.0", "::"):
        return f"{port}:{port}"
    if host == "localhost":
        host = "127.0.0.1"
    return f"[{host}]:{port}:{port}" if ":" in host else f"{host}:{port}:{port}"


def health_url(health: str, port: int) -> str:
    """The URL a check inside the container asks: ``/path`` on the service's own port, or the
    path of a full URL on that URL's port (the service's when it names none)."""
    if health.startswith("/"):
        return f"http://127.0.0.1:{port}{health}"
    parts = urlsplit(health)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme or 'http'}://127.0.0.1:{parts.port or port}{path}"


def _literal(text: str) -> str:
    """``text`` as Compose passes it on: ``$`` doubled, so it interpolates nothing."""
    return text.replace("$", "$$")


def _condition(plan: Plan, name: str, condition: str) -> str:
    if condition == "started" or not plan.project.service(name).health:
        return "service_started"
    return "service_healthy"

