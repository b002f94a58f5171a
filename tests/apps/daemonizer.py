"""A server that daemonizes the classic way: fork, setsid, fork; the grandchild listens on
PORT; the original process exits 0 once it does.

daemonizer.py PORT --pid-file F [--life S]   (F: the daemon's pid, written once it listens)
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_LIFE_S, write_atomic  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--pid-file", required=True)
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
args = parser.parse_args()

if os.fork():  # the original: exit 0 once the daemon listens
    deadline = time.monotonic() + args.life
    while not os.path.exists(args.pid_file) and time.monotonic() < deadline:
        time.sleep(0.01)
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", args.port))
sock.listen(16)
sock.settimeout(0.2)
write_atomic(args.pid_file, f"{os.getpid()}\n")
deadline = time.monotonic() + args.life
while time.monotonic() < deadline:
    try:
        sock.accept()[0].close()
    except OSError:
        pass
os._exit(0)
