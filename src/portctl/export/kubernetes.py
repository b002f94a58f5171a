"""Kubernetes manifests: a Deployment and a Service per portctl service (apps/v1, v1).

Like Compose, each Deployment runs the image ``PROJECT-NAME:latest`` serving on ``0.0.0.0``,
and the other services reach it through its Service at ``http://NAME:PORT``. The whole
environment (``.env``, ``env_file``, ``env``, ``PORTCTL_*``) is inlined in ``env``, resolved
as portctl resolves it. ``health`` gives an HTTP readiness and liveness probe; without one,
both probe the TCP port. ``ready_timeout`` bounds a startup probe. ``depends_on`` does not
map: Kubernetes starts every Deployment at once and only routes traffic to ready pods.
"""
from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from ..project.model import Service
from . import yamltext
from .plan import Manifest, Plan, dns_label, whole_seconds


def render(plan: Plan) -> tuple[Manifest, ...]:
    """``NAME-deployment.yaml`` and ``NAME-service.yaml`` per service, in start order."""
    inner = plan.in_containers()
    out: list[Manifest] = []
    for service in inner.services:
        name = dns_label(service.name)
        out.append(Manifest(f"{name}-deployment.yaml", yamltext.dump(_deployment(inner, service))))
        out.append(Manifest(f"{name}-service.yaml", yamltext.dump(_service(inner, service))))
    return tuple(out)


def _labels(plan: Plan, service: Service) -> dict[str, str]:
    return {"app.kubernetes.io/name": dns_label(service.name), "app.kubernetes.io/part-of": plan.name}


def _deployment(plan: Plan, service: Service) -> dict[str, Any]:
    port = plan.ports[service.name]
    container: dict[str, Any] = {
        "name": dns_label(service.name),
        "image": f"{plan.name}-{dns_label(service.name)}:latest",
        "command": plan.command(service, "0.0.0.0"),
        "ports": [{"name": "serve", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in plan.environment(service, "0.0.0.0").items()],
    }
    container.update(_probes(plan, service, port))
    labels = _labels(plan, service)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": dns_label(service.name), "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": whole_seconds(service.grace_s, least=0),
                    "containers": [container],
                },
            },
        },
    }


def _probes(plan: Plan, service: Service, port: int) -> dict[str, Any]:
    health = plan.health(service)
    if health:
        parts = urlsplit(health)
        path = health if health.startswith("/") else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        action: dict[str, Any] = {"httpGet": {"path": path, "port": parts.port or port,
                                              "scheme": "HTTPS" if parts.scheme == "https" else "HTTP"}}
    else:
        action = {"tcpSocket": {"port": port}}
    period = whole_seconds(service.health_interval_s)
    timing = {"periodSeconds": period, "timeoutSeconds": whole_seconds(service.health_timeout_s)}
    return {
        "startupProbe": {**action, "periodSeconds": 1, "timeoutSeconds": timing["timeoutSeconds"],
                         "failureThreshold": max(1, math.ceil(service.ready_timeout_s))},
        "readinessProbe": {**action, **timing, "failureThreshold": 1},
        "livenessProbe": {**action, **timing, "failureThreshold": service.health_failures},
    }


def _service(plan: Plan, service: Service) -> dict[str, Any]:
    port = plan.ports[service.name]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": dns_label(service.name), "labels": _labels(plan, service)},
        "spec": {
            "selector": _labels(plan, service),
            "ports": [{"name": "serve", "port": port, "targetPort": "serve", "protocol": "TCP"}],
        },
    }
