"""A pytest plugin that writes when each test ran and the CPU it used, one JSON line per test.

    PYTHONPATH=bench python -m pytest -p no:cacheprovider -p suite_timeline -n auto --dist loadfile

Each worker writes ``bench/results/timeline/<worker>.jsonl`` (or under $SUITE_TIMELINE_DIR):
``{"id", "t0", "t1", "self", "kids"}``, where ``self`` is the worker's CPU seconds during the
test and ``kids`` those of the processes it started and waited for. A last line per worker,
``{"id": "SESSION", ...}``, has its totals. ``bench/replay_order.py`` reads these files to
try module orders for tests/conftest.py's ``LONGEST_FIRST``. Linux and macOS (getrusage).
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

_started: dict[str, tuple[float, float, float]] = {}
_out = None
_on = True  # off in pytest-xdist's controller: the workers write their own tests


def pytest_configure(config) -> None:
    global _on
    _on = "PYTEST_XDIST_WORKER" in os.environ or not getattr(config.option, "numprocesses", None)


def _cpu() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _write(record: dict) -> None:
    global _out
    if _out is None:
        folder = Path(os.environ.get("SUITE_TIMELINE_DIR") or Path(__file__).parent / "results" / "timeline")
        folder.mkdir(parents=True, exist_ok=True)
        _out = (folder / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl").open("w", encoding="utf-8")
    _out.write(json.dumps(record) + "\n")
    _out.flush()


def pytest_runtest_logstart(nodeid: str, location) -> None:
    if _on:
        _started[nodeid] = (time.time(), *_cpu())


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    if not _on:
        return
    t0, me, kids = _started.pop(nodeid)
    me2, kids2 = _cpu()
    _write({"id": nodeid, "t0": t0, "t1": time.time(), "self": me2 - me, "kids": kids2 - kids})


def pytest_sessionfinish(session) -> None:
    if _on:
        me, kids = _cpu()
        _write({"id": "SESSION", "t1": time.time(), "self": me, "kids": kids})
