"""Projects side by side: one 3-service project under portctl, honcho, PM2 and a supervisord group.

    python benchmarks/projects.py            # 5 rounds
    python benchmarks/projects.py --quick    # 2 rounds, for development
    python benchmarks/projects.py --quick --print-only   # the same, docs/benchmarks.md untouched

The project: a uvicorn backend (`uvicorn portctl.demo:app`), a Node frontend (a tiny
`http.createServer` script) and a Python worker that listens after 0.3 s, each on a fixed port
(one set of ports per tool). The same project is written as a portctl.toml (`portctl start -d`,
`portctl stop`), a Procfile (honcho in the foreground, stopped with SIGINT), a PM2 ecosystem file
(`pm2 start` / `pm2 delete`) and a supervisord `[group:x]` (`supervisorctl start|stop x:*`).
In interleaved rounds it measures: the command until all three serve, against the floor (the
three spawned together, no manager); stop until all ports refuse, and until the command
returns; the backend SIGKILLed until it serves again (the others checked meanwhile); the
manager's own memory while idle (RSS, USS and PSS); processes left after stop. Then `portctl status` in a 10-service
project against `python -c pass`. The peers are installed as benchmarks/supervise.py installs
them (benchmarks/.peers; honcho into supervisord's venv); a peer that cannot be installed is
skipped with a note, and so is portctl when `portctl start -d` does not start the project.
Everything started is stopped and reaped at the end. Results go to docs/benchmarks.md.
"""
from __future__ import annotations

import abc
import argparse
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _common import fmt_ms, machine, portctl_exe, summary, table, write_section  # noqa: E402
from _procevents import ProcEvents  # noqa: E402
from supervise import _quote, accepts, bare_start, free_port, holders, install_peers, pidfd, verdict, wait_for  # noqa: E402

SERVICES = ("backend", "frontend", "worker")
NODE = shutil.which("node") or "/usr/bin/node"
FRONTEND_JS = ("const port = Number(process.argv[2]);\n"
               "require('http').createServer((req, res) => res.end('ok\\n')).listen(port, '127.0.0.1');\n")
WORKER_PY = ("import signal, socket, sys, time\n"
             "signal.alarm(900)  # bounds its life should every cleanup fail\n"
             "time.sleep(0.3)\n"
             "s = socket.socket()\n"
             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
             "s.listen(64)\n"
             "while True:\n"
             "    s.accept()[0].close()\n")
DEADLINE_S = 30.0  # any one handshake (serving, refusing, an exit)
SETTLE_S = 1.0  # after all serve, before the idle RSS; after stop returns, before counting leftovers


def service_argv(scripts: Path, ports: dict[str, str]) -> dict[str, list[str]]:
    return {
        "backend": [sys.executable, "-m", "uvicorn", "portctl.demo:app", "--host", "127.0.0.1",
                    "--port", ports["backend"], "--log-level", "warning"],
        "frontend": [NODE, str(scripts / "frontend.js"), ports["frontend"]],
        "worker": [sys.executable, str(scripts / "worker.py"), ports["worker"]],
    }


# ---------------------------------------------------------------- the managers
class Manager(abc.ABC):
    """One way to run the project: a start command, a stop command, the manager's root pids."""

    name = ""
    persistent = False  # a daemon that outlives `stop` by design (not counted as left behind)
    foreground = False  # the start command is the manager itself (it runs until stopped)

    def __init__(self, home: Path, scripts: Path) -> None:
        self.home = home
        home.mkdir()
        self.ports = {name: free_port() for name in SERVICES}
        self.argv = service_argv(scripts, {name: str(port) for name, port in self.ports.items()})
        self.env: Optional[dict[str, str]] = None

    @abc.abstractmethod
    def start(self) -> subprocess.Popen:  # type: ignore[type-arg]
        """Launch the start command (it may return before the services serve)."""

    @abc.abstractmethod
    def stop(self) -> subprocess.Popen:  # type: ignore[type-arg]
        """Launch the stop; the returned process exits when the stop command returns."""

    @abc.abstractmethod
    def roots(self) -> list[int]:
        """The manager's own top processes (their trees, minus the services', are the manager)."""

    def alive(self) -> bool:
        """False once a foreground manager has exited (honcho tears the project down)."""
        return True

    def why_not(self, command: subprocess.Popen) -> str:  # type: ignore[type-arg]
        """Why the start command returned without all three serving."""
        return f"the start command exited {command.returncode} with {self.serving()} of 3 services serving"

    def serving(self) -> int:
        return sum(accepts(port) for port in self.ports.values())

    def reap(self) -> None:
        """Wait for a foreground manager's exit, once it is stopped."""

    def close(self) -> None: ...

    def _run(self, argv: list[str]) -> subprocess.Popen:  # type: ignore[type-arg]
        return subprocess.Popen(argv, cwd=self.home, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)


