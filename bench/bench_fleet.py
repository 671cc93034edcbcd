"""The fleet's cost: N small models with ``--all`` against N separate runs, and the memory
of one scheduler and one server that hold every model.

    python bench/bench_fleet.py --models 20 --rows 3000 --iterations 100

Per model, the fleet adds a config parse and a process start to what ``python
retrain_model.py`` costs anyway. Three figures, in one run, interleaved:

- ``separate``: the N models as N ``python retrain_model.py --models-dir ...`` commands,
  one after another (what a team runs today, N cron lines);
- ``all -j1``: ``retrain_model.py --config F --all --max-parallel 1`` (same work, through the fleet);
- ``all -j2``: ``--max-parallel 2``.

Overhead per model = (wall of ``all -j1`` - wall of ``separate``) / N, as a share of one
model's run (wall of ``separate`` / N). Then ``serve.py --config`` with the N models: its
RSS once every model is loaded (``/ready``), and ``scheduler.py --config`` idle: its RSS.
The data (bench/data/fleet/) is generated here and never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from measure import ROOT, machine, median, stamp

DATA = ROOT / "bench" / "data" / "fleet"


def setup(models: int, rows: int, iterations: int) -> Path:
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    lines = (ROOT / "featured_dataset.csv").read_text().splitlines()
    step = max(1, (len(lines) - 1) // rows)  # rows from the whole period: the first months have few positives
    (DATA / "data.csv").write_text("\n".join([lines[0], *lines[1::step][:rows]]) + "\n")
    tables = "".join(f"\n[models.m{i:02d}]\nseed = {i}\n" for i in range(models))
    (DATA / "fleet.toml").write_text(f'[fleet]\nroot = "state"\n\n[defaults]\ndata = "data.csv"\niterations = {iterations}\nthreads = 1\n{tables}')
    return DATA


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def separate(folder: Path, models: int, iterations: int) -> float:
    shutil.rmtree(folder / "sep", ignore_errors=True)
    started = time.perf_counter()
    for i in range(models):
        own = folder / "sep" / f"m{i:02d}"
        argv = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", str(iterations), "--threads", "1"]
        argv += ["--seed", str(i), "--models-dir", str(own / "models"), "--production", str(own / "catboost_model.cbm"), "--log-dir", str(own / "logs"), "-q"]
        timed(argv, folder)
    return time.perf_counter() - started


def fleet_all(folder: Path, parallel: int) -> float:
    shutil.rmtree(folder / "state", ignore_errors=True)
    return timed([sys.executable, str(ROOT / "retrain_model.py"), "--config", "fleet.toml", "--all", "--max-parallel", str(parallel), "-q"], folder)


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), from /proc (Linux)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def server_memory(folder: Path, port: int = 8799) -> float:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "serve.py"), "--config", "fleet.toml", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=5).read())
                if all(m["version"] for m in body["models"]):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("serve.py --config did not load every model in 120 s")
        time.sleep(2)
        return rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def scheduler_memory(folder: Path) -> float:
    argv = [sys.executable, str(ROOT / "scheduler.py"), "--config", "fleet.toml", "--at", "03:00", "--log-dir", "sched-logs"]
    proc = subprocess.Popen(argv, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        if proc.poll() is not None:
            raise SystemExit(f"scheduler.py --config exited with {proc.returncode}")
        return rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--rows", type=int, default=3000)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    folder = setup(a.models, a.rows, a.iterations)
    walls: dict[str, list[float]] = {"separate": [], "all -j1": [], "all -j2": []}
    for _ in range(a.repeats):  # interleaved
        walls["separate"].append(separate(folder, a.models, a.iterations))
        walls["all -j1"].append(fleet_all(folder, 1))
        walls["all -j2"].append(fleet_all(folder, 2))
    sep, one, two = (median(walls[k]) for k in ("separate", "all -j1", "all -j2"))
    per_model = sep / a.models
    overhead = (one - sep) / a.models
    server, scheduler = server_memory(folder), scheduler_memory(folder)
    print(f"{stamp()} | {machine()} | {a.models} models x {a.rows} rows, {a.iterations} iterations, {a.repeats} repeat(s), load avg {os.getloadavg()[0]:.1f}")
    print(f"separate {sep:.1f} s ({per_model:.2f} s a model) | all -j1 {one:.1f} s | all -j2 {two:.1f} s (x{sep / two:.2f})")
    print(f"fleet overhead per model: {overhead:+.3f} s = {overhead / per_model:+.1%} of a model's run")
    print(f"serve.py --config with {a.models} models loaded: {server:.0f} MiB RSS; scheduler.py --config idle: {scheduler:.0f} MiB RSS")


if __name__ == "__main__":
    main()
