"""Exits with CODE without ever listening: exiter.py CODE [--after S].

--after S  wait S seconds first (default: exit at once)
"""
import argparse
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("code", type=int)
parser.add_argument("--after", type=float, default=0.0)
args = parser.parse_args()
if args.after > 0:
    time.sleep(args.after)  # the app's own behaviour, not a test synchronisation
print(f"exiter: exiting with {args.code}", file=sys.stderr, flush=True)
sys.exit(args.code)
