"""A project service for the tests: ``service.py NAME EVENTS``.

Appends ``start NAME SEEN`` to EVENTS (SEEN: ``ok`` when $CHECK_URL answered 2xx, ``refused``
when it did not, ``-`` without one), and ``stop NAME`` when TERM or INT arrives
(``stop NAME SIGINT`` with $SAY_SIGNAL set). With $FAIL
set it prints $FAIL and exits 3. Else, after $DELAY seconds, it serves on $HOST:$PORT:
``/health`` (200) and ``/hello`` (``hello from NAME $GREETING``); with $LIFE, it appends
``exit NAME`` and exits 0 after serving that many seconds."""
from __future__ import annotations

import http.server
import os
import signal
import sys
import threading
import time
import urllib.request

NAME, EVENTS = sys.argv[1], sys.argv[2]


def log(text: str) -> None:
    with open(EVENTS, "a") as fh:
        fh.write(text + "\n")


def seen() -> str:
    url = os.environ.get("CHECK_URL", "")
    if not url:
        return "-"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return "ok" if 200 <= answer.status < 300 else "refused"
    except OSError:
        return "refused"


def stop(signum: int, _: object) -> None:
    log(f"stop {NAME}" + (f" {signal.Signals(signum).name}" if os.environ.get("SAY_SIGNAL") else ""))
    sys.exit(0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {NAME} {os.environ.get('GREETING', '')}".strip().encode()
        self.send_response(200 if self.path in ("/health", "/hello") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
log(f"start {NAME} {seen()}")
print(f"{NAME} booting", flush=True)
if os.environ.get("FAIL"):
    print(os.environ["FAIL"], flush=True)
    sys.exit(3)
time.sleep(float(os.environ.get("DELAY", "0")))
if os.environ.get("LIFE"):
    def leave() -> None:
        log(f"exit {NAME}")
        os._exit(0)

    threading.Timer(float(os.environ["LIFE"]), leave).start()
http.server.HTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler).serve_forever()
