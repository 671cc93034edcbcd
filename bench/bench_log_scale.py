"""Benchmark: the version log at 10,000 versions: --history, a promotion, a retrain's bookkeeping.

    python bench/bench_log_scale.py [--versions 10000 [100000 ...]] [--repeats 5]

Builds a models folder whose version_log.json holds N versions (copies of one real
entry; every other one deployed, so about N/2 events), then times, as subprocesses:
`retrain_model.py --history`, `retrain_model.py --promote` (with the model file copy
timed separately), and a small `retrain_model.py --force` against the N-version log and
against a 1-version log (the difference is the bookkeeping that grows with N). The log is
built the way an older release wrote it (everything in one file), so the first run moves
the older versions to models/history/; that one-time run is timed on its own.
Goals (issue #7): --history < 0.5 s, promotion < 1 s beyond the copy, bookkeeping flat.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import ROOT, machine, median, stamp, table_head, table_row


def timed(argv: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t


def make_project(work: Path, versions: int) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_synthetic.py"), "2000", str(work / "data.csv")], check=True, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", "30", "-q", "--no-report"], cwd=work, check=True)
    log_path = work / "models" / "version_log.json"
    log = json.loads(log_path.read_text())
    entry = log["versions"][0]
    for i in range(1, versions):
        e = copy.deepcopy(entry)
        e["version"] = f"v1.{i}.0"
        e["file"] = f"catboost_model_v1.{i}.0.cbm"
        e["decision"] = "deployed" if i % 2 == 0 else "kept for review"
        log["versions"].append(e)
        if e["decision"] == "deployed":
            log["events"].append({"event": "deploy", "from": f"v1.{i - 2}.0", "to": e["version"], "at": e["created_at"], "reason": e["reason"], "backup": None})
    last = next(e["version"] for e in reversed(log["versions"]) if e["decision"] == "deployed")
    log["production"] = last
    log_path.write_text(json.dumps(log, indent=2))
    for name in {last, f"v1.{versions // 2}.0"} - {"v1.0.0"}:  # the files a promotion or a run will read
        shutil.copy(work / "models" / "catboost_model_v1.0.0.cbm", work / "models" / f"catboost_model_{name}.cbm")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--versions", type=int, nargs="+", default=[10_000], help="log sizes to measure (default 10000)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    py, script = sys.executable, str(ROOT / "retrain_model.py")
    run = [py, script, "--data", "data.csv", "--iterations", "30", "-q", "--no-report", "--force"]
    from retraining.fsutil import atomic_copy

    print(f"{stamp()}, {machine()}, medians of {args.repeats}")
    cols = ["versions", "log file(s)", "first run (archives)", "`--history`", "`--promote` (model copy)"]
    print(table_head(*cols, "small retrain, 1-version log", "small retrain, N-version log", "growth"))
    for n in args.versions:
        with tempfile.TemporaryDirectory() as big_dir, tempfile.TemporaryDirectory() as small_dir:
            big, small = Path(big_dir), Path(small_dir)
            make_project(big, n)
            make_project(small, 1)
            first = timed(run, big)  # a log written by an older version holds everything: this run archives it once
            live = (big / "models" / "version_log.json").stat().st_size / 2**20
            total = live + sum(f.stat().st_size for f in (big / "models").glob("history/*.json")) / 2**20
            history = [timed([py, script, "--history"], big) for _ in range(args.repeats)]
            target = f"v1.{n // 2}.0"
            back = json.loads((big / "models" / "version_log.json").read_text())["production"]
            promote, copies = [], []
            for _ in range(args.repeats):
                promote.append(timed([py, script, "--promote", target, "-q"], big))
                t = time.perf_counter()
                atomic_copy(big / "models" / f"catboost_model_{target}.cbm", big / "copy_probe.cbm")
                copies.append(time.perf_counter() - t)
                timed([py, script, "--promote", back, "-q"], big)
            r1, rn = [], []
            for _ in range(args.repeats):
                r1.append(timed(run, small))
                rn.append(timed(run, big))
            h, pr, cp, m1, mn = median(history), median(promote), median(copies), median(r1), median(rn)
            sizes = f"{live:.2f} MiB live, {total:.1f} MiB in all"
            print(table_row(n, sizes, f"{first:.2f} s", f"{h:.2f} s", f"{pr:.2f} s ({cp * 1000:.1f} ms)", f"{m1:.2f} s", f"{mn:.2f} s", f"{mn - m1:+.2f} s"))
    print("Goals (issue #7, at 10,000 versions): --history < 0.5 s, promotion < 1 s beyond the copy, growth flat.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
