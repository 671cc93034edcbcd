"""Benchmark: growth of wall time and peak memory with rows, retrain vs a bare CatBoost script.

    python bench/bench_scale.py [--rows 10000 100000 1000000] [--repeats 1]

For each size: generate bench/data/synthetic_N.csv (make_synthetic.py), train a champion
once, then interleave the bare script and `retrain_model.py --force` (champion present).
Goal (issue #7): at 1,000,000 rows, retrain within 1.10x wall time and 1.5x peak memory.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import ROOT, machine, median, run_measured, stamp, table_head, table_row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    rows_out = []
    for n in args.rows:
        data = ROOT / "bench" / "data" / f"synthetic_{n}.csv"
        if not data.exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "make_synthetic.py"), str(n), str(data)], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            shutil.copy(data, work / "data.csv")
            retrain = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--id-column", "row_id", "-q"]
            bare = [sys.executable, str(ROOT / "bench" / "bare_catboost.py"), "data.csv", "bare.cbm"]
            run_measured(retrain, work)  # the champion
            res = {"bare": [], "retrain": []}
            for _ in range(args.repeats):
                for name, argv in (("bare", bare), ("retrain", [*retrain, "--force"])):
                    wall, peak = run_measured(argv, work)
                    res[name].append((wall, peak))
                    print(f"  {n:>9} {name:<8} {wall:8.2f} s {peak:8.0f} MiB", file=sys.stderr, flush=True)
        bw, bp = median([w for w, _ in res["bare"]]), median([p for _, p in res["bare"]])
        rw, rp = median([w for w, _ in res["retrain"]]), median([p for _, p in res["retrain"]])
        rows_out.append(table_row(f"{n:,}", f"{bw:.1f} s", f"{rw:.1f} s", f"{rw / bw:.3f}", f"{bp:.0f} MiB", f"{rp:.0f} MiB", f"{rp / bp:.3f}"))
    print(f"{stamp()}, {machine()}, repeats {args.repeats}")
    print(table_head("rows", "bare wall", "retrain wall", "ratio", "bare peak", "retrain peak", "ratio"))
    print("\n".join(rows_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
