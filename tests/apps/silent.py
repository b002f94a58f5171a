"""Never listens; lives LIFE seconds at most: silent.py [LIFE]."""
import sys
import time

time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