class Portctl(Manager):
    name = "portctl"

    def __init__(self, home: Path, scripts: Path) -> None:
        super().__init__(home, scripts)
        self.env = {k: v for k, v in os.environ.items() if k != "PORTCTL_RUN_DIR"}
        commands = service_argv(scripts, {name: "{port}" for name in SERVICES})
        lines = ['[defaults]', 'restart = "on-failure"', '']
        for name in SERVICES:
            lines += [f"[services.{name}]", f"command = {json.dumps(commands[name])}",
                      f"port = {self.ports[name]}", ""]
        (home / "portctl.toml").write_text("\n".join(lines))

    def start(self) -> subprocess.Popen:  # type: ignore[type-arg]
        return self._run([portctl_exe(), "start", "-d"])

    def stop(self) -> subprocess.Popen:  # type: ignore[type-arg]
        return self._run([portctl_exe(), "stop"])

    def roots(self) -> list[int]:
        """The per-service supervisors, from each service's `.server_<port>.pid` (in the run dir,
        the project root; looked for below it too)."""
        pids = []
        for port in self.ports.values():
            try:
                pids.append(int(next(self.home.rglob(f".server_{port}.pid")).read_text()))
            except (StopIteration, OSError, ValueError):
                pass
        return pids

    def why_not(self, command: subprocess.Popen) -> str:  # type: ignore[type-arg]
        detail = (command.stderr.read() if command.stderr else "").strip().splitlines()
        others = [port for port in self.instances() if int(port) not in self.ports.values()]
        return (f"`portctl start -d` in the project exited {command.returncode} with {self.serving()} of 3 "
                "services serving" + (f" ({detail[-1]})" if detail else "")
                + (f"; it ran an instance on port {', '.join(others)} instead" if others else "")
                + ": project orchestration (`portctl start -d` starting every service of portctl.toml) "
                "is not in this build")

    def instances(self) -> list[str]:
        """The ports of the instances this run dir holds, whatever their service."""
        return sorted(path.name[len(".server_"):-len(".pid")] for path in self.home.rglob(".server_*.pid"))

    def close(self) -> None:
        for port in self.instances():  # whatever a failed start left
            subprocess.run([portctl_exe(), "stop", "--port", port], cwd=self.home, env=self.env,
                           capture_output=True, timeout=60)
        subprocess.run([portctl_exe(), "clean"], cwd=self.home, env=self.env, capture_output=True, timeout=60)


