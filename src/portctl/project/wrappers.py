"""The Makefile fragment (`portctl makefile`) and the Windows wrappers (`portctl wrappers`)
of a project, rendered from templates shipped in the package (``portctl/data/``).

The fragment has per-service targets (``start-NAME``, ``stop-NAME``, ``restart-NAME``,
``status-NAME``, ``logs-NAME``, ``force-clean-NAME`` for a service with sweep patterns) and
project-wide ``start``, ``stop``, ``restart``, ``status`` (and ``force-clean``), all behind an
optional prefix. The ``.bat`` wrapper is one file whose name says what it does
(``restart-backend.bat``), so the same text serves every service and verb.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from ..errors import BadInput
from .model import Project

PREFIX = re.compile(r"[A-Za-z0-9._-]*")
VERBS = ("start", "stop", "restart")  # the wrappers `portctl wrappers` writes for each service
MAKEFILES = ("GNUmakefile", "makefile", "Makefile")  # the order GNU make looks for them
_BAT_MARK = "(written by `portctl wrappers`)"
_RULE = re.compile(r"^([^\s:#=][^:#=\n]*?)\s*::?(?!=)", re.MULTILINE)


def template(name: str) -> str:
    """The text of ``portctl/data/NAME``, as the package ships it."""
    from importlib.resources import files

    return files("portctl").joinpath("data").joinpath(name).read_text(encoding="utf-8")


def makefile(project: Project, prefix: str = "") -> str:
    """The fragment for ``project``'s services, its targets named PREFIX + target."""
    if not PREFIX.fullmatch(prefix):
        raise BadInput(f"invalid prefix {prefix!r}", "use letters, digits, '.', '_' and '-' (e.g. --prefix pc-)")
    order = [name for level in project.start_order() for name in level]
    swept = [s.name for s in project.services if s.sweep]
    words = {
        "@FILE@": str(project.file), "@ARGS@": f" --prefix {prefix}" if prefix else "",
        "@NAMES@": ", ".join(project.names()), "@START_ORDER@": " ".join(order),
        "@STOP_ORDER@": " ".join(reversed(order)),
        "@STARTS@": _targets(prefix, "start", order), "@STOPS@": _targets(prefix, "stop", order),
        "@RESTARTS@": _targets(prefix, "restart", order), "@STATUSES@": _targets(prefix, "status", order),
        "@LOGS@": _targets(prefix, "logs", order),
        "@PHONY@": " ".join(_targets(prefix, verb, order) for verb in ("start", "stop", "restart", "status", "logs")),
        "@FORCE_CLEAN_ALL@": f" {prefix}force-clean {_targets(prefix, 'force-clean', swept)}" if swept else "",
        "@FORCE_CLEAN_RULES@": _force_clean_rules(prefix, swept),
    }
    text = template("project.mk")
    for word, value in words.items():
        text = text.replace(word, value)
    return text.replace("@P@", prefix)


def targets(project: Project, prefix: str = "") -> list[str]:
    """Every target the fragment defines."""
    return _rule_names(makefile(project, prefix))


def clashes(project: Project, prefix: str, directory: Path) -> tuple[str, list[str]]:
    """(the Makefile of ``directory`` make would read, the fragment's targets it defines too);
    ("", []) without one."""
    for name in MAKEFILES:
        path = directory / name
        if path.is_file():
            try:
                own = set(_rule_names(path.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                return "", []
            return str(path), [t for t in targets(project, prefix) if t in own]
    return "", []


def bat(up: str = "..") -> str:
    """The wrapper's text, CRLF line endings; ``up``: the project root from the wrapper's
    directory (``..`` for ``scripts\\``)."""
    return template("service.bat").replace("@UP@", up).replace("\r\n", "\n").replace("\n", "\r\n")


def write_wrappers(project: Project, directory: Path) -> list[Path]:
    """``start-NAME.bat``, ``stop-NAME.bat`` and ``restart-NAME.bat`` for every service, in
    ``directory`` (the project root or below it, created when missing). A file of that name
    that `portctl wrappers` did not write is never replaced: BadInput (exit 2) before any write."""
    root = project.root.resolve()
    directory = directory.resolve()
    if directory != root and root not in directory.parents:
        raise BadInput(f"{directory} is not inside the project root {root}",
                       "the wrappers run from the project root: put them in it, e.g. in scripts")
    paths = [directory / f"{verb}-{name}.bat" for name in project.names() for verb in VERBS]
    for path in paths:
        if path.exists() and (not path.is_file() or _BAT_MARK not in _read(path)):
            raise BadInput(f"{path} exists and portctl did not write it; nothing written",
                           "move it away, or write the wrappers to another directory")
    text = bat(os.path.relpath(root, directory).replace("/", "\\"))
    directory.mkdir(parents=True, exist_ok=True)
    for path in paths:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    return paths


def _targets(prefix: str, verb: str, names: Sequence[str]) -> str:
    return " ".join(f"{prefix}{verb}-{name}" for name in names)


def _force_clean_rules(prefix: str, names: Sequence[str]) -> str:
    if not names:
        return ""
    return (f"\n{_targets(prefix, 'force-clean', names)}: {prefix}force-clean-%:\n"
            f"\t$(PORTCTL) clean --sweep $* --force\n"
            f"\n{prefix}force-clean:\n"
            f"\t$(PORTCTL) clean --sweep --force\n")


def _rule_names(text: str) -> list[str]:
    """The targets of a makefile's explicit rules (``a b: deps``, static pattern rules'
    targets included), in order; variables, recipes and comments are no rules."""
    found: list[str] = []
    for match in _RULE.finditer(text):
        for word in match.group(1).split():
            if "$" not in word and "%" not in word and not word.startswith(".") and word not in found:
                found.append(word)
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
