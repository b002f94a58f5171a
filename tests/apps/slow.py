"""Never listens: provokes the ready timeout, or serves as a harmless bystander process.

slow.py [--life S] [--ignore-term] [--pid-file F] [--signal-log F] [--watch-stdin]

--life S        bounded life (default 60 s)
--ignore-term   ignore SIGTERM and SIGINT
--pid-file F    our pid, written atomically at start (a handshake for the test)
--signal-log F  survive TERM/INT/HUP/USR1/USR2 but append each signal number received to F
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (DEFAULT_LIFE_S, exit_when_stdin_closes, ignore_stop_signals, log_signals,  # noqa: E402
                     sleep_out, write_atomic)

parser = argparse.ArgumentParser()
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
parser.add_argument("--ignore-term", action="store_true")
parser.add_argument("--pid-file")
parser.add_argument("--signal-log")
parser.add_argument("--watch-stdin", action="store_true")
args = parser.parse_args()
if args.ignore_term:
    ignore_stop_signals()
if args.signal_log:
    open(args.signal_log, "a").close()
    log_signals(args.signal_log)
if args.watch_stdin:
    exit_when_stdin_closes()
if args.pid_file:
    write_atomic(args.pid_file, f"{os.getpid()}\n")
sleep_out(args.life)
