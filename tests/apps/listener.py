"""A plain TCP listener that accepts and closes connections (stdlib only, fast start-up).

listener.py PORT [--host H] [--ignore-term] [--exit-after S] [--ready-file F] [--env-file F]
                 [--exit-on-file F] [--exit-code N] [--signal-log F] [--watch-stdin] [--listen-after S]

--ignore-term   ignore SIGTERM and SIGINT (only SIGKILL stops it)
--exit-after S  bounded life: exit after S seconds (default 60; --life is an alias)
--ready-file F  written (atomically, with our pid) once the socket listens
--env-file F    PORT, HOST and PORTCTL_TOKEN of our environment, as JSON, written at start
--exit-on-file F  exit (with --exit-code) as soon as file F exists
--exit-code N   the exit code when out of life or on --exit-on-file (default 0)
--signal-log F  survive TERM/INT/HUP/USR1/USR2 but append each signal number received to F
--watch-stdin   also exit when stdin is closed
--listen-after S  sleep S seconds before listening (a slow start)
"""
import argparse
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (DEFAULT_LIFE_S, add_behaviour_options, apply_behaviour_options, write_atomic)  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--exit-after", "--life", dest="life", type=float, default=DEFAULT_LIFE_S)
parser.add_argument("--ready-file")
parser.add_argument("--env-file")
parser.add_argument("--exit-on-file")
parser.add_argument("--exit-code", type=int, default=0)
parser.add_argument("--listen-after", type=float, default=0.0)
add_behaviour_options(parser)
args = parser.parse_args()

apply_behaviour_options(args)
if args.env_file:
    keys = ("PORT", "HOST", "PORTCTL_TOKEN")
    write_atomic(args.env_file, json.dumps({k: os.environ.get(k) for k in keys} | {"argv": sys.argv[1:]}))

time.sleep(args.listen_after)
family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
sock = socket.socket(family)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6 and args.host == "::":
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
sock.bind((args.host, args.port))
sock.listen(64)
sock.settimeout(0.2)
if args.ready_file:
    write_atomic(args.ready_file, f"{os.getpid()}\n")
deadline = time.monotonic() + args.life
while time.monotonic() < deadline:
    if args.exit_on_file and os.path.exists(args.exit_on_file):
        break
    try:
        conn, _ = sock.accept()
        conn.close()
    except (socket.timeout, InterruptedError):
        pass
sys.exit(args.exit_code)
