"""Who holds a port: `portctl who` against lsof, fuser, ss and psutil, side by side.

    python benchmarks/who.py            # N = 0, 200, 1000 herd processes; 15 rounds
    python benchmarks/who.py --quick    # N = 0, 200; 5 rounds

For each N it starts a target listener, then a herd of N processes holding ~15 TCP sockets each,
then a second target listener: the oldest and the newest pids, since scan order matters. Each
target's socket is held by sibling workers whose master has exited (uvicorn --workers after its
master died), and a tool's answer counts as right only if it names every one of them. Every
command runs in interleaved rounds (the first two discarded) and each tool's answer is checked
once. The tables go to stdout and to the "who" section of docs/benchmarks.md. Missing peers are
installed from Debian's packages when we are root. Everything started here is killed and
reaped before the next N and in ``finally`` (Ctrl+C too).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, fmt_ms, machine, portctl_exe, table, write_section  # noqa: E402
from _herd import (OWN_LISTENERS, PAIRS, SHARED_LISTENERS, SOCKETS_PER_MEMBER, TARGET_WORKERS, Groups,  # noqa: E402
                   Herd, Target, alive, become_subreaper, pid_range, tcp_rows)

WARMUP_ROUNDS = 2
COMMAND_TIMEOUT_S = 120
PEERS = {"lsof": "lsof", "fuser": "psmisc", "ss": "iproute2"}  # binary -> Debian package
PORTCTL, LSOF, SS_P = "portctl who P", "lsof -i :P -sTCP:LISTEN -t", "ss -ltnpH sport = :P"
PY_PASS = "python -c pass"
GOAL_VS_SS, GOAL_VS_LSOF, GOAL_STARTUP, GOAL_SIZE = 1.0, 0.4, 3.5, 1000
PLACEMENTS = ("target newest", "target oldest")
STARTUP = "start-up (idle)"
Key = tuple[str, str]  # (placement, command name)
Pids = tuple[int, ...]


@dataclass(frozen=True)
class Tool:
    """One command under test: its argv for a port, and a check of its answer."""

    name: str
    needs: str                             # a peer's binary, "psutil", or "" (always there)
    argv: Callable[[int], list[str]]
    check: Callable[[int, Pids], str]      # (port, the target's pids) -> "✓ ..." or "✗ ..."


@dataclass
class Phase:
    """What one herd size gave: the targets, the herd, the samples (ms) and the answers."""

    size: int
    rows: int
    herd: Herd
    targets: dict[str, Target]
    samples: dict[Key, list[float]]
    answers: dict[Key, str]


# -- running commands ------------------------------------------------------------------------

def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with its output captured (for checks, never for timing)."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)


class CommandTimeout(Exception):
    """A timed command ran past COMMAND_TIMEOUT_S (raised from SIGALRM; run() kills it)."""


def _on_alarm(signum: int, frame: Optional[FrameType]) -> None:
    raise CommandTimeout(f"a command ran past {COMMAND_TIMEOUT_S} s")


def time_ms(argv: Sequence[str]) -> float:
    """Wall time of one whole run of ``argv``, output discarded.

    No ``timeout=`` here: with one, subprocess polls waitpid with sleeps doubling from 0.5 ms to
    50 ms, which rounds every time up to 7.5, 15.5, 31.5, 63.5, 113.5 ... ms. A blocking wait is
    exact; an alarm, armed outside the timed span, bounds it instead.
    """
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(COMMAND_TIMEOUT_S)
    try:
        began = time.perf_counter_ns()
        subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return (time.perf_counter_ns() - began) / 1e6
    finally:
        signal.alarm(0)


def measure(commands: dict[Key, list[str]], rounds: int) -> dict[Key, list[float]]:
    """Every command once per round, the starting point rotating, so drift hits all alike."""
    keys = list(commands)
    samples: dict[Key, list[float]] = {key: [] for key in keys}
    for index in range(WARMUP_ROUNDS + rounds):
        shift = index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            elapsed = time_ms(commands[key])
            if index >= WARMUP_ROUNDS:
                samples[key].append(elapsed)
    return samples


# -- checking answers ------------------------------------------------------------------------

def verdict(found: set[int], pids: Pids) -> str:
    """Right only when the tool names every holder of the target's socket and nothing else."""
    if found == set(pids):
        return f"✓ all {len(pids)} pids"
    missing = sorted(set(pids) - found)
    return f"✗ got {sorted(found) or 'nothing'}" + (f", missing {missing}" if missing else "")


