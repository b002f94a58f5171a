"""A master that listens on PORT and forks N workers sharing the socket (uvicorn --workers,
gunicorn), then serves; the workers' pids go to PIDFILE (space-separated, written atomically
once every worker runs).

workers.py PORT N PIDFILE [--life S] [--master-exits] [--helper HELPERFILE]

--master-exits   the master exits once PIDFILE is written: its workers, reparented, keep the port
--helper F       the master also starts a helper that calls setsid() and holds no socket (a
                 log shipper, a spawned worker); its pid goes to F once it runs
Workers keep the default signal handlers (TERM stops them). Everything is bounded by --life.
"""
import argparse
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_LIFE_S, accept_until, sleep_out, write_atomic  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("workers", type=int)
parser.add_argument("pidfile")
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
parser.add_argument("--master-exits", action="store_true")
parser.add_argument("--helper")
parser.add_argument("--as-helper", action="store_true", help=argparse.SUPPRESS)
args = parser.parse_args()

if args.as_helper:
    os.setsid()
    print("ready", flush=True)
    sys.stdout.close()
    sleep_out(args.life)
    sys.exit(0)

sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", args.port))
sock.listen(64)

pids = []
for _ in range(args.workers):
    pid = os.fork()
    if pid == 0:
        sleep_out(args.life)  # holds the inherited listening socket
        os._exit(0)
    pids.append(pid)
if args.helper:
    helper_argv = [sys.executable, os.path.abspath(__file__), "0", "0", "-", "--as-helper",
                   "--life", str(args.life)]
    helper = subprocess.Popen(helper_argv, stdout=subprocess.PIPE, close_fds=True)
    helper.stdout.readline()  # it has its own session before we name it
    helper.stdout.close()
    write_atomic(args.helper, str(helper.pid))
write_atomic(args.pidfile, " ".join(map(str, pids)))
if args.master_exits:
    os._exit(0)
accept_until(sock, args.life)
