"""Supervision side by side: portctl, supervisord and PM2 running the same uvicorn app.

    python benchmarks/supervise.py            # 5 repetitions, 60 s idle window
    python benchmarks/supervise.py --quick    # 3 repetitions, 15 s idle window

Measures, for each supervisor: stop -> port refuses (and when the stop command returns), for a
normal app and for one ignoring SIGTERM (each tool's default grace); SIGKILL of the child ->
serving again (3 crashes per repetition: the child's own start-up varies by tens of ms, and
as root each crash is split by the kernel's process events into the supervisor's part, the
old child's exit to the new one's exec, and the child's own start-up); the supervisor's RSS and
CPU time while idle with one child; whether any worker
of `uvicorn --workers 2` survives a stop. Peers are installed into benchmarks/.peers (PyPI
`supervisor` in a venv, npm `pm2`); a peer that cannot be installed is skipped with a note.
Everything started is stopped and reaped at the end. Results go to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _common import fmt_ms, machine, portctl_exe, summary, table, write_section  # noqa: E402
from _procevents import ProcEvents  # noqa: E402

PEERS = Path(__file__).parent / ".peers"
APP = [sys.executable, "-m", "uvicorn", "portctl.demo:app", "--host", "127.0.0.1", "--log-level", "warning"]
STUBBORN = [sys.executable, "-c",  # accepts (so probes never fill its backlog); ignores SIGTERM and
            # SIGINT (PM2 stops with SIGINT)
            "import signal, socket, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "signal.signal(signal.SIGINT, signal.SIG_IGN); signal.alarm(600); "
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(64); "
            "[s.accept()[0].close() for _ in iter(int, 1)]"]  # one line: supervisord's command=
DEADLINE_S = 60.0
CRASHES = 3  # per repetition and tool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE_S, step: float = 0.001) -> float:
    """Seconds until ``predicate`` held (polling every ``step``); raises on timeout."""
    began = time.perf_counter()
    while not predicate():
        if time.perf_counter() - began > timeout:
            raise TimeoutError("benchmark handshake timed out")
        time.sleep(step)
    return time.perf_counter() - began


def holders(port: int) -> list[int]:
    from portctl.core.ports import holders as who

    return [h.pid for h in who(port) if h.pid]


# ---------------------------------------------------------------- the three supervisors
class Tool:
    """One supervisor: start/stop a named program and tell its pids."""

    name = ""

    def start(self, label: str, argv: list[str], port: int) -> None: ...
    def stop_argv(self, label: str, port: int) -> list[str]: ...
    def child_pid(self, label: str, port: int) -> int: ...
    def daemon_pid(self, label: str, port: int) -> int: ...
    def forget(self, label: str, port: int) -> None: ...
    def close(self) -> None: ...


class Portctl(Tool):
    name = "portctl"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def _cmd(self, *args: str) -> list[str]:
        return [portctl_exe(), "--run-dir", str(self.run_dir), *args]

    def start(self, label: str, argv: list[str], port: int) -> None:
        subprocess.run(self._cmd("start", "-d", "--port", str(port), "--name", label, "--", *argv),
                       check=True, stdout=subprocess.DEVNULL, timeout=DEADLINE_S)

    def stop_argv(self, label: str, port: int) -> list[str]:
        return self._cmd("stop", "--port", str(port))

    def _record(self, port: int) -> dict:  # type: ignore[type-arg]
        import json

        return json.loads((self.run_dir / f".server_{port}.json").read_text())  # type: ignore[no-any-return]

    def child_pid(self, label: str, port: int) -> int:
        return int(self._record(port)["child"]["pid"])

    def daemon_pid(self, label: str, port: int) -> int:
        return int(self._record(port)["supervisor"]["pid"])

    def forget(self, label: str, port: int) -> None:
        subprocess.run(self.stop_argv(label, port), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)

    def close(self) -> None:
        subprocess.run(self._cmd("clean"), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)


class Supervisord(Tool):
    """supervisord with autorestart, stopasgroup and killasgroup, default stopwaitsecs (10 s)."""

    name = "supervisord"

    def __init__(self, home: Path, bin_dir: Path) -> None:
        self.home, self.bin = home, bin_dir
        self.conf = home / "supervisord.conf"
        self.programs: dict[str, tuple[list[str], int]] = {}

    def _write_conf(self) -> None:
        lines = [
            "[unix_http_server]", f"file={self.home}/s.sock",
            "[supervisord]", f"logfile={self.home}/d.log", f"pidfile={self.home}/d.pid",
            "nodaemon=false", f"childlogdir={self.home}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]", f"serverurl=unix://{self.home}/s.sock",
        ]
        for label, (argv, port) in self.programs.items():
            lines += [f"[program:{label}]", "command=" + " ".join(_quote(a) for a in argv),
                      "autostart=true", "autorestart=true", "startsecs=0", "stopasgroup=true",
                      "killasgroup=true", f"environment=PORT={port}"]
        self.conf.write_text("\n".join(lines) + "\n")

    def _ctl(self, *args: str) -> list[str]:
        return [str(self.bin / "supervisorctl"), "-c", str(self.conf), *args]

    def start(self, label: str, argv: list[str], port: int) -> None:
        self.programs[label] = (argv, port)
        self._write_conf()
        if not (self.home / "d.pid").exists():
            subprocess.run([str(self.bin / "supervisord"), "-c", str(self.conf)], check=True, timeout=DEADLINE_S)
            wait_for(lambda: (self.home / "s.sock").exists())
        else:
            subprocess.run(self._ctl("update"), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)
            subprocess.run(self._ctl("start", label), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)

    def stop_argv(self, label: str, port: int) -> list[str]:
        return self._ctl("stop", label)

    def child_pid(self, label: str, port: int) -> int:
        out = subprocess.run(self._ctl("pid", label), capture_output=True, text=True, timeout=DEADLINE_S)
        return int(out.stdout.strip())

    def daemon_pid(self, label: str, port: int) -> int:
        return int((self.home / "d.pid").read_text())

    def forget(self, label: str, port: int) -> None:
        subprocess.run(self._ctl("stop", label), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)
        del self.programs[label]
        self._write_conf()
        subprocess.run(self._ctl("update"), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)

    def close(self) -> None:
        if (self.home / "d.pid").exists():
            subprocess.run(self._ctl("shutdown"), stdout=subprocess.DEVNULL, timeout=DEADLINE_S)


class Pm2(Tool):
    """PM2 with its defaults (autorestart, kill_timeout 1.6 s, tree kill)."""

    name = "PM2"

    def __init__(self, home: Path, pm2: Path) -> None:
        self.env = {**os.environ, "PM2_HOME": str(home)}
        self.pm2 = pm2
        self.home = home

    def _run(self, *args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return subprocess.run([str(self.pm2), *args], env=self.env, capture_output=True, text=True,
                              timeout=DEADLINE_S)

    def start(self, label: str, argv: list[str], port: int) -> None:
        self._run("start", argv[0], "--name", label, "--interpreter", "none", "--", *argv[1:])

    def stop_argv(self, label: str, port: int) -> list[str]:
        return [str(self.pm2), "stop", label]

    def child_pid(self, label: str, port: int) -> int:
        return int(self._run("pid", label).stdout.strip().splitlines()[-1])

    def daemon_pid(self, label: str, port: int) -> int:
        return int((self.home / "pm2.pid").read_text())

    def forget(self, label: str, port: int) -> None:
        self._run("delete", label)

    def close(self) -> None:
        self._run("kill")


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg or ";" in arg else arg


# ---------------------------------------------------------------- installing the peers
def install_peers(notes: list[str]) -> tuple[Optional[Path], Optional[Path]]:
    PEERS.mkdir(exist_ok=True)
    venv = PEERS / "supervisor-venv"
    sup_bin: Optional[Path] = venv / "bin"
    if not (venv / "bin" / "supervisord").exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "supervisor"], check=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            notes.append(f"supervisord skipped: {exc}")
            sup_bin = None
    pm2: Optional[Path] = PEERS / "node_modules" / ".bin" / "pm2"
    if not pm2.exists():  # type: ignore[union-attr]
        if shutil.which("npm") is None:
            notes.append("PM2 skipped: npm is not installed")
            pm2 = None
        else:
            try:
                subprocess.run(["npm", "install", "--silent", "--prefix", str(PEERS), "pm2"], check=True,
                               timeout=600, stdout=subprocess.DEVNULL)
            except (subprocess.SubprocessError, OSError) as exc:
                notes.append(f"PM2 skipped: {exc}")
                pm2 = None
    return sup_bin, pm2


# ---------------------------------------------------------------- scenarios
def stop_timing(tool: Tool, argv: list[str], label: str) -> tuple[float, float, float]:
    """ms from the stop command until (the port refuses, the child has exited, the stop
    command returned); the child's exit is polled too, since an app may close its listener
    well before it exits (uvicorn sleeps 0.1 s after closing it, then shuts down)."""
    port = free_port()
    tool.start(label, [a.replace("{port}", str(port)) for a in argv], port)
    wait_for(lambda: accepts(port))
    child = tool.child_pid(label, port)
    child_fd = pidfd(child)  # opened before the stop: it tells the exit even once reaped
    began = time.perf_counter()
    stopper = subprocess.Popen(tool.stop_argv(label, port), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=getattr(tool, "env", None))
    wait_for(lambda: not accepts(port))
    freed = time.perf_counter() - began
    exited, returned = (t - began for t in exit_times([(child, child_fd), (stopper.pid, pidfd(stopper.pid))]))
    stopper.wait(timeout=DEADLINE_S)
    tool.forget(label, port)
    return freed * 1000, exited * 1000, returned * 1000


def pidfd(pid: int) -> Optional[int]:
    """A pidfd for ``pid`` (Linux 5.3+), None where there is none or the pid is gone."""
    try:
        return os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    except OSError:
        return None


def exit_times(watched: list[tuple[int, Optional[int]]]) -> list[float]:
    """perf_counter() when each (pid, pidfd) exited (a zombie counts), waiting on the pidfds:
    Popen.wait(timeout) sleeps up to 50 ms between looks, which would blur the few ms between
    a child's exit and the stop command's. Without pidfds, a 1 ms poll. Closes the pidfds."""
    if any(fd is None for _, fd in watched):
        times = []
        for pid, fd in watched:
            if fd is not None:
                os.close(fd)
            wait_for(lambda: _gone(pid))
            times.append(time.perf_counter())
        return times
    fds = {fd: i for i, (_, fd) in enumerate(watched) if fd is not None}
    times: list[Optional[float]] = [None] * len(watched)
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    try:
        while None in times:
            ready = poller.poll(DEADLINE_S * 1000)
            if not ready:
                raise TimeoutError("benchmark handshake timed out")
            now = time.perf_counter()
            for fd, _ in ready:
                times[fds[fd]] = now
                poller.unregister(fd)
    finally:
        for fd in fds:
            os.close(fd)
    return [t for t in times if t is not None]


def crash_timing(tool: Tool, label: str) -> tuple[float, Optional[float], Optional[float]]:
    """ms from SIGKILL of the child until the port accepts again; as root, that time split by
    the kernel's process events: the old child's exit → the new child's exec (the
    supervisor's part), and the new child's exec → serving (its own start-up)."""
    port = free_port()
    tool.start(label, APP + ["--port", str(port)], port)
    wait_for(lambda: accepts(port))
    time.sleep(0.5)  # let the start settle: a crash right at start-up is another scenario
    child = tool.child_pid(label, port)
    events = ProcEvents.open()  # subscribed for this crash only
    began_ns = time.monotonic_ns()
    os.kill(child, 9)
    wait_for(lambda: not accepts(port) or _gone(child), timeout=10)
    wait_for(lambda: accepts(port))
    served_ns = time.monotonic_ns()
    split: tuple[Optional[float], Optional[float]] = (None, None)
    if events is not None:
        times = events.replaced([child], holders(port), began_ns)
        if times is not None:
            exited, execed = times
            split = ((execed - exited) / 1e6, (served_ns - execed) / 1e6)
        events.close()
    tool.forget(label, port)
    return (served_ns - began_ns) / 1e6, *split


def bare_start() -> float:
    """ms from spawning the app (no supervisor) until it accepts: the floor for a restart."""
    port = free_port()
    began = time.perf_counter()
    proc = subprocess.Popen(APP + ["--port", str(port)])
    wait_for(lambda: accepts(port))
    elapsed = (time.perf_counter() - began) * 1000
    proc.terminate()
    proc.wait(timeout=DEADLINE_S)
    return elapsed


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def workers_survivors(tool: Tool, label: str) -> int:
    port = free_port()
    tool.start(label, APP + ["--port", str(port), "--workers", "2"], port)
    wait_for(lambda: accepts(port) and len(holders(port)) >= 3, timeout=DEADLINE_S)
    subprocess.run(tool.stop_argv(label, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=getattr(tool, "env", None), timeout=DEADLINE_S)
    try:
        wait_for(lambda: not holders(port), timeout=5)
    except TimeoutError:
        pass
    left = holders(port)
    for pid in left:  # clean up what the peer left behind
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    tool.forget(label, port)
    return len(left)


def idle_cost(tools: list[Tool], window_s: float) -> dict[str, tuple[float, float, float]]:
    """Per tool: (RSS MiB, CPU ms over the window, wake-ups/s) of the supervisor, one idle child."""
    started = []
    for tool in tools:
        port = free_port()
        tool.start("idle", APP + ["--port", str(port)], port)
        wait_for(lambda: accepts(port))
        started.append((tool, port, psutil.Process(tool.daemon_pid("idle", port))))
    time.sleep(2.0)  # settle after start-up
    before = {t.name: (p.cpu_times(), p.num_ctx_switches()) for t, _, p in started}
    time.sleep(window_s)  # the measurement itself: an idle window
    result = {}
    for tool, port, proc in started:
        cpu0, ctx0 = before[tool.name]
        cpu1, ctx1 = proc.cpu_times(), proc.num_ctx_switches()
        cpu_ms = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) * 1000
        wakeups = (ctx1.voluntary - ctx0.voluntary + ctx1.involuntary - ctx0.involuntary) / window_s
        rss = proc.memory_info().rss / 2**20  # the supervisor process itself
        result[tool.name] = (rss, cpu_ms, wakeups)
        tool.forget("idle", port)
    return result


# ---------------------------------------------------------------- report
def ms_cell(values: list[float]) -> str:
    median, low, high = summary(values)
    return f"{fmt_ms(median)} ({fmt_ms(low)}–{fmt_ms(high)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reps, window = (3, 15.0) if args.quick else (5, 60.0)
    load = os.getloadavg()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    notes: list[str] = []
    sup_bin, pm2 = install_peers(notes)
    with tempfile.TemporaryDirectory() as tmp:
        tools: list[Tool] = [Portctl(Path(tmp) / "portctl")]
        (Path(tmp) / "portctl").mkdir()
        if sup_bin is not None:
            (Path(tmp) / "sv").mkdir()
            tools.append(Supervisord(Path(tmp) / "sv", sup_bin))
        if pm2 is not None:
            tools.append(Pm2(Path(tmp) / "pm2", pm2))
        try:
            rows, goals = run_all(tools, reps, window)
        finally:
            for tool in tools:
                tool.close()
    write_report(rows, goals, tools, notes, args, reps, window, load)


def run_all(tools: list[Tool], reps: int, window: float) -> tuple[dict[str, dict[str, str]], list[list[str]]]:
    rows: dict[str, dict[str, str]] = {}
    results: dict[str, dict[str, list[float]]] = {t.name: {} for t in tools}
    bare: list[float] = []
    for rep in range(reps):  # interleaved: each repetition runs every tool
        for tool in tools:
            r = results[tool.name]
            freed, exited, returned = stop_timing(tool, APP + ["--port", "{port}"], f"n{rep}")
            r.setdefault("stop_free", []).append(freed)
            r.setdefault("stop_return", []).append(returned)
            r.setdefault("exit_to_return", []).append(returned - exited)
        for crash in range(CRASHES):
            for tool in tools:
                r = results[tool.name]
                elapsed, ours, childs = crash_timing(tool, f"c{rep}x{crash}")
                r.setdefault("crash", []).append(elapsed)
                if ours is not None and childs is not None:
                    r.setdefault("crash_supervisor", []).append(ours)
                    r.setdefault("crash_child", []).append(childs)
            bare.append(bare_start())  # in the same round: the floor under the same load
        for tool in tools:
            r = results[tool.name]
            print(f"rep {rep} {tool.name}: stop {r['stop_free'][-1]:.0f}/{r['stop_return'][-1]:.0f} ms, crash "
                  + " ".join(f"{v:.0f}" for v in r["crash"][-CRASHES:]) + " ms", flush=True)
    for rep in range(min(reps, 3)):
        for tool in tools:
            freed, _, _ = stop_timing(tool, STUBBORN + ["{port}"], f"s{rep}")
            results[tool.name].setdefault("stubborn", []).append(freed)
            results[tool.name].setdefault("workers", []).append(workers_survivors(tool, f"w{rep}"))
            print(f"rep {rep} {tool.name}: stubborn {freed:.0f} ms, workers left {results[tool.name]['workers'][-1]}", flush=True)
    idle = idle_cost(tools, window)
    for tool in tools:
        r = results[tool.name]
        rss, cpu, wake = idle[tool.name]
        rows[tool.name] = {
            "stop → port refuses (ms)": ms_cell(r["stop_free"]),
            "stop command returns (ms)": ms_cell(r["stop_return"]),
            "child exits → stop command returns (ms)": ms_cell(r["exit_to_return"]),
            "child ignoring SIGTERM: stop → port refuses (ms)": ms_cell(r["stubborn"]),
            "crash (SIGKILL) → serving again (ms)": ms_cell(r["crash"]),
            "… of which the supervisor's part: old child's exit → new child's exec (ms)":
                ms_cell(r["crash_supervisor"]) if r.get("crash_supervisor") else "n/a (not root)",
            "… and the new child's own start-up: exec → serving (ms)":
                ms_cell(r["crash_child"]) if r.get("crash_child") else "n/a (not root)",
            f"idle RSS (MiB) / CPU ms per {window:g} s / wake-ups per s": f"{rss:.1f} / {cpu:.0f} / {wake:.1f}",
            "`uvicorn --workers 2`: workers holding the port after stop": " ".join(str(int(v)) for v in r["workers"]),
        }
    rows["bare uvicorn start-up (ms)"] = {"portctl": ms_cell(bare)}
    return rows, goal_rows(results, bare, idle)


def goal_rows(results: dict[str, dict[str, list[float]]], bare: list[float],
              idle: dict[str, tuple[float, float, float]]) -> list[list[str]]:
    """The issue's goals for portctl, each against what this run measured."""
    med = statistics.median
    ours = results["portctl"]
    peers = {name: r for name, r in results.items() if name != "portctl"}
    rows = []
    if peers:
        best = min(peers, key=lambda name: med(peers[name]["stop_free"]))
        rows.append(["stop → port refuses, faster than every peer",
                     f"{med(ours['stop_free']):.0f} ms; fastest peer {best} {med(peers[best]['stop_free']):.0f} ms",
                     verdict(med(ours["stop_free"]) < med(peers[best]["stop_free"]))])
    lag = med([back - free for free, back in zip(ours["stop_free"], ours["stop_return"])])
    rows.append(["stop command returns within 50 ms of the port refusing",
                 f"{lag:.0f} ms (of which the child still running: "
                 f"{lag - med(ours['exit_to_return']):.0f} ms; after its exit: {med(ours['exit_to_return']):.0f} ms)",
                 verdict(lag <= 50)])
    rows.append(["child exits → stop command returns ≤ 5 ms", f"{med(ours['exit_to_return']):.1f} ms",
                 verdict(med(ours["exit_to_return"]) <= 5)])
    over = med(ours["crash"]) - med(bare)
    rows.append(["crash → serving within 10 ms of bare uvicorn start-up",
                 f"{med(ours['crash']):.0f} ms vs {med(bare):.0f} ms ({over:+.0f})", verdict(over <= 10)])
    if "PM2" in peers:
        pm2 = peers["PM2"]
        rows.append(["crash → serving ahead of PM2",
                     f"{med(ours['crash']):.0f} ms vs {med(pm2['crash']):.0f} ms",
                     verdict(med(ours["crash"]) < med(pm2["crash"]))])
        if ours.get("crash_supervisor") and pm2.get("crash_supervisor"):
            rows.append(["… the supervisor's part of it (old child's exit → new child's exec) ahead of PM2's",
                         f"{med(ours['crash_supervisor']):.1f} ms vs {med(pm2['crash_supervisor']):.1f} ms "
                         f"(the children's own start-up: {med(ours['crash_child']):.0f} vs "
                         f"{med(pm2['crash_child']):.0f} ms)",
                         verdict(med(ours["crash_supervisor"]) < med(pm2["crash_supervisor"]))])
    rss, cpu, wake = idle["portctl"]
    rows.append(["idle: CPU ≈ 0, at most a few wake-ups per second", f"{cpu:.0f} ms CPU, {wake:.1f} wake-ups/s",
                 verdict(cpu <= 10 and wake <= 5)])
    if "supervisord" in idle:
        rows.append(["idle RSS at or below supervisord's", f"{rss:.1f} MiB vs {idle['supervisord'][0]:.1f} MiB",
                     verdict(rss <= idle["supervisord"][0])])
    rows.append(["no worker of `uvicorn --workers 2` survives stop",
                 " ".join(str(int(v)) for v in ours["workers"]), verdict(not any(ours["workers"]))])
    return rows


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def write_report(rows: dict[str, dict[str, str]], goals: list[list[str]], tools: list[Tool],
                 notes: list[str], args: argparse.Namespace, reps: int, window: float,
                 load: tuple[float, float, float]) -> None:
    names = [t.name for t in tools]
    metrics = [m for m in next(iter(rows.values())) if m]
    body_rows = [[metric] + [rows[name][metric] for name in names] for metric in metrics]
    bare = rows["bare uvicorn start-up (ms)"]["portctl"]
    command = "python benchmarks/supervise.py" + (" --quick" if args.quick else "")
    text = f"""## Supervision: portctl, supervisord, PM2

`{command}` — {machine(load)}. The same app (`uvicorn portctl.demo:app`) under each supervisor,
each with its defaults (portctl: `start -d`, grace 5 s; supervisord: autorestart, stopasgroup,
killasgroup, stopwaitsecs 10 s; PM2: kill_timeout 1.6 s). Median (min–max) of {reps} runs
({reps * CRASHES} for the crash, 3 for the SIGTERM-ignoring child and the workers check), interleaved across tools. The child
ignoring SIGTERM (and SIGINT, PM2's stop signal) is a plain socket listener. "workers after stop" lists, per run, how many
processes still held the port 5 s after the stop command returned (0 is right). "child exits →
stop command returns" is the time a supervisor adds once its child is gone, both exits timed on
pidfds (uvicorn closes its
listener ~0.1 s before it exits, so "port refuses" comes earlier; negative: the command returned
while the child was still running). Bare uvicorn
start-up on this machine, the floor for crash → serving, measured after each round of crashes
(so under the same load): {bare} ms. A crash is also split (as root, by the kernel's process
events) into the supervisor's part, from the old child's exit to the new child's exec, and the
new child's own start-up: the latter varies between runs by more than any supervisor adds, so
the supervisor's part is the comparison of supervisors.
{"".join(f"{chr(10)}Note: {n}" for n in notes)}

### Goals (portctl)

""" + table(["goal", "measured", ""], goals) + "\n\n### Side by side\n\n" + table(["metric"] + names, body_rows)
    print(text)
    write_section("supervise", text)


if __name__ == "__main__":
    main()
