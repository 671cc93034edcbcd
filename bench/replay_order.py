"""Replay a measured test run through pytest-xdist's --dist loadfile rule, for a module order.

    python bench/replay_order.py [TIMELINE_DIR] [--workers 6]

Reads the per-test times that ``bench/suite_timeline.py`` wrote and prints the run's length
(the last worker's end) for tests/conftest.py's ``LONGEST_FIRST`` and for the modules sorted
by their measured time. The rule replayed is pytest-xdist 3.8's LoadScopeScheduling: each
worker gets one module in queue order, then any worker with two or fewer tests left gets the
next, and a worker runs its last queued test only once it holds more or the queue is empty.
The times were measured with six workers sharing two cores, so compare orders, not seconds.
"""

from __future__ import annotations

import argparse
import ast
import heapq
import json
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measured(folder: Path) -> dict[str, list[float]]:
    """Module name -> its tests' durations, in the order they ran."""
    tests: dict[str, list[tuple[float, float]]] = {}
    for path in sorted(folder.glob("gw*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["id"] != "SESSION":
                module = Path(rec["id"].split("::")[0]).stem
                tests.setdefault(module, []).append((rec["t0"], rec["t1"] - rec["t0"]))
    return {m: [d for _, d in sorted(runs)] for m, runs in tests.items()}


def longest_first() -> list[str]:
    """tests/conftest.py's LONGEST_FIRST, read without importing the test suite."""
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "LONGEST_FIRST" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise SystemExit("error: tests/conftest.py has no LONGEST_FIRST tuple")


def replay(tests: dict[str, list[float]], order: list[str], workers: int) -> float:
    """The end of the last worker when modules are handed out in ``order`` (then the rest, as measured)."""
    queue = deque([m for m in order if m in tests] + [m for m in tests if m not in order])
    pending = [deque() for _ in range(workers)]

    def assign(w: int) -> None:
        if queue:
            pending[w].extend(tests[queue.popleft()])

    for w in range(workers):
        assign(w)
    for w in range(workers):
        if len(pending[w]) <= 2:
            assign(w)
    events: list[tuple[float, int]] = []
    busy, end = [False] * workers, [0.0] * workers

    def start(w: int, now: float) -> None:
        busy[w] = bool(pending[w]) and (len(pending[w]) >= 2 or not queue)
        if busy[w]:
            heapq.heappush(events, (now + pending[w].popleft(), w))

    for w in range(workers):
        start(w, 0.0)
    while events:
        now, w = heapq.heappop(events)
        end[w] = now
        if len(pending[w]) <= 2:
            assign(w)
        start(w, now)
        for other in range(workers):
            if not busy[other] and pending[other] and not queue:
                start(other, now)
    return max(end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline", nargs="?", type=Path, default=Path(__file__).parent / "results" / "timeline")
    parser.add_argument("--workers", type=int, default=6)
    args = parser.parse_args()
    tests = measured(args.timeline)
    if not tests:
        raise SystemExit(f"error: no timeline in {args.timeline}; run the suite with -p suite_timeline first (see this script's docstring)")
    by_time = sorted(tests, key=lambda m: -sum(tests[m]))
    print(f"LONGEST_FIRST:         {replay(tests, longest_first(), args.workers):6.0f} s")
    print(f"by measured time:      {replay(tests, by_time, args.workers):6.0f} s")


if __name__ == "__main__":
    main()
