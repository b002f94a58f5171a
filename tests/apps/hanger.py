"""An HTTP server on PORT whose /health can be made to hang, for health-check faults.

hanger.py PORT [--hang-file F] [--listen-when F] [--hold-file F] [--hits-file F] [--say TEXT]
               [--chatter-kb N --progress-file F] [--life S]

--hang-file F     /health hangs (60 s) while F exists and names this process's pid
--listen-when F   wait until F exists before listening
--hold-file F     if F exists at start: remove it and never listen (this child is "not ready")
--hits-file F     the number of /health requests served so far (written atomically)
--say TEXT        print TEXT once at start (no flush: buffered unless PYTHONUNBUFFERED)
--chatter-kb N    print a line of about N KiB every 5 ms, forever
--progress-file F with --chatter-kb: the number of lines printed so far (written atomically)
Bounded life: --life seconds (default 60).
"""
import argparse
import http.server
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_LIFE_S, sleep_out, write_atomic  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--hang-file")
parser.add_argument("--listen-when")
parser.add_argument("--hold-file")
parser.add_argument("--hits-file")
parser.add_argument("--say")
parser.add_argument("--chatter-kb", type=int, default=0)
parser.add_argument("--progress-file")
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
args = parser.parse_args()
hits = 0
hits_lock = threading.Lock()


def hanging() -> bool:
    try:
        with open(args.hang_file) as fh:
            return fh.read().strip() == str(os.getpid())
    except (OSError, TypeError):
        return False


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        global hits
        if args.hits_file:
            with hits_lock:
                hits += 1
                write_atomic(args.hits_file, str(hits))
        if hanging():
            time.sleep(60)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def chatter() -> None:
    line = "x" * (args.chatter_kb * 1024 - 1)
    count = 0
    while True:
        print(line)  # a broken pipe kills us, as it would a real app
        count += 1
        if args.progress_file:
            write_atomic(args.progress_file, str(count))
        time.sleep(0.005)


if args.say:
    print(args.say)
if args.hold_file and os.path.exists(args.hold_file):
    os.remove(args.hold_file)
    sleep_out(args.life)
    sys.exit(0)
if args.listen_when:
    deadline = time.monotonic() + args.life
    while not os.path.exists(args.listen_when) and time.monotonic() < deadline:
        time.sleep(0.01)
server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
if args.chatter_kb:
    threading.Thread(target=chatter, daemon=True).start()
sleep_out(args.life)
