"""Rendering a project for an engine that already exists: systemd units, a Compose file,
Kubernetes manifests (``portctl export``). Pure text from the project model; the only thing
read from outside is the port a running service holds (``plan.running_ports``).

``plan`` fixes the ports and gathers what every target needs; ``systemd``, ``compose`` and
``kubernetes`` each render it; ``yamltext`` writes the YAML of the last two deterministically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Optional

from ..project.model import Project
from .plan import Export, Manifest, make_plan

TARGETS = ("systemd", "compose", "kubernetes")

__all__ = ["TARGETS", "Export", "Manifest", "export", "joined", "write_files"]


def export(target: str, project: Project, names: Iterable[str] = (),
           running: Optional[Mapping[str, int]] = None) -> Export:
    """The files of ``target`` for the services ``names`` (all when empty) and what they
    depend on. ``running`` maps a running service to the port it holds (see
    ``plan.running_ports``); an ``"auto"`` port is fixed to it, else to its first candidate."""
    plan = make_plan(project, names, running or {})
    if target == "systemd":
        from .systemd import render
    elif target == "compose":
        from .compose import render
    elif target == "kubernetes":
        from .kubernetes import render
    else:
        raise ValueError(f"unknown export target {target!r}")
    return Export(render(plan), plan.warnings)


def joined(target: str, manifests: Iterable[Manifest]) -> str:
    """All the files as one text for stdout: YAML documents separated by ``---``; units each
    under a ``# FILENAME`` comment line, separated by a blank line."""
    if target == "systemd":
        return "\n".join(f"# {m.filename}\n{m.text}" for m in manifests)
    return "---\n".join(m.text for m in manifests)


def write_files(directory: Path, manifests: Iterable[Manifest]) -> list[Path]:
    """Each manifest written to ``directory/FILENAME`` (the directory made when missing);
    the paths written, in order. OSError as BadInput (exit 2), naming the path."""
    from ..errors import BadInput

    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for manifest in manifests:
            path = directory / manifest.filename
            path.write_text(manifest.text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise BadInput(f"cannot write the export to {directory}: {exc.strerror or exc}") from None
    return written