def pids_in(text: str) -> set[int]:
    return {int(word) for word in text.split() if word.isdigit()}


def check_portctl(portctl: str, port: int, pids: Pids) -> str:
    result = run([portctl, "who", str(port), "--json"])
    try:
        found = {holder["pid"] for holder in json.loads(result.stdout)}
    except (ValueError, TypeError, KeyError):
        return f"✗ exit {result.returncode}, no JSON list of holders"
    return verdict(found, pids) if result.returncode == 0 else f"✗ exit {result.returncode}"


def check_pids_on_stdout(argv: Callable[[int], list[str]], port: int, pids: Pids) -> str:
    """lsof -t and fuser print bare pids on stdout (fuser's other words go to stderr)."""
    return verdict(pids_in(run(argv(port)).stdout), pids)


def check_ss_pids(port: int, pids: Pids) -> str:
    out = run(["ss", "-ltnpH", f"sport = :{port}"]).stdout
    return verdict({int(found) for found in re.findall(r"pid=(\d+),", out)}, pids)


def check_ss_listed(port: int, pids: Pids) -> str:
    out = run(["ss", "-ltnH", f"sport = :{port}"]).stdout
    return "✓ port listed (no pids)" if f":{port} " in out else "✗ port not listed"


def psutil_code(port: int, show: bool) -> str:
    found = (f"[c for c in psutil.net_connections('tcp') if c.laddr and c.laddr.port=={port} "
             "and c.status=='LISTEN']")
    return f"import psutil; print([c.pid for c in {found}])" if show else f"import psutil; {found}"


def check_psutil(port: int, pids: Pids) -> str:
    out = run([sys.executable, "-c", psutil_code(port, True)]).stdout
    return verdict({int(found) for found in re.findall(r"\d+", out)}, pids)


def check_exit(argv: list[str], expected: int) -> str:
    code = run(argv).returncode
    return f"✓ exit {code}" if code == expected else f"✗ exit {code}, not {expected}"


# -- the tools -------------------------------------------------------------------------------

def who_tools(portctl: str) -> list[Tool]:
    """The commands compared, portctl first."""
    def lsof(port: int) -> list[str]:
        return ["lsof", "-i", f":{port}", "-sTCP:LISTEN", "-t"]

    def fuser(port: int) -> list[str]:
        return ["fuser", f"{port}/tcp"]

    return [
        Tool(PORTCTL, "", lambda port: [portctl, "who", str(port)], partial(check_portctl, portctl)),
        Tool(LSOF, "lsof", lsof, partial(check_pids_on_stdout, lsof)),
        Tool("fuser P/tcp", "fuser", fuser, partial(check_pids_on_stdout, fuser)),
        Tool(SS_P, "ss", lambda port: ["ss", "-ltnpH", f"sport = :{port}"], check_ss_pids),
        Tool("ss -ltnH sport = :P (no pids)", "ss", lambda port: ["ss", "-ltnH", f"sport = :{port}"],
             check_ss_listed),
        Tool("python + psutil.net_connections", "psutil",
             lambda port: [sys.executable, "-c", psutil_code(port, False)], check_psutil),
    ]


def startup_commands(portctl: str, port: int, *, empty_dir: str) -> dict[str, tuple[list[str], int]]:
    """The start-up row: bare Python, and the commands scripts call in loops, each with the
    exit code it should give (`port NAME` in an empty run dir: 3, not running)."""
    return {
        PY_PASS: ([sys.executable, "-c", "pass"], 0),
        "portctl --version": ([portctl, "--version"], 0),
        "portctl --run-dir EMPTY status": ([portctl, "--run-dir", empty_dir, "status"], 0),
        "portctl --run-dir EMPTY port api": ([portctl, "--run-dir", empty_dir, "port", "api"], 3),
        PORTCTL: ([portctl, "who", str(port)], 0),
    }


def apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def apt_install(packages: list[str]) -> str:
    """Install Debian ``packages``; '' on success, else why not (one line)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not installed (installing needs root and apt-get)"
    print(f"installing {' '.join(packages)} with apt-get ...", flush=True)
    result = apt_get("install", "-y", "-q", *packages)
    if result.returncode != 0:  # perhaps the package lists are missing or stale
        apt_get("update", "-q")
        result = apt_get("install", "-y", "-q", *packages)
    if result.returncode == 0:
        return ""
    lines = (result.stderr or result.stdout).strip().splitlines() or [f"exit {result.returncode}"]
    return f"apt-get install {' '.join(packages)} failed: {lines[-1]}"


def missing_tools() -> dict[str, str]:
    """binary -> why it is not measured, after trying to install the missing peers."""
    missing = [binary for binary in PEERS if shutil.which(binary) is None]
    failure = apt_install(sorted({PEERS[b] for b in missing})) if missing else ""
    notes = {b: failure or "not found after install" for b in missing if shutil.which(b) is None}
    if importlib.util.find_spec("psutil") is None:
        notes["psutil"] = "psutil is not installed for this interpreter"
    return notes


# -- one herd size ---------------------------------------------------------------------------

def run_phase(groups: Groups, size: int, tools: list[Tool], rounds: int,
              startup: Optional[Callable[[int], dict[str, tuple[list[str], int]]]] = None) -> Phase:
    """Oldest target, herd, newest target; check every answer once, then time everything.

    ``startup(port)``, if given, adds the start-up commands (``port``: the newest target's).
    """
    oldest = groups.start_target()
    herd = groups.start_herd(size)
    newest = groups.start_target()
    targets = {"target newest": newest, "target oldest": oldest}
    rows = tcp_rows()
    pairs = [(place, target, tool) for place, target in targets.items() for tool in tools]
    commands = {(place, tool.name): tool.argv(target.port) for place, target, tool in pairs}
    answers = {(place, tool.name): tool.check(target.port, target.pids) for place, target, tool in pairs}
    for name, (argv, expected) in (startup(newest.port) if startup else {}).items():
        commands[(STARTUP, name)] = argv
        answers[(STARTUP, name)] = check_exit(argv, expected)
    print(f"N = {size}: herd up (pids {pid_range(herd) or '-'}), {rows:,} rows in /proc/net/tcp*; "
          f"{len(commands)} commands x {WARMUP_ROUNDS}+{rounds} rounds", flush=True)
    return Phase(size, rows, herd, targets, measure(commands, rounds), answers)


def run_all(sizes: Sequence[int], rounds: int, portctl: str, tools: list[Tool],
            done: Callable[[Phase], None]) -> list[Phase]:
    """Every phase, each with its own processes, all of them reaped even on Ctrl+C."""
    become_subreaper()  # orphaned herd members come to us, so we can reap them
    groups, phases = Groups(), []
    try:
        with tempfile.TemporaryDirectory(prefix="portctl-bench-") as empty_dir:
            for size in sizes:
                startup = partial(startup_commands, portctl, empty_dir=empty_dir) if size == 0 else None
                phases.append(run_phase(groups, size, tools, rounds, startup))
                reap(groups, phases[-1])
                done(phases[-1])
    finally:
        groups.close()
    return phases


def reap(groups: Groups, phase: Phase) -> None:
    """Kill this phase's processes and make sure none is left."""
    stuck = groups.close()
    left = alive(phase.herd.pids + [pid for target in phase.targets.values() for pid in target.pids])
    if stuck or left:
        raise RuntimeError(f"processes left after reaping: groups {stuck}, pids {left[:10]}")


# -- reporting -------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    return f"{fmt_ms(min(values))}–{fmt_ms(max(values))}"


def placement_note(phase: Phase, place: str) -> str:
    """Whether the target's pid really is the newest/oldest of the herd (pids can wrap)."""
    target, pids = phase.targets[place].pids, phase.herd.pids
    named = f"pids {', '.join(map(str, target))}"
    if not pids:
        return named
    right = min(target) > pids[-1] if place == "target newest" else max(target) < pids[0]
    wrapped = "" if right else " (pids wrapped: the order is not as labelled)"
    return f"{named}, herd {pid_range(phase.herd)}{wrapped}"


def render_who(phase: Phase, place: str, tools: list[Tool], missing: dict[str, str]) -> str:
    """One table: each tool's median, min–max and ratio to portctl, and its answer."""
    base = median(phase.samples[(place, PORTCTL)])
    rows = []
    for tool in tools:
        values = phase.samples.get((place, tool.name))
        if values is None:
            rows.append([tool.name, "—", "—", "—", f"not measured: {missing.get(tool.needs, '?')}"])
            continue
        rows.append([tool.name, fmt_ms(median(values)), spread(values), f"{median(values) / base:.2f}",
                     phase.answers[(place, tool.name)]])
    title = (f"### N = {phase.size:,} processes, {place} ({phase.rows:,} rows in /proc/net/tcp*; "
             f"{placement_note(phase, place)})")
    return "\n\n".join([title, table(["command", "median ms", "min–max ms", "÷ portctl", "answer"], rows),
                        ratio_line(phase, place)])


def ratio(phase: Phase, place: str, name: str) -> Optional[float]:
    """portctl's median over ``name``'s, or None when ``name`` was not measured."""
    other = phase.samples.get((place, name))
    return median(phase.samples[(place, PORTCTL)]) / median(other) if other else None


def ratio_line(phase: Phase, place: str) -> str:
    parts = [f"portctl ÷ `{label}` = {value:.2f}" for label, name in (("ss -ltnp", SS_P), ("lsof", LSOF))
             if (value := ratio(phase, place, name)) is not None]
    return "; ".join(parts) + "." if parts else ""


def render_startup(phase: Phase) -> str:
    keys = [key for key in phase.samples if key[0] == STARTUP]
    base = median(phase.samples[(STARTUP, PY_PASS)])
    rows = [[name, fmt_ms(median(phase.samples[(STARTUP, name)])), spread(phase.samples[(STARTUP, name)]),
             f"{median(phase.samples[(STARTUP, name)]) / base:.2f}", phase.answers[(STARTUP, name)]]
            for _, name in keys]
    return "### Start-up, idle (N = 0)\n\n" + table(
        ["command", "median ms", "min–max ms", "÷ python -c pass", "answer"], rows)


def render_phase(phase: Phase, tools: list[Tool], missing: dict[str, str]) -> str:
    parts = [render_startup(phase)] if (STARTUP, PY_PASS) in phase.samples else []
    parts += [render_who(phase, place, tools, missing) for place in PLACEMENTS]
    return "\n\n".join(parts)


def goal_rows(phases: list[Phase]) -> list[list[str]]:
    """Each goal, what was measured against it, and whether it was met."""
    idle = next((p for p in phases if (STARTUP, PY_PASS) in p.samples), None)
    big = next((p for p in phases if p.size == GOAL_SIZE), None)
    return (startup_goals(idle) if idle else []) + scale_goals(big)


def startup_goals(idle: Phase) -> list[list[str]]:
    base = median(idle.samples[(STARTUP, PY_PASS)])
    rows = []
    for place, name in idle.samples:
        if place == STARTUP and name != PY_PASS:
            times = median(idle.samples[(place, name)]) / base
            rows.append([f"`{name}` ≤ {GOAL_STARTUP}× `{PY_PASS}`", f"{times:.2f}×", met(times, GOAL_STARTUP)])
    return rows


def scale_goals(big: Optional[Phase]) -> list[list[str]]:
    rows = []
    for place in PLACEMENTS:
        for label, name, goal in (("ss -ltnp", SS_P, GOAL_VS_SS), ("lsof", LSOF, GOAL_VS_LSOF)):
            value = ratio(big, place, name) if big else None
            rows.append([f"N = {GOAL_SIZE:,}, {place}: portctl ≤ {goal}× `{label}`",
                         "not measured" if value is None else f"{value:.2f}×",
                         "—" if value is None else met(value, goal)])
    return rows


def met(value: float, goal: float) -> str:
    return "met" if value <= goal else "**not met**"


def versions() -> str:
    """The peers' versions, and the source tree portctl was installed from."""
    def first(argv: list[str], pattern: str) -> str:
        try:
            result = run(argv)
        except OSError:
            return "missing"
        found = re.search(pattern, result.stdout + result.stderr)
        return found.group(1) if found else "?"

    psutil = "missing"
    if importlib.util.find_spec("psutil") is not None:
        from importlib.metadata import version
        psutil = version("psutil")
    tree = first(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], r"(\S+)")
    lsof = first(["lsof", "-v"], r"revision: (\S+)")
    ss = first(["ss", "-V"], r"(iproute2-\S+)")
    fuser = first(["fuser", "-V"], r"PSmisc\) (\S+)")
    return f"portctl from tree `{tree}`; lsof {lsof}, ss {ss}, fuser {fuser}, psutil {psutil}"