class Honcho(Manager):
    """honcho in the foreground; stopped as Ctrl+C would, with SIGINT to its process."""

    name = "honcho"
    foreground = True

    def __init__(self, home: Path, scripts: Path, exe: Path) -> None:
        super().__init__(home, scripts)
        self.exe = exe
        self.proc: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
        (home / "Procfile").write_text("".join(f"{name}: {shlex.join(self.argv[name])}\n" for name in SERVICES))

    def start(self) -> subprocess.Popen:  # type: ignore[type-arg]
        self.proc = subprocess.Popen([str(self.exe), "start"], cwd=self.home, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def stop(self) -> subprocess.Popen:  # type: ignore[type-arg]
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc

    def roots(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reap(self) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=60)


class Pm2(Manager):
    """An ecosystem file, PM2's defaults (autorestart, tree kill); the daemon runs beforehand."""

    name = "PM2"
    persistent = True

    def __init__(self, home: Path, scripts: Path, exe: Path) -> None:
        super().__init__(home, scripts)
        self.exe = exe
        self.env = {**os.environ, "PM2_HOME": str(home / "pm2-home")}
        apps = [{"name": name, "script": self.argv[name][0], "args": self.argv[name][1:],
                 "interpreter": "none", "autorestart": True} for name in SERVICES]
        (home / "ecosystem.config.js").write_text(f"module.exports = {{ apps: {json.dumps(apps, indent=2)} }};\n")
        subprocess.run([str(exe), "ping"], env=self.env, capture_output=True, check=True, timeout=60)

    def start(self) -> subprocess.Popen:  # type: ignore[type-arg]
        return self._run([str(self.exe), "start", "ecosystem.config.js"])

    def stop(self) -> subprocess.Popen:  # type: ignore[type-arg]
        return self._run([str(self.exe), "delete", "ecosystem.config.js"])

    def roots(self) -> list[int]:
        return [int((self.home / "pm2-home" / "pm2.pid").read_text())]

    def close(self) -> None:
        subprocess.run([str(self.exe), "kill"], env=self.env, capture_output=True, timeout=60)


class Supervisord(Manager):
    """A `[group:x]` of the three (autorestart, stopasgroup, killasgroup); the daemon runs beforehand."""

    name = "supervisord"
    persistent = True

    def __init__(self, home: Path, scripts: Path, bin_dir: Path) -> None:
        super().__init__(home, scripts)
        self.bin = bin_dir
        self.conf = home / "supervisord.conf"
        lines = [
            "[unix_http_server]", f"file={home}/s.sock",
            "[supervisord]", f"logfile={home}/d.log", f"pidfile={home}/d.pid", f"childlogdir={home}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]", f"serverurl=unix://{home}/s.sock",
            "[group:x]", "programs=" + ",".join(SERVICES),
        ]
        for name in SERVICES:
            lines += [f"[program:{name}]", "command=" + " ".join(_quote(a) for a in self.argv[name]),
                      "autostart=false", "autorestart=true", "startsecs=0", "stopasgroup=true",
                      "killasgroup=true"]
        self.conf.write_text("\n".join(lines) + "\n")
        subprocess.run([str(bin_dir / "supervisord"), "-c", str(self.conf)], check=True, timeout=60)
        wait_for(lambda: (home / "s.sock").exists(), timeout=DEADLINE_S)

    def _ctl(self, *args: str) -> list[str]:
        return [str(self.bin / "supervisorctl"), "-c", str(self.conf), *args]

    def start(self) -> subprocess.Popen:  # type: ignore[type-arg]
        return self._run(self._ctl("start", "x:*"))

    def stop(self) -> subprocess.Popen:  # type: ignore[type-arg]
        return self._run(self._ctl("stop", "x:*"))

    def roots(self) -> list[int]:
        return [int((self.home / "d.pid").read_text())]

    def close(self) -> None:
        if (self.home / "d.pid").exists():
            subprocess.run(self._ctl("shutdown"), capture_output=True, timeout=60)


# ---------------------------------------------------------------- processes
Snapshot = dict[int, float]  # pid -> create_time: a process, not a reused pid


def serving_pids(ports: dict[str, int]) -> dict[str, list[int]]:
    from portctl.core.ports import holders

    return {name: sorted({h.pid for h in holders(port) if h.pid}) for name, port in ports.items()}


def tree(pids: list[int], include_roots: bool = True) -> Snapshot:
    found: Snapshot = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            members = ([proc] if include_roots else []) + proc.children(recursive=True)
        except psutil.Error:
            continue
        for member in members:
            try:
                found[member.pid] = member.create_time()
            except psutil.Error:
                pass
    return found


def project_trees(tool: Manager) -> Snapshot:
    """The services' trees and the manager's (its root too, unless it is a daemon kept by design)."""
    found = tree(tool.roots(), include_roots=not tool.persistent)
    found.update(tree([pid for pids in serving_pids(tool.ports).values() for pid in pids]))
    return found


def living(snapshot: Snapshot) -> list[psutil.Process]:
    alive = []
    for pid, created in snapshot.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            pass
    return alive


def kill_all(snapshot: Snapshot) -> None:
    for proc in living(snapshot):
        try:
            proc.kill()
        except psutil.Error:
            pass


def manager_memory(tool: Manager) -> tuple[float, float, float, int]:
    """RSS, USS (the pages no other process shares) and PSS (each page divided among the
    processes sharing it) in MiB, and the process count, of the manager's trees minus the
    services' trees."""
    services = tree([pid for pids in serving_pids(tool.ports).values() for pid in pids])
    own = [pid for pid in tree(tool.roots()) if pid not in services]
    rss = uss = pss = 0
    for pid in own:
        try:
            memory = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        rss, uss, pss = rss + memory.rss, uss + memory.uss, pss + memory.pss
    return rss / 2**20, uss / 2**20, pss / 2**20, len(own)


def all_serving(ports: dict[str, int]) -> bool:
    return all(accepts(port) for port in ports.values())


def none_serving(ports: dict[str, int]) -> bool:
    return not any(accepts(port) for port in ports.values())


def exit_times(fds: list[Optional[int]], timeout: float) -> list[Optional[float]]:
    """perf_counter() when each pidfd's process exited (a zombie counts; a None fd: gone before
    it could be opened, so now), None if still running at the timeout. Waiting on pidfds, a
    few ms between two exits are not blurred by polling. Closes the fds."""
    now = time.perf_counter()
    times: list[Optional[float]] = [now if fd is None else None for fd in fds]
    index = {fd: i for i, fd in enumerate(fds) if fd is not None}
    poller = select.poll()
    for fd in index:
        poller.register(fd, select.POLLIN)
    deadline = now + timeout
    try:
        while None in times and time.perf_counter() < deadline:
            for fd, _ in poller.poll(max(1, int((deadline - time.perf_counter()) * 1000))):
                times[index[fd]] = time.perf_counter()
                poller.unregister(fd)
    finally:
        for fd in index:
            os.close(fd)
    return times


class Skip(Exception):
    """The tool cannot run the project here: the reason goes into the report."""


# ---------------------------------------------------------------- scenarios
def start_timing(tool: Manager, strict: bool) -> float:
    """ms from the start command until all three accept. ``strict``: the command must return
    exit 0 (portctl's `start -d` returns once all are ready, so when it returned and they do not
    all serve, it does not run projects: Skip)."""
    began = time.perf_counter()
    command = tool.start()
    while not all_serving(tool.ports):
        if strict and command.poll() is not None and not all_serving(tool.ports):
            raise Skip(tool.why_not(command))
        if time.perf_counter() - began > DEADLINE_S:
            raise TimeoutError(f"{tool.name}: the project did not serve within {DEADLINE_S:g} s")
        time.sleep(0.001)
    elapsed = (time.perf_counter() - began) * 1000
    if not tool.foreground:
        command.wait(timeout=DEADLINE_S)
        if strict and command.returncode != 0:
            raise Skip(f"`portctl start -d` exited {command.returncode} although all three serve")
    return elapsed


def stop_timing(tool: Manager) -> tuple[Optional[float], Optional[float], Optional[float], int, Optional[int]]:
    """(stop → all refuse, stop → command returns, last child's exit → command returns) in ms
    (None: not within DEADLINE_S); how many processes of the project's trees (the manager's own
    too, unless it is a daemon kept by design) were alive SETTLE_S after the command returned
    (then killed, so the next round starts clean); the stop command's exit code (None for a
    foreground manager: its own exit code after SIGINT says nothing about the stop)."""
    children = [pid for pids in serving_pids(tool.ports).values() for pid in pids]
    watched = project_trees(tool)
    child_fds = [pidfd(pid) for pid in children]  # opened before the stop: they tell the exit once reaped
    began = time.perf_counter()
    command = tool.stop()
    command_fd = pidfd(command.pid)
    try:
        wait_for(lambda: none_serving(tool.ports), timeout=DEADLINE_S)
        freed: Optional[float] = (time.perf_counter() - began) * 1000
    except TimeoutError:
        freed = None
    *exits, returned_at = exit_times([*child_fds, command_fd], DEADLINE_S)
    command.wait(timeout=DEADLINE_S)
    returned = None if returned_at is None else (returned_at - began) * 1000
    exit_to_return = None
    if returned_at is not None and exits and None not in exits:
        exit_to_return = (returned_at - max(t for t in exits if t is not None)) * 1000
    time.sleep(SETTLE_S)  # the measurement itself: what is still alive a moment after stop
    left = len(living(watched))
    kill_all(watched)
    return freed, returned, exit_to_return, left, None if tool.foreground else command.returncode


def crash_timing(tool: Manager) -> tuple[Optional[float], bool, Optional[float]]:
    """ms from SIGKILL of the backend until it serves again (None: the manager gave the project
    up, or not within DEADLINE_S), and whether the two others served throughout (checked every
    10 ms, and once it serves again); as root, the manager's part of it (ms from the killed
    backend's exit to the new one's exec: supervise.py's split), else None."""
    backend = tool.ports["backend"]
    others = [port for name, port in tool.ports.items() if name != "backend"]
    victims = serving_pids({"backend": backend})["backend"]
    killed = tree(victims)
    events = ProcEvents.open()  # subscribed for this crash only
    began_ns = time.monotonic_ns()
    began = time.perf_counter()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not accepts(backend) or not living(killed), timeout=DEADLINE_S)
    kept, looked = True, began
    while not accepts(backend):
        now = time.perf_counter()
        if now - looked >= 0.01:
            kept, looked = kept and all(accepts(port) for port in others), now
        if not tool.alive() or now - began > DEADLINE_S:
            if events is not None:
                events.close()
            return None, False, None
        time.sleep(0.001)
    elapsed = (time.perf_counter() - began) * 1000
    part = None
    if events is not None:
        times = events.replaced(victims, holders(backend), began_ns)
        if times is not None:
            part = (times[1] - times[0]) / 1e6
        events.close()
    return elapsed, kept and all(accepts(port) for port in others), part


