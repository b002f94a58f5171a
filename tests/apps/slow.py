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
from _common import (DEFAULT_LIFE_S, add_behaviour_options, apply_behaviour_options, sleep_out, write_atomic)  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--life", type=float, default=DEFAULT_LIFE_S)
parser.add_argument("--pid-file")
add_behaviour_options(parser)
args = parser.parse_args()
apply_behaviour_options(args)
if args.pid_file:
    write_atomic(args.pid_file, f"{os.getpid()}\n")
sleep_out(args.life)