HOW_TO_READ = f"""How to read: each figure is the wall time of a whole command (process start to exit,
output discarded), median and min–max over the rounds; all commands of a size run interleaved,
round-robin, the first {WARMUP_ROUNDS} rounds discarded. "÷ portctl" is the command's median over
`portctl who`'s (above 1: slower than portctl). The herd: N processes, each holding
{SOCKETS_PER_MEMBER} TCP sockets on 127.0.0.1 ({OWN_LISTENERS} listeners and {PAIRS} connected pairs to
{SHARED_LISTENERS} shared listeners), all of the same user as the target. Each target's socket is
held by {TARGET_WORKERS} sibling workers whose master has exited. "target oldest / newest": the
target was started before / after the herd. "answer" is each tool's output checked once against
the target's workers: ✓ only when it names all of them and nothing else."""


def report(phases: list[Phase], tools: list[Tool], missing: dict[str, str], command: str,
           load: tuple[float, float, float]) -> str:
    goals = table(["goal", "measured", ""], goal_rows(phases))
    skipped = "".join(f"\n\nNot measured: `{b}`: {why}." for b, why in missing.items())
    head = (f"## Who holds a port\n\nMeasured on {machine(load)}; {versions()}. Command "
            f"(from the repository root):\n\n    {command}\n\n{HOW_TO_READ}{skipped}\n\n### Goals\n\n{goals}")
    return "\n\n".join([head] + [render_phase(phase, tools, missing) for phase in phases])


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 0 and 200 only, 5 rounds")
    parser.add_argument("--rounds", type=int, help="timed rounds per size (default 15, --quick 5)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()
    sizes = (0, 200) if args.quick else (0, 200, 1000)
    rounds = args.rounds or (5 if args.quick else 15)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as installed
    portctl = portctl_exe()
    if shutil.which(portctl) is None:
        sys.exit(f"{portctl} not found: run this with the Python of the venv where portctl is installed")
    missing = missing_tools()
    tools = who_tools(portctl)
    measured = [tool for tool in tools if tool.needs not in missing]
    phases = run_all(sizes, rounds, portctl, measured,
                     done=lambda phase: print(render_phase(phase, tools, missing) + "\n", flush=True))
    command = " ".join(["python benchmarks/who.py", *(argv if argv is not None else sys.argv[1:])])
    text = report(phases, tools, missing, command, load)
    print("### Goals\n\n" + table(["goal", "measured", ""], goal_rows(phases)) + "\n")
    if not args.no_docs:
        write_section("who", text)
        print(f"wrote the 'who' section of {ROOT / 'docs' / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