def teardown(tool: Manager) -> None:
    """Stop the project (untimed) and kill whatever of its trees is left."""
    watched = project_trees(tool)
    if tool.alive():
        tool.stop().wait(timeout=60)
    try:
        wait_for(lambda: none_serving(tool.ports), timeout=DEADLINE_S)
    except TimeoutError:
        pass
    kill_all(watched)
    tool.reap()


def floor_timing(scripts: Path) -> tuple[float, float]:
    """The three with no manager: ms from spawning them together until all three accept, and
    from SIGTERM to all three until all refuse."""
    ports = {name: free_port() for name in SERVICES}
    argv = service_argv(scripts, {name: str(port) for name, port in ports.items()})
    began = time.perf_counter()
    procs = [subprocess.Popen(argv[name], stdout=subprocess.DEVNULL) for name in SERVICES]
    try:
        wait_for(lambda: all_serving(ports), timeout=DEADLINE_S)
        started = (time.perf_counter() - began) * 1000
        began = time.perf_counter()
        for proc in procs:
            proc.terminate()
        wait_for(lambda: none_serving(ports), timeout=DEADLINE_S)
        return started, (time.perf_counter() - began) * 1000
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=DEADLINE_S)


def status_timing(home: Path, samples: int) -> tuple[list[float], list[float], int, int]:
    """`portctl status` in a 10-service project (none running) against `python -c pass`,
    alternated: (status ms, pass ms, services listed by `status --json`, its exit code)."""
    home.mkdir()
    lines = []
    for i in range(10):
        lines += [f"[services.s{i}]", f"command = {json.dumps([sys.executable, '-m', 'http.server', '{port}'])}",
                  f"port = {free_port()}", ""]
    (home / "portctl.toml").write_text("\n".join(lines))
    env = {k: v for k, v in os.environ.items() if k != "PORTCTL_RUN_DIR"}
    ours: list[float] = []
    floor: list[float] = []
    for _ in range(samples):
        for argv, into in (([portctl_exe(), "status"], ours), ([sys.executable, "-c", "pass"], floor)):
            began = time.perf_counter()
            subprocess.run(argv, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60)
            into.append((time.perf_counter() - began) * 1000)
    listed = subprocess.run([portctl_exe(), "status", "--json"], cwd=home, env=env, capture_output=True,
                            text=True, timeout=60)
    try:
        count = len(json.loads(listed.stdout))
    except ValueError:
        count = 0
    return ours, floor, count, listed.returncode


