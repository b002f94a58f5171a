"""The stray sweep (`portctl clean --sweep`): the current user's processes whose command line
matches a service's ``sweep`` patterns, found under the project root (by their working
directory) or anywhere, listed, and stopped as whole trees only when asked.

Never a candidate: this process and its ancestors; a process running portctl (a supervisor,
another command); a process carrying the ``PORTCTL_TOKEN`` of a live portctl instance (the
services portctl runs are stopped with `portctl stop`); a process whose tree holds one of
those. Stopping goes through ``terminate.stop_tree`` (the stop signal, the service's grace,
then KILL, leaves first); under the production policy only processes portctl started (a
token of this run dir's instances) may be stopped, and every refusal comes before any signal.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import psutil

from ..base import messages
from ..core import policy, ports
from ..base.errors import BadInput, PolicyRefused
from ..core.identity import ancestors, is_alive
from ..core.owners import live_owner, token_of, tokens
from ..core.runfiles import RunDir
from ..core.terminate import descendants, stop_tree
from .model import Project, Service


class Stray(NamedTuple):
    """A process matching a service's sweep patterns."""

    proc: psutil.Process
    service: str
    cmdline: tuple[str, ...]
    cwd: str  # "" when it cannot be read
    started: float  # creation time, seconds since the epoch

    def row(self, now: float) -> list[str]:
        """PID, SERVICE, AGE, CWD, COMMAND, as ``render.table`` shows them."""
        return [str(self.proc.pid), self.service, age(now - self.started), self.cwd or "?",
                messages.short_command(self.cmdline, 1000)]


def services(project: Project, names: Sequence[str]) -> list[Service]:
    """The services NAME... (each must have sweep patterns), or every one that has some."""
    if names:
        chosen = [project.service(name) for name in names]
        bare = [s.name for s in chosen if not s.sweep]
        if bare:
            raise BadInput.no_sweep_patterns(bare, str(project.file))
        return chosen
    chosen = [s for s in project.services if s.sweep]
    if not chosen:
        raise BadInput.no_sweep_patterns(list(project.names()), str(project.file))
    return chosen


def find(project: Project, names: Sequence[str] = (), *, anywhere: bool = False) -> list[Stray]:
    """The strays of the services NAME... (default: every service with sweep patterns): the
    user's live processes whose command line, its words joined by spaces, matches one of the
    service's patterns (``re.search``), whose working directory lies under the project root
    unless ``anywhere``, and which are no process of portctl's (see the module's docstring).
    A process matching several services counts once, for the first in file order."""
    patterns = [(s.name, [re.compile(p) for p in s.sweep]) for s in services(project, names)]
    me = psutil.Process()
    user = me.username()
    spared = {me.pid, *(p.pid for p in ancestors(me))}
    root = project.root.resolve()
    found = []
    for proc in psutil.process_iter(["username", "cmdline", "create_time"], ad_value=None):
        cmdline = tuple(proc.info["cmdline"] or ())
        if proc.pid in spared or proc.info["username"] != user or not cmdline:
            continue
        text = " ".join(cmdline)
        service = next((name for name, regexes in patterns if any(r.search(text) for r in regexes)), None)
        if service is None:
            continue
        cwd = _cwd(proc)
        if not anywhere and not _under(cwd, root):
            continue
        if _is_protected(proc, cmdline, spared) or any(_is_protected(p, _cmdline(p), spared)
                                                       for p in descendants(proc.pid)):
            continue
        if is_alive(proc):
            found.append(Stray(proc, service, cmdline, cwd, proc.info["create_time"] or time.time()))
    return found


def stop(project: Project, strays: Sequence[Stray], run_dir: RunDir) -> list[int]:
    """Stop ``strays`` as whole trees, each service's with its grace period; return their
    pids. Under the production policy, any stray portctl did not start (its PORTCTL_TOKEN is
    no instance token of ``run_dir``) refuses the lot (PolicyRefused, exit 5) before any signal."""
    if policy.in_force() == policy.PRODUCTION:
        ours = tokens(run_dir)
        for stray in strays:
            if token_of(stray.proc) not in ours:
                raise PolicyRefused.sweep(stray.proc.pid, stray.service)
    if strays:
        policy.logger().info(messages.sweep_allowed(policy.describe(), sorted(s.proc.pid for s in strays)))
    for service in dict.fromkeys(s.service for s in strays):
        stop_tree([s.proc for s in strays if s.service == service], project.service(service).grace_s)
    return [s.proc.pid for s in strays]


def age(seconds: float) -> str:
    """``42s``, ``5m07s``, ``3h12m``, ``2d04h``."""
    whole = max(0, int(seconds))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def runs_portctl(cmdline: Sequence[str]) -> bool:
    """Whether a command line runs portctl: its program (or the script an interpreter runs)
    is named portctl, or it is ``python -m portctl[.something]``."""
    words = list(cmdline)
    for word in words[:2]:
        name = os.path.basename(word.replace("\\", "/")).lower()
        if name in ("portctl", "portctl.exe", "portctl-script.py"):
            return True
    for flag, module in zip(words, words[1:]):
        if flag == "-m" and (module == "portctl" or module.startswith("portctl.")):
            return True
    return False


def _is_protected(proc: psutil.Process, cmdline: Iterable[str], spared: set[int]) -> bool:
    """This process or an ancestor of it; portctl itself; a live portctl instance's process."""
    if proc.pid in spared or runs_portctl(tuple(cmdline)):
        return True
    try:
        env = proc.environ()
    except psutil.Error:
        return False
    return live_owner(ports.instance_of(env)) is not None


def _cmdline(proc: psutil.Process) -> tuple[str, ...]:
    try:
        return tuple(proc.cmdline())
    except psutil.Error:
        return ()


def _cwd(proc: psutil.Process) -> str:
    try:
        return proc.cwd()
    except psutil.Error:
        return ""


def _under(cwd: str, root: Path) -> bool:
    if not cwd:
        return False
    try:
        path = Path(cwd).resolve()
    except OSError:
        return False
    return path == root or root in path.parents
