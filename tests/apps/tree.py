"""Listens on PORT and starts two grandchildren that ignore SIGTERM: one stays in the group,
one calls setsid(). Writes their pids to PIDFILE. tree.py PORT PIDFILE [--life S]."""
import os
import signal
import socket
import subprocess
import sys
import time

port, pidfile = int(sys.argv[1]), sys.argv[2]
life = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
signal.signal(signal.SIGTERM, signal.SIG_IGN)
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(%s)" % life
kids = [
    subprocess.Popen([sys.executable, "-c", stubborn]),
    subprocess.Popen([sys.executable, "-c", "import os; os.setsid(); " + stubborn]),
]
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
sock.listen()
with open(pidfile + ".tmp", "w") as fh:
    fh.write(" ".join(str(k.pid) for k in kids))
os.replace(pidfile + ".tmp", pidfile)
time.sleep(life)