# ---------------------------------------------------------------- the run
Results = dict[str, dict[str, list]]  # type: ignore[type-arg]  # tool -> metric -> one value per round


def run_rounds(tools: list[Manager], scripts: Path, rounds: int, notes: list[str]
               ) -> tuple[Results, dict[str, list[float]]]:
    """Per tool, per metric, one value a round; and the floors of each round (no manager):
    `start`, `stop` (the three together), `bare` (uvicorn alone)."""
    results: Results = {tool.name: {} for tool in tools}
    floors: dict[str, list[float]] = {"start": [], "stop": [], "bare": []}
    active = list(tools)
    for rnd in range(rounds):
        started, stopped = floor_timing(scripts)  # in every round: the floors under the same load
        floors["start"].append(started)
        floors["stop"].append(stopped)
        floors["bare"].append(bare_start())
        for tool in active[rnd % len(active):] + active[:rnd % len(active)]:  # a new order each round
            try:
                measure(tool, results[tool.name])
            except Skip as exc:
                notes.append(f"portctl not measured: {exc}.")
                teardown(tool)
                tool.close()
                active.remove(tool)
                del results[tool.name]
                print(f"round {rnd} {tool.name}: skipped ({exc})", flush=True)
                continue
            r = {k: v[-1] for k, v in results[tool.name].items()}
            print(f"round {rnd} {tool.name}: serving {fmt_opt(r['start'])} ms (floor {floors['start'][-1]:.0f}), "
                  f"refusing {fmt_opt(r['freed'])} / returned {fmt_opt(r['returned'])} ms, "
                  f"crash {fmt_opt(r['crash'])} ms, PSS {r['pss']:.1f} MiB (RSS {r['rss']:.1f}), left {r['left']}", flush=True)
    return results, floors


