"""Benchmark: what the HTML report (and drift profile) adds to a retrain, vs a bare CatBoost run.

    python bench/bench_report.py [--repeats 5]

Interleaves three commands on the shipped dataset: the bare CatBoost script, a retrain
with --no-report, and a retrain with the report (the default). Run-to-run noise here
(about +-0.5 s on 10 s) is larger than the report itself, so the primary figure is the
time the run itself measures for the drift profile and the report (``timings`` in
``--json``), as a share of the bare script's median; the end-to-end medians are printed
beside it. Goal (issue #6): at most 5 %.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import ROOT, machine, median, run_measured, stamp, table_head, table_row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "featured_dataset.csv")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(args.data.resolve(), work / "data.csv")
        retrain = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "-q"]
        commands = {
            "bare": [sys.executable, str(ROOT / "bench" / "bare_catboost.py"), "data.csv", "bare.cbm"],
            "no-report": [*retrain, "--force", "--no-report"],
            "report": [*retrain, "--force"],
        }
        run_measured(retrain, work)  # the champion
        walls: dict[str, list[float]] = {k: [] for k in commands}
        inside: list[float] = []
        for _ in range(args.repeats):
            for name, argv in commands.items():
                wall, _peak = run_measured(argv, work)
                walls[name].append(wall)
                print(f"  {name:<10} {wall:6.2f} s", file=sys.stderr)
            out = subprocess.run([*commands["report"], "--json"], cwd=work, capture_output=True, text=True, check=True).stdout
            inside.append(json.loads(out)["timings"]["publish"])
            print(f"  report step {inside[-1]:.3f} s (measured inside the run)", file=sys.stderr)
    bare, plain, full = (median(walls[k]) for k in ("bare", "no-report", "report"))
    step = median(inside)
    print(table_head("date", "machine", "bare", "retrain --no-report", "retrain with report", "report step (inside the run)", "share of bare"))
    print(table_row(stamp(), machine(), f"{bare:.2f} s", f"{plain:.2f} s", f"{full:.2f} s", f"{step:.3f} s", f"{step / bare:.1%}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
