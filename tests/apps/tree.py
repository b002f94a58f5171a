"""Listens on PORT and starts two grandchildren: one stays in our process group, one calls
setsid() (a new session, out of reach of a group signal). Their pids go to PIDFILE
(space-separated, written atomically once both have set up their signals and session).

tree.py PORT [PIDFILE] [--life S] [--obey-term] [--share-socket]

By default this process and both grandchildren ignore SIGTERM (only a KILL of the tree stops
them); --obey-term keeps the default handlers. --share-socket makes the grandchildren inherit
the listening socket, so the port stays busy until every one of them is gone.
Everything is bounded by --life (default 60 s).
"""
import argparse
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_LIFE_S, accept_until, ignore_stop_signals, sleep_out, write_atomic  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("pidfile", nargs="?")
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
parser.add_argument("--obey-term", action="store_true")
parser.add_argument("--share-socket", action="store_true")
parser.add_argument("--grandchild", choices=["group", "session"], help=argparse.SUPPRESS)
parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
args = parser.parse_args()

if not args.obey_term:
    ignore_stop_signals()

if args.grandchild:
    if args.grandchild == "session":
        os.setsid()
    print("ready", flush=True)  # handshake: signals are set up and the session is ours
    sys.stdout.close()
    sleep_out(args.life)  # holds the inherited socket (if any) until killed or out of life
    sys.exit(0)

sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", args.port))
sock.listen(64)
fds = (sock.fileno(),) if args.share_socket else ()
kid_argv = [sys.executable, os.path.abspath(__file__), str(args.port), "--life", str(args.life)]
if args.obey_term:
    kid_argv.append("--obey-term")
kids = [
    subprocess.Popen(kid_argv + ["--grandchild", role], pass_fds=fds, close_fds=True,
                     stdout=subprocess.PIPE)
    for role in ("group", "session")
]
for kid in kids:
    kid.stdout.readline()  # each is set up (or dead) before PIDFILE says so
    kid.stdout.close()
if args.pidfile:
    write_atomic(args.pidfile, " ".join(str(k.pid) for k in kids))
accept_until(sock, args.life)
