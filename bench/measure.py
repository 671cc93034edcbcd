"""Shared helpers for the benchmarks: run a command, return wall seconds and peak RSS.

Linux only (it reads the child's peak RSS from getrusage); the figures in
bench/README.md come from these helpers.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_measured(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``argv`` in a fresh wrapper process; return (wall seconds, peak RSS MiB) of ``argv`` alone."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(rc, wall, peak)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=cwd, capture_output=True, text=True, check=True).stdout.split()
    rc, wall, peak = int(out[0]), float(out[1]), float(out[2])
    if rc != 0:
        raise SystemExit(f"benchmark command failed with exit code {rc}: {' '.join(argv)}")
    return wall, peak


def median(values: list[float]) -> float:
    return statistics.median(values)


def table_head(*columns: str) -> str:
    """The header and separator lines of a Markdown table (bench/README.md keeps the results)."""
    return "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)


def table_row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


_ = resource  # imported for the wrapper's platform check: fails early on Windows
