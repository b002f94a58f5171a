"""An HTTP server on PORT: /health answers 200 until FAIL_AFTER seconds, then 500; the process
exits with EXIT_CODE after EXIT_AFTER seconds (0 = never). Bounded life: 60 s.
flaky.py PORT [--fail-after S] [--exit-after S] [--exit-code N] [--log-lines N]"""
import argparse
import http.server
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--fail-after", type=float, default=0.0)
parser.add_argument("--exit-after", type=float, default=0.0)
parser.add_argument("--exit-code", type=int, default=3)
parser.add_argument("--log-lines", type=int, default=0)
args = parser.parse_args()
began = time.monotonic()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        failing = args.fail_after and time.monotonic() - began > args.fail_after
        self.send_response(500 if failing else 200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


for i in range(args.log_lines):
    print(f"flaky line {i}", flush=True)
print("flaky error stream", file=sys.stderr, flush=True)
server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
deadline = args.exit_after or 60.0
time.sleep(deadline)
sys.exit(args.exit_code if args.exit_after else 0)
