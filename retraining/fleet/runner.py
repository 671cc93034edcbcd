"""Run one command per model, each in its own process, at most N at once.

A model's crash, timeout or bad file stays in its own process: the others run on. The
result of each is its exit code, its stdout and the last line of its stderr (the error
line of a failed run).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ModelRun:
    name: str
    exit_code: int
    stdout: str
    error: str  # the last non-empty stderr line ("" when it succeeded quietly)
    seconds: float


def default_parallel() -> int:
    """The number of cores (at least 1)."""
    return max(1, os.cpu_count() or 1)


def run_all(
    commands: dict[str, list[str]],
    max_parallel: int,
    cwd: Path,
    timeout: float | None = None,
    env: dict | None = None,
    on_done: Callable[[ModelRun], None] | None = None,
) -> dict[str, ModelRun]:
    """Run ``commands`` (model name -> argv), at most ``max_parallel`` at once; results in the given order."""
    import time

    def one(name: str) -> ModelRun:
        started = time.perf_counter()
        try:
            done = subprocess.run(commands[name], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            run = ModelRun(name, done.returncode, done.stdout, lines[-1] if lines and done.returncode else "", time.perf_counter() - started)
        except subprocess.TimeoutExpired:
            run = ModelRun(name, 124, "", f"error: timed out after {timeout:g} s", time.perf_counter() - started)
        except OSError as exc:  # the interpreter could not start: this model fails, the others go on
            run = ModelRun(name, 1, "", f"error: could not start ({exc})", time.perf_counter() - started)
        if on_done is not None:
            on_done(run)
        return run

    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        runs = list(pool.map(one, commands))
    return {run.name: run for run in runs}
