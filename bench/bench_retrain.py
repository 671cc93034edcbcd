"""Benchmark: one full `python retrain_model.py` run (champion present) vs a bare CatBoost script.

    python bench/bench_retrain.py [--data featured_dataset.csv] [--repeats 3] [--iterations 500]

Both do the same CatBoost work (read the CSV, fit, predict a 20 % holdout, save); the
retrain also validates the data, draws the stable split, scores the champion on the same
holdout, runs DeLong, writes the version file, backs up and replaces production and
writes the log. Runs alternate (bare, retrain, bare, ...) so drift on the machine hits
both; the medians and their ratio are printed as a Markdown row for bench/README.md.
Goal (issue #2): ratio <= 1.10 for wall time and <= 1.25 for peak memory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from measure import ROOT, machine, median, run_measured, stamp, table_head, table_row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "featured_dataset.csv")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iterations", type=int, default=500)
    args = p.parse_args()
    data = args.data.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(data, work / "data.csv")
        retrain = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", str(args.iterations), "-q"]
        bare = [sys.executable, str(ROOT / "bench" / "bare_catboost.py"), "data.csv", "bare.cbm", str(args.iterations)]
        run_measured(retrain, work)  # v1.0.0: the champion every measured run competes with
        walls = {"bare": [], "retrain": []}
        peaks = {"bare": [], "retrain": []}
        for _ in range(args.repeats):
            for name, argv in (("bare", bare), ("retrain", [*retrain, "--force"])):
                wall, peak = run_measured(argv, work)
                walls[name].append(wall)
                peaks[name].append(peak)
                print(f"  {name:<8} {wall:7.2f} s  {peak:7.1f} MiB", file=sys.stderr)
    bw, rw = median(walls["bare"]), median(walls["retrain"])
    bp, rp = median(peaks["bare"]), median(peaks["retrain"])
    print(table_head("date", "machine", "rows", "bare wall", "retrain wall", "ratio", "bare peak", "retrain peak", "ratio"))
    rows = sum(1 for _ in data.open()) - 1
    print(table_row(stamp(), machine(), rows, f"{bw:.2f} s", f"{rw:.2f} s", f"{rw / bw:.3f}", f"{bp:.0f} MiB", f"{rp:.0f} MiB", f"{rp / bp:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
