"""Loses the bind race once: racer.py PORT DIR. The first run writes DIR/port, waits until
the test has taken that port (DIR/taken), fails to bind it and exits 1; later runs listen."""
import os
import socket
import sys
import time

port, folder = int(sys.argv[1]), sys.argv[2]
raced = os.path.join(folder, "raced")
if not os.path.exists(raced):
    open(raced, "w").close()
    with open(os.path.join(folder, "port.tmp"), "w") as fh:
        fh.write(str(port))
    os.replace(os.path.join(folder, "port.tmp"), os.path.join(folder, "port"))
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(folder, "taken")) and time.monotonic() < deadline:
        time.sleep(0.01)
sock = socket.socket()
try:
    sock.bind(("127.0.0.1", port))
except OSError as exc:
    print(f"racer: cannot bind {port}: {exc}", file=sys.stderr)
    sys.exit(1)
sock.listen()
time.sleep(60)