def measure(tool: Manager, into: dict[str, list]) -> None:  # type: ignore[type-arg]
    """One round of one tool: start (timed), idle RSS, stop (timed), leftovers; start again,
    crash the backend (timed), stop."""
    started = start_timing(tool, strict=isinstance(tool, Portctl))
    time.sleep(SETTLE_S)  # idle: the manager's memory once the start-up is over
    rss, uss, pss, processes = manager_memory(tool)
    freed, returned, exit_to_return, left, code = stop_timing(tool)
    start_timing(tool, strict=isinstance(tool, Portctl))
    time.sleep(SETTLE_S)  # a crash right at start-up is another scenario (and PM2's min_uptime is 1 s)
    crash, kept, part = crash_timing(tool)
    teardown(tool)
    for key, value in (("start", started), ("rss", rss), ("uss", uss), ("pss", pss), ("processes", processes), ("freed", freed),
                       ("returned", returned), ("exit_to_return", exit_to_return), ("left", left), ("stop_code", code),
                       ("crash", crash), ("kept", kept), ("crash_part", part)):
        into.setdefault(key, []).append(value)


def fmt_opt(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.0f}"


def cell(values: list[Optional[float]], never: str = "never") -> str:
    """Median (min–max) of the values measured; with a count of the rounds that gave none."""
    got = [v for v in values if v is not None]
    if not got:
        return never
    median, low, high = summary(got)
    text = f"{fmt_ms(median)} ({fmt_ms(low)}–{fmt_ms(high)})"
    return text if len(got) == len(values) else f"{text}; {never} in {len(values) - len(got)} of {len(values)}"


def med(values: list[Optional[float]]) -> Optional[float]:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def side_by_side(results: Results, floors: dict[str, list[float]]) -> tuple[list[str], list[list[str]]]:
    """One column per tool, and the floors (no manager) where a metric has one."""
    names = list(results)
    start_floor = statistics.median(floors["start"])
    rows = [
        ["command → all three serving (ms)"] + [cell(results[n]["start"]) for n in names]
        + [cell(list(floors["start"]))],
        ["… over the floor (ms, medians)"] + [_signed(_sub(med(results[n]["start"]), start_floor)) for n in names]
        + ["0"],
        ["stop → all ports refuse (ms)"] + [cell(results[n]["freed"]) for n in names]
        + [cell(list(floors["stop"])) + " (SIGTERM to the three)"],
        ["stop → the command returns (ms)"] + [cell(results[n]["returned"]) for n in names] + ["—"],
        ["last child exits → the command returns (ms)"] + [cell(results[n]["exit_to_return"]) for n in names]
        + ["—"],
        ["backend SIGKILLed → serving again (ms)"] + [cell(results[n]["crash"], "not restarted") for n in names]
        + [cell(list(floors["bare"])) + " (bare uvicorn start-up)"],
        ["… of which the manager's part: old backend's exit → new backend's exec (ms; root only)"]
        + [cell(results[n]["crash_part"], "n/a") for n in names] + ["—"],
        ["… the other two served throughout (rounds)"] + [f"{sum(results[n]['kept'])} of {len(results[n]['kept'])}"
                                                          for n in names] + ["—"],
        ["manager RSS while idle (MiB, median)"] + [
            f"{statistics.median(results[n]['rss']):.1f} ({_processes(max(results[n]['processes']))})"
            for n in names] + ["—"],
        ["… of which its own pages (USS, MiB, median)"] + [f"{statistics.median(results[n]['uss']):.1f}"
                                                            for n in names] + ["—"],
        ["… its proportional share (PSS, MiB, median; the goal's measure)"] + [
            f"{statistics.median(results[n]['pss']):.1f}" for n in names] + ["—"],
        ["processes left 1 s after stop (per round)"] + [" ".join(str(v) for v in results[n]["left"])
                                                         for n in names] + ["—"],
    ]
    return ["metric"] + names + ["no manager"], rows


