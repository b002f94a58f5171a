"""A listener that talks first: writes lines to stdout and stderr in turn, then serves on PORT.

talker.py PORT [--lines N] [--partial] [--life S] [--go-file F]

--lines N    at start, N lines alternating between stdout (``out I``) and stderr (``err I``),
             each one write(2) of its own, so the order they were written in is known
--partial    then ``half `` without a newline, a moment later ``line`` and a newline (both
             before listening, so no `ready` line of the supervisor comes between)
--go-file F  after listening, wait for file F, then write ``after go`` (for a reader that
             must be in place first)
--life S     bounded life (default 60)
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_LIFE_S, accept_until  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--lines", type=int, default=0)
parser.add_argument("--partial", action="store_true")
parser.add_argument("--go-file")
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
args = parser.parse_args()

began = time.monotonic()
for i in range(args.lines):
    if i % 2:
        os.write(2, f"err {i}\n".encode())
    else:
        os.write(1, f"out {i}\n".encode())
if args.partial:
    os.write(1, b"half ")
    time.sleep(0.05)  # the two halves arrive apart
    os.write(1, b"line\n")
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", args.port))
sock.listen(64)
if args.go_file:
    while not os.path.exists(args.go_file) and time.monotonic() - began < args.life:
        time.sleep(0.02)
    os.write(1, b"after go\n")
accept_until(sock, args.life - (time.monotonic() - began))
