"""How fast this machine is right now: the CPU seconds of a fixed pure-Python loop (median of 3).

The suite's time on the shared 2-core machine follows the host's speed, which changes over a
day, even within minutes: on 2026-12-06 this script gave 0.78 s at 11:51 UTC and 1.41 s at
11:59, and the same suite took 7 min 34 s at one time and 8 min 38 s at another. Print this
beside every timing you write down (docs/contributing.md, "How long they take"), so two
timings can be compared.

    python bench/machine_speed.py
"""

from __future__ import annotations

import statistics
import time


def loop_seconds(n: int = 20_000_000) -> float:
    """CPU seconds to add up the first ``n`` integers in a Python loop."""
    start = time.process_time()
    total = 0
    for i in range(n):
        total += i
    assert total == n * (n - 1) // 2
    return time.process_time() - start


def main() -> None:
    runs = [loop_seconds() for _ in range(3)]
    print(f"reference loop: {statistics.median(runs):.2f} s of CPU (median of 3: {', '.join(f'{r:.2f}' for r in runs)})")


if __name__ == "__main__":
    main()