def _processes(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


def goal_rows(results: Results, floors: dict[str, list[float]],
              status: tuple[list[float], list[float], int, int], skipped: Optional[str]) -> list[list[str]]:
    """Issue 13 §6's goals for portctl, each judged against what this run measured."""
    ours_status, pass_ms, listed, code = status
    ratio = statistics.median(ours_status) / statistics.median(pass_ms)
    status_row = ["`portctl status` in a 10-service project ≤ 5× `python -c pass`, parsing included",
                  f"{statistics.median(ours_status):.0f} ms vs {statistics.median(pass_ms):.0f} ms ({ratio:.1f}×); "
                  f"it listed {listed} of the 10 services (exit {code}; the goal counts only when all 10 are listed)",
                  verdict(ratio <= 5 and listed == 10)]
    goals = ["all three serving within 30 ms of the floor, ahead of every peer",
             "all ports refusing ahead of every peer",
             "the stop command returning within 20 ms of the last child's exit",
             "the crashed backend serving within 10 ms of its bare start-up, the others serving throughout",
             "manager memory at or below supervisord's",
             "nothing left behind after stop"]
    if skipped is not None or "portctl" not in results:
        return [[goal, "not measured: portctl did not run the project (see the note)", "—"]
                for goal in goals] + [status_row]
    ours = results["portctl"]
    floor, bare = statistics.median(floors["start"]), statistics.median(floors["bare"])
    peers = {name: r for name, r in results.items() if name != "portctl"}
    rows = []
    over = _sub(med(ours["start"]), floor)
    best = _best(peers, "start")
    rows.append([goals[0], f"{fmt_opt(med(ours['start']))} ms, floor {floor:.0f} "
                 f"({_signed(over)}); fastest peer {_named(peers, best, 'start')}",
                 verdict(over is not None and over <= 30 and _ahead(ours, peers, best, "start"))])
    best = _best(peers, "freed")
    rows.append([goals[1], f"{fmt_opt(med(ours['freed']))} ms; fastest peer {_named(peers, best, 'freed')}",
                 verdict(med(ours["freed"]) is not None and _ahead(ours, peers, best, "freed"))])
    lag = med(ours["exit_to_return"])
    rows.append([goals[2], f"{fmt_opt(lag)} ms", verdict(lag is not None and lag <= 20)])
    over = _sub(med(ours["crash"]), bare)
    part = med(ours["crash_part"])
    rows.append([goals[3], f"{fmt_opt(med(ours['crash']))} ms vs bare uvicorn {bare:.0f} ms "
                 f"({_signed(over)}){'' if part is None else f', of which ours (exit → exec) {part:.1f} ms'}; "
                 f"others served throughout in {sum(ours['kept'])} of {len(ours['kept'])} rounds",
                 verdict(over is not None and over <= 10 and all(ours["kept"]))])
    pss, rss = statistics.median(ours["pss"]), statistics.median(ours["rss"])
    if "supervisord" in results:
        theirs = statistics.median(results["supervisord"]["pss"])
        rows.append([goals[4], f"PSS {pss:.1f} MiB (the sum over its {max(ours['processes'])} per-service supervisors; "
                     f"RSS {rss:.1f}) vs {theirs:.1f} MiB (RSS {statistics.median(results['supervisord']['rss']):.1f})",
                     verdict(pss <= theirs)])
    else:
        rows.append([goals[4], f"PSS {pss:.1f} MiB (RSS {rss:.1f}); supervisord not measured", "—"])
    rows.append([goals[5], "per round: " + " ".join(str(v) for v in ours["left"]), verdict(not any(ours["left"]))])
    return rows + [status_row]


def _sub(a: Optional[float], b: float) -> Optional[float]:
    return None if a is None else a - b


def _signed(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:+,.0f}"


def _best(peers: Results, key: str) -> Optional[str]:
    timed = [name for name in peers if med(peers[name][key]) is not None]
    return min(timed, key=lambda name: med(peers[name][key]) or 0.0) if timed else None


def _named(peers: Results, best: Optional[str], key: str) -> str:
    return "none measured" if best is None else f"{best} {fmt_opt(med(peers[best][key]))} ms"


def _ahead(ours: dict[str, list], peers: Results, best: Optional[str], key: str) -> bool:  # type: ignore[type-arg]
    mine, theirs = med(ours[key]), None if best is None else med(peers[best][key])
    return mine is not None and (theirs is None or mine < theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds (development); 5 without it")
    parser.add_argument("--print-only", action="store_true", help="print the section, leave docs/benchmarks.md")
    args = parser.parse_args()
    rounds, status_samples = (2, 10) if args.quick else (5, 20)
    load = os.getloadavg()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    notes: list[str] = []
    sup_bin, pm2 = install_peers(notes)
    honcho = install_honcho(sup_bin, notes)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        scripts = base / "scripts"
        scripts.mkdir()
        (scripts / "frontend.js").write_text(FRONTEND_JS)
        (scripts / "worker.py").write_text(WORKER_PY)
        tools: list[Manager] = []
        try:
            tools.append(Portctl(base / "portctl", scripts))
            if honcho is not None:
                tools.append(Honcho(base / "honcho", scripts, honcho))
            if pm2 is not None:
                tools.append(Pm2(base / "pm2", scripts, pm2))
            if sup_bin is not None:
                tools.append(Supervisord(base / "supervisord", scripts, sup_bin))
            results, floors = run_rounds(tools, scripts, rounds, notes)
            status = status_timing(base / "ten", status_samples)
        finally:  # normally all stopped already; after an error, whatever runs
            for tool in tools:
                left = project_trees(tool)
                tool.close()
                kill_all(left)
    for name, r in results.items():
        if any(r["stop_code"]):
            notes.append(f"{name}'s stop command exited non-zero: " + " ".join(map(str, r["stop_code"])))
    skipped = next((n for n in notes if n.startswith("portctl not measured")), None)
    write_report(results, floors, status, notes, skipped, args, rounds, load)


def install_honcho(sup_bin: Optional[Path], notes: list[str]) -> Optional[Path]:
    """honcho, pip-installed into the venv supervise.py made for supervisord."""
    if sup_bin is None:
        notes.append("honcho skipped: no venv for the peers")
        return None
    if not (sup_bin / "honcho").exists():
        try:
            subprocess.run([str(sup_bin / "pip"), "install", "-q", "honcho"], check=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            notes.append(f"honcho skipped: {exc}")
            return None
    return sup_bin / "honcho"


def write_report(results: Results, floors: dict[str, list[float]],
                 status: tuple[list[float], list[float], int, int], notes: list[str], skipped: Optional[str],
                 args: argparse.Namespace, rounds: int, load: tuple[float, float, float]) -> None:
    header, rows = side_by_side(results, floors)
    command = "python benchmarks/projects.py" + (" --quick" if args.quick else "")
    ours_status, pass_ms, listed, _ = status
    text = f"""## Projects: portctl, honcho, PM2, supervisord running one 3-service project

`{command}` — {machine(load)}. The machine may be shared: compare the columns of one run, not
figures across runs. One project: a uvicorn backend (`uvicorn portctl.demo:app`), a Node
frontend (`http.createServer`), a Python worker that listens after 0.3 s, each on a fixed port;
as a portctl.toml (`portctl start -d`, `portctl stop`, restart on-failure), a Procfile (`honcho
start` in the foreground, stopped with SIGINT to honcho's process), a PM2 ecosystem file (`pm2
start` / `pm2 delete`, autorestart) and a supervisord `[group:x]` (`supervisorctl start|stop x:*`,
autorestart, stopasgroup, killasgroup). The PM2 and supervisord daemons run before the command
(their own start-up is not counted). Median (min–max) of {rounds} rounds, the tools interleaved
(a new order each round). Floors, measured in every round under the same load: the three
spawned together with no manager, until all three accept: {cell(list(floors["start"]))} ms;
bare uvicorn start-up (the floor for a crashed backend): {cell(list(floors["bare"]))} ms.
As root, a crash is also split by the kernel's process events, as in the supervision section:
the manager's part is the killed backend's exit → the new backend's exec; the rest is the new
backend's own start-up, which varies between rounds more than any manager adds.
"Serving" is a TCP accept on all three ports, "refuse" all three refusing; exits are timed on
pidfds. The manager's memory is that of its processes while idle ({SETTLE_S:g} s after all
serve), the services' own trees excluded: for portctl the sum of its per-service supervisors
(each service has its own supervisor by contract; on Linux they are forked from one process
that imported portctl once, so they share most of their pages), for honcho its main process, its
per-service helpers and their `sh -c`, for PM2 and supervisord the daemon. Three columns: RSS
counts a page shared by N processes N times over, USS counts it in no one's total, PSS gives
each of them 1/N of it. The goal is judged on PSS, summed over the manager's processes: it is the
one of the three whose sum over several processes is the memory they really take together
(RSS would bill a tool of several processes several times for one page, USS not at all); RSS
and USS stay in the table. "Left" counts the
processes of the project's trees still alive {SETTLE_S:g} s after the stop command returned (a
daemon kept by design not counted). `portctl status` in a 10-service project (none running):
median of {len(ours_status)}, alternated with `python -c pass`: {cell(list(ours_status))} ms
vs {cell(list(pass_ms))} ms; it listed {listed} of the 10 services.
{"".join(f"{chr(10)}Note: {n}" for n in notes)}

### Goals (portctl, issue 13 §6)

""" + table(["goal", "measured", ""], goal_rows(results, floors, status, skipped)) + \
        "\n\n### Side by side\n\n" + (table(header, rows) if len(header) > 1 else "No tool ran the project.")
    print(text)
    if not args.print_only:
        write_section("projects", text)


if __name__ == "__main__":
    main()
