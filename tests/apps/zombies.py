"""A server whose tree does what a container's PID 1 must cope with.

zombies.py PORT DIR [--orphans N] [--exit-with CODE] [--life S]

Listens on PORT, then:
- starts a grandchild in its own session that ignores SIGTERM (only a KILL stops it);
- makes N orphans: each is double-forked, waits until it has been re-parented (to the
  subreaper, or to the PID namespace's init), then exits: a zombie unless its new parent
  reaps it;
- writes ``DIR/pids`` (this process's pid, the stubborn one's, the orphans', as seen in its
  own PID namespace) once every orphan has exited.
With --exit-with it then exits with CODE (after the pid file); else it serves until stopped.
It ignores SIGTERM itself too. Everything is bounded by --life (default 60 s).
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_LIFE_S, ignore_stop_signals, sleep_out, write_atomic  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("dir")
parser.add_argument("--orphans", type=int, default=3)
parser.add_argument("--exit-with", type=int, default=None)
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
parser.add_argument("--stubborn", action="store_true", help=argparse.SUPPRESS)
args = parser.parse_args()
ignore_stop_signals()

if args.stubborn:
    os.setsid()
    print("ready", flush=True)
    sys.stdout.close()
    sleep_out(args.life)
    sys.exit(0)


def make_orphan(index: int) -> None:
    """Fork twice; the grandchild outlives its parent, is adopted, then exits."""
    middle = os.fork()
    if middle:
        os.waitpid(middle, 0)  # the middle one is ours to reap: no zombie of our own
        return
    first_parent = os.getpid()  # the middle one: the grandchild's parent until it exits
    if os.fork():
        os._exit(0)
    deadline = time.monotonic() + args.life
    while os.getppid() == first_parent and time.monotonic() < deadline:
        time.sleep(0.01)  # the app's own wait for its re-parenting, bounded by its life
    write_atomic(os.path.join(args.dir, f"orphan-{index}"), f"{os.getpid()} {os.getppid()}")
    os._exit(0)


sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", args.port))
sock.listen(16)
stubborn = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(args.port), args.dir,
                             "--stubborn", "--life", str(args.life)], stdout=subprocess.PIPE)
stubborn.stdout.readline()  # handshake: it has its session and ignores TERM
for i in range(args.orphans):
    make_orphan(i)
done = [os.path.join(args.dir, f"orphan-{i}") for i in range(args.orphans)]
deadline = time.monotonic() + args.life
while not all(os.path.exists(p) for p in done) and time.monotonic() < deadline:
    time.sleep(0.01)  # the app's own wait for its orphans' reports, bounded by its life
orphans = [open(p).read().split()[0] for p in done]
write_atomic(os.path.join(args.dir, "pids"), " ".join([str(os.getpid()), str(stubborn.pid), *orphans]))
if args.exit_with is not None:
    sys.exit(args.exit_with)
sleep_out(args.life)
