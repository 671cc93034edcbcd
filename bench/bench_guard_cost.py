"""Benchmark: what the row ledger, the new-row split and the data checks cost a run (issue #11).

    python bench/bench_guard_cost.py [--data featured_dataset.csv] [--repeats 3] [--iterations 500]
    python bench/bench_guard_cost.py --rows 1000000 --repeats 1        # synthetic, bench/data/

Two commands, interleaved, on the same data with a champion present: `retrain_model.py
--force` as it ships (`--data-checks block`) and the same with `--data-checks off` (no
new-row split, no checks, drift on the whole file; the ledger is still written and the
champion's training rows still left out, because they are part of a fair comparison).
Each run is one new version on top of the previous one, the way nights follow each other.
Printed: medians of wall time and peak memory, their ratio, the run's own `timings.checks`
(the ledger split and the checks inside the run), and the size of one ledger per million
rows. Goals: <= 1.03x on the shipped data, <= 1.05x at 1M rows, <= 10 MB ledger per 1M rows.
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


def dataset(args: argparse.Namespace) -> tuple[Path, str]:
    if args.rows is None:
        return args.data.resolve(), "target"
    data = ROOT / "bench" / "data" / f"synthetic_{args.rows}.csv"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_synthetic.py"), str(args.rows), str(data)], check=True)
    return data, "target"


def checks_seconds(argv: list[str], cwd: Path) -> float:
    out = subprocess.run([*argv, "--json"], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["timings"].get("checks", 0.0))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "featured_dataset.csv")
    p.add_argument("--rows", type=int, help="use a synthetic dataset of this many rows instead of --data")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iterations", type=int, default=500)
    args = p.parse_args()
    data, target = dataset(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(data, work / "data.csv")
        base = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--target", target]
        base += ["--iterations", str(args.iterations), "-q", "--no-report", "--force"]
        run_measured(base, work)  # v1.0.0: the champion every measured run competes with
        walls: dict[str, list[float]] = {"off": [], "checks": []}
        peaks: dict[str, list[float]] = {"off": [], "checks": []}
        for _ in range(args.repeats):
            for name, argv in (("off", [*base, "--data-checks", "off"]), ("checks", base)):
                wall, peak = run_measured(argv, work)
                walls[name].append(wall)
                peaks[name].append(peak)
                print(f"  {name:<7} {wall:7.2f} s  {peak:7.1f} MiB", file=sys.stderr)
        inside = checks_seconds(base, work)
        ledgers = sorted((work / "models" / "ledgers").glob("*.npz"))
        ledger_mb = ledgers[-1].stat().st_size / 1e6 if ledgers else float("nan")
    rows = sum(1 for _ in data.open()) - 1
    ow, cw = median(walls["off"]), median(walls["checks"])
    op, cp = median(peaks["off"]), median(peaks["checks"])
    print(
        table_head(
            "date", "machine", "rows", "--data-checks off", "checks (default)", "ratio", "peak off", "peak checks", "ratio", "checks step", "ledger / 1M rows"
        )
    )
    print(
        table_row(
            *(stamp(), machine(), rows, f"{ow:.2f} s", f"{cw:.2f} s", f"{cw / ow:.3f}", f"{op:.0f} MiB", f"{cp:.0f} MiB", f"{cp / op:.3f}"),
            *(f"{inside:.3f} s", f"{ledger_mb * 1e6 / rows:.2f} MB"),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
