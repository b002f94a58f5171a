"""systemd units: one ``.service`` per service and a ``.target`` for the project.

Mapping (docs/deploy.md has the table):
- ``ExecStart`` is the command as an argv list with its first word resolved to an absolute
  path, as `start` resolves it; no shell wraps it (a Procfile line that needs one already is
  ``sh -c LINE``). ``$`` and ``%`` are escaped, so systemd passes every word as written.
- ``Environment=`` holds the whole environment the project gives (``.env``, ``env_file``,
  ``env``, ``PORTCTL_*``) resolved as portctl resolves it. No ``EnvironmentFile=``: systemd
  reads those after ``Environment=`` (a file would beat ``env``) and without python-dotenv's
  ``${VAR}`` expansion.
- Readiness: ``Type=exec``: a unit is up when its program has been executed. ``depends_on``
  gives ``After=`` and, for ``ready`` and ``healthy``, ``Requires=`` (a
  dependency that fails to start keeps the dependent from starting; stopping or restarting it
  does the same to the dependent); for ``started``, ``Wants=``. systemd has no port or
  HTTP check, so ``ready`` and ``healthy`` wait only for the start.
- Restarts: ``Restart=`` from ``restart``, ``RestartSec=`` the first backoff delay,
  ``StartLimitBurst=`` max_restarts + 1 starts in ``StartLimitIntervalSec=`` restart_window.
- Stop: ``KillSignal=`` stop_signal, ``TimeoutStopSec=`` grace, ``KillMode=mixed`` (the signal
  to the main process, then KILL to what is left of the cgroup, at the latest after the grace:
  no orphans).
"""
from __future__ import annotations

import os

from ..errors import BadInput
from ..project.model import Service
from .plan import Manifest, Plan, restart_mode, seconds_text

_RESTART = {"no": "no", "on-failure": "on-failure", "always": "always"}


def render(plan: Plan) -> tuple[Manifest, ...]:
    """The project's ``.target`` then one ``.service`` per service, in start order."""
    units = [_service(plan, s) for s in plan.services]
    return (_target(plan), *units)


def unit_name(plan: Plan, service: Service) -> str:
    return f"{plan.name}-{service.name}.service"


def _target(plan: Plan) -> Manifest:
    wants = " ".join(unit_name(plan, s) for s in plan.services)
    lines = ["[Unit]", f"Description={plan.name} (portctl project {_escape(str(plan.project.root))})",
             f"Wants={wants}", "", "[Install]", "WantedBy=multi-user.target"]
    return Manifest(f"{plan.name}.target", "\n".join(lines) + "\n")


def _service(plan: Plan, service: Service) -> Manifest:
    argv = plan.command(service, service.host)
    executable = service.to_spec({}, dict(os.environ), plan.ports[service.name]).executable
    if not executable:
        raise BadInput(f"{service.name}: cannot find {argv[0]!r} on PATH or in {service.cwd}",
                       "systemd needs an absolute ExecStart: install the program or give its path")
    argv[0] = executable
    backoff = service.backoff
    unit = ["[Unit]", f"Description={plan.name} {service.name} (portctl)",
            f"PartOf={plan.name}.target"]
    deps = sorted(service.depends_on.items())
    if deps:
        unit.append("After=" + " ".join(unit_name(plan, plan.project.service(n)) for n, _ in deps))
    required = [unit_name(plan, plan.project.service(n)) for n, c in deps if c != "started"]
    wanted = [unit_name(plan, plan.project.service(n)) for n, c in deps if c == "started"]
    if required:
        unit.append("Requires=" + " ".join(required))
    if wanted:
        unit.append("Wants=" + " ".join(wanted))
    unit += [f"StartLimitIntervalSec={seconds_text(backoff.window_s)}",
             f"StartLimitBurst={backoff.max_restarts + 1}"]
    body = ["", "[Service]", "Type=exec", f"WorkingDirectory={_escape(str(service.cwd))}",
            "ExecStart=" + " ".join(_exec_word(w) for w in argv)]
    body += [f"Environment={_quote(f'{k}={v}')}" for k, v in plan.environment(service, service.host).items()]
    body += [f"Restart={_RESTART[restart_mode(service)]}",
             f"RestartSec={seconds_text(backoff.initial_s)}",
             "KillMode=mixed", f"KillSignal=SIG{service.stop_signal}",
             f"TimeoutStopSec={seconds_text(service.grace_s)}",
             "", "[Install]", f"WantedBy={plan.name}.target"]
    return Manifest(unit_name(plan, service), "\n".join(unit + body) + "\n")


def _escape(text: str) -> str:
    """``text`` with systemd's specifier character doubled and newlines escaped."""
    return text.replace("%", "%%").replace("\n", "\\n")


def _quote(text: str) -> str:
    """One word in double quotes, as systemd unquotes it (C escapes, ``%`` doubled)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + _escape(escaped) + '"'


def _exec_word(word: str) -> str:
    """One ExecStart word: ``$`` doubled (no variable expansion), quoted when it must be."""
    word = word.replace("$", "$$")
    plain = word and not any(c in word for c in " \t\n\"'\\;%") and word not in (";", "-", "@", ":", "+", "!")
    return word if plain else _quote(word)
