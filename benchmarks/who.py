"""Who holds a port: `portctl who` against lsof, fuser, ss and psutil, side by side.

    python benchmarks/who.py            # N = 0, 200, 1000 processes (~15 sockets each)
    python benchmarks/who.py --quick    # N = 0, 200; fewer rounds

Builds a herd of N processes holding ~15 TCP sockets each (a listener and 7 connected pairs),
plus two target listeners: one started before the herd (oldest pid) and one after (newest).
Every tool is run in interleaved rounds; medians, min-max and ratios go to docs/benchmarks.md.
Everything started here is killed and reaped at the end, even on Ctrl+C.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).parent))
from _common import (ensure_debian_tool, fmt_ms, machine, portctl_exe, summary, table,  # noqa: E402
                     time_command, write_section)

HERD_MEMBER = r"""
import ctypes, os, signal, socket, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # die with the spawner
signal.alarm(900)                            # and in any case after 15 minutes
ready = int(sys.argv[1])
n = int(sys.argv[2])
kids = []
for _ in range(n):
    pid = os.fork()
    if pid:
        kids.append(pid)
        continue
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(16)
    socks = [lst]
    for _ in range(7):
        c = socket.create_connection(lst.getsockname()); s, _ = lst.accept(); socks += [c, s]
    os.write(ready, b"x")
    signal.pause()
    os._exit(0)
signal.pause()
"""


class Herd:
    """N processes with ~15 sockets each, forked from one spawner; reaped on exit."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.spawner: Optional[subprocess.Popen[bytes]] = None

    def __enter__(self) -> Herd:
        if self.size == 0:
            return self
        read_end, write_end = os.pipe()
        self.spawner = subprocess.Popen([sys.executable, "-c", HERD_MEMBER, str(write_end), str(self.size)],
                                        pass_fds=[write_end])
        os.close(write_end)
        got = 0
        while got < self.size:  # handshake: one byte per member once its sockets are up
            chunk = os.read(read_end, 4096)
            if not chunk:
                raise RuntimeError("the herd spawner died")
            got += len(chunk)
        os.close(read_end)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.spawner is not None:
            kill_tree(self.spawner)


