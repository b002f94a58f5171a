"""A plain TCP listener: listener.py PORT [--host H] [--ignore-term] [--life S]."""
import argparse
import signal
import socket
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--ignore-term", action="store_true")
parser.add_argument("--life", type=float, default=60.0)
args = parser.parse_args()
if args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
sock = socket.socket(family)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((args.host, args.port))
sock.listen()
sock.settimeout(0.5)
deadline = time.monotonic() + args.life
while time.monotonic() < deadline:
    try:
        conn, _ = sock.accept()
        conn.close()
    except socket.timeout:
        pass
