"""A job that always fails, with some output whose tail the scheduler must log."""

import sys
import time
from pathlib import Path

with Path("attempts.txt").open("a") as fh:
    fh.write(f"{time.time()}\n")
print("loading data...")
print("boom: something broke in training", file=sys.stderr)
sys.exit(3)