def kill_tree(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    for p in tree:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(tree, timeout=30)
    proc.wait(timeout=30)


def target(port_file: Path) -> subprocess.Popen[bytes]:
    """A listener on a free port (written to ``port_file``), bounded to 15 minutes."""
    code = ("import os, signal, socket, sys; signal.alarm(900); s = socket.socket(); "
            "s.bind(('127.0.0.1', 0)); s.listen(); p = sys.argv[1]; "
            "open(p + '.tmp', 'w').write(str(s.getsockname()[1])); os.replace(p + '.tmp', p); signal.pause()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(port_file)])
    import time

    deadline = time.monotonic() + 30
    while not port_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the target listener did not start")
        time.sleep(0.01)
    return proc


def tools(port: int, empty_dir: str) -> dict[str, list[str]]:
    portctl = portctl_exe()
    found = {
        "portctl who": [portctl, "who", str(port)],
        "lsof -i :P -sTCP:LISTEN -t": ["lsof", "-i", f":{port}", "-sTCP:LISTEN", "-t"],
        "fuser P/tcp": ["fuser", f"{port}/tcp"],
        "ss -ltnpH sport = :P": ["ss", "-ltnpH", f"sport = :{port}"],
        "ss -ltnH sport = :P (no pids)": ["ss", "-ltnH", f"sport = :{port}"],
        "python + psutil.net_connections": [
            sys.executable, "-c",
            f"import psutil; [c.pid for c in psutil.net_connections('tcp') if c.laddr and c.laddr.port == {port} "
            f"and c.status == 'LISTEN']"],
    }
    return found


def startup_tools(port: int, empty_dir: str) -> dict[str, list[str]]:
    portctl = portctl_exe()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "portctl --version": [portctl, "--version"],
        "portctl status (empty run dir)": [portctl, "--run-dir", empty_dir, "status"],
        "portctl port NAME (none)": [portctl, "--run-dir", empty_dir, "port", "api"],
        "portctl who P": [portctl, "who", str(port)],
    }


def check_answers(port: int, pid: int) -> dict[str, bool]:
    """Does each tool name the right pid? (Checked once, outside the timing.)"""
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout + \
                subprocess.run(argv, capture_output=True, text=True, timeout=60).stderr
        except (OSError, subprocess.TimeoutExpired):
            return ""

    who = json.loads(subprocess.run([portctl_exe(), "who", str(port), "--json"], capture_output=True,
                                    text=True, timeout=60).stdout or "[]")
    return {
        "portctl who": [h["pid"] for h in who] == [pid],
        "lsof -i :P -sTCP:LISTEN -t": str(pid) in out(["lsof", "-i", f":{port}", "-sTCP:LISTEN", "-t"]),
        "fuser P/tcp": str(pid) in out(["fuser", f"{port}/tcp"]),
        "ss -ltnpH sport = :P": f"pid={pid}," in out(["ss", "-ltnpH", f"sport = :{port}"]),
    }


def measure(commands: dict[str, list[str]], rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Interleaved rounds: every tool once per round, so drift hits them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(warmup + rounds):
        for name, argv in commands.items():
            elapsed = time_command(argv)
            if index >= warmup:
                samples[name].append(elapsed)
    return samples


def report(title: str, samples: dict[str, list[float]], base: str, notes: dict[str, str]) -> str:
    base_median = summary(samples[base])[0]
    rows = []
    for name, values in samples.items():
        median, low, high = summary(values)
        rows.append([name + notes.get(name, ""), fmt_ms(median), f"{fmt_ms(low)}–{fmt_ms(high)}",
                     f"{median / base_median:.2f}"])
    return f"**{title}**\n\n" + table(["command", "median ms", "min–max ms", f"÷ {base}"], rows)


def available(commands: dict[str, list[str]], missing: set[str]) -> dict[str, list[str]]:
    return {k: v for k, v in commands.items() if v[0] not in missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 0 and 200, 5 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    sizes = [0, 200] if args.quick else [0, 200, 1000]
    rounds = args.rounds or (5 if args.quick else 15)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as installed
    missing = {tool for tool, package in (("lsof", "lsof"), ("fuser", "psmisc"), ("ss", "iproute2"))
               if ensure_debian_tool(tool, package) is None}
    sections, goals = [], []
    with tempfile.TemporaryDirectory() as tmp:
        old = target(Path(tmp) / "old.port")
        try:
            for size in sizes:
                with Herd(size):
                    new = target(Path(tmp) / f"new{size}.port")
                    try:
                        sections.append(run_size(size, tmp, old, new, rounds, missing, goals))
                    finally:
                        kill_tree(new)
        finally:
            kill_tree(old)
    write_docs(sections, goals, missing, args)


def run_size(size: int, tmp: str, old: subprocess.Popen, new: subprocess.Popen,  # type: ignore[type-arg]
             rounds: int, missing: set[str], goals: list[str]) -> str:
    text = []
    for label, proc in (("target newest", new), ("target oldest", old)):
        port_file = Path(tmp) / ("old.port" if proc is old else f"new{size}.port")
        port = int(port_file.read_text())
        ok = check_answers(port, proc.pid)
        notes = {name: "" if good else " (wrong answer)" for name, good in ok.items()}
        samples = measure(available(tools(port, tmp), missing), rounds)
        text.append(report(f"N = {size} processes, {label}", samples, "portctl who", notes))
        print(text[-1] + "\n", flush=True)
        if size == max(1000, size) or size == 1000:
            med = {k: summary(v)[0] for k, v in samples.items()}
            pc = med["portctl who"]
            if "ss -ltnpH sport = :P" in med:
                goals.append(f"N = {size}, {label}: portctl ÷ `ss -ltnp` = {pc / med['ss -ltnpH sport = :P']:.2f} (goal ≤ 1.0)")
            if "lsof -i :P -sTCP:LISTEN -t" in med:
                goals.append(f"N = {size}, {label}: portctl ÷ lsof = {pc / med['lsof -i :P -sTCP:LISTEN -t']:.2f} (goal ≤ 0.4)")
    if size == 0:
        port = int((Path(tmp) / "old.port").read_text())
        samples = measure(startup_tools(port, tmp), rounds)
        text.append(report("Start-up cost (idle machine)", samples, "python -c pass", {}))
        print(text[-1] + "\n", flush=True)
        base = summary(samples["python -c pass"])[0]
        for name, values in samples.items():
            if name != "python -c pass":
                goals.append(f"{name}: {summary(values)[0] / base:.2f}× `python -c pass` (goal ≤ 3.5)")
    return "\n\n".join(text)


def write_docs(sections: list[str], goals: list[str], missing: set[str], args: argparse.Namespace) -> None:
    command = "python benchmarks/who.py" + (" --quick" if args.quick else "")
    skipped = f"\n\nNot measured (not installed): {', '.join(sorted(missing))}." if missing else ""
    body = f"""## Who holds a port

`{command}` — {machine()}. Whole commands, wall time, interleaved rounds; the last column is
the command's median divided by the row named in the header (below 1: faster than it).
"lsof", "fuser" and "ss -p" map sockets to processes by scanning every process; portctl asks
the kernel for the port's sockets (netlink sock_diag with a port filter) and scans only the
owner's processes, newest first. "target newest/oldest": the listener was started after/before
the herd, which decides how far a newest-first scan has to go.{skipped}

Against the goals:

""" + "\n".join(f"- {g}" for g in goals) + "\n\n" + "\n\n".join(sections)
    write_section("who", body)


if __name__ == "__main__":
    main()
