"""Benchmark: the version log at 10,000 versions: --history, a promotion, a retrain's bookkeeping.

    python bench/bench_log_scale.py [--versions 10000] [--repeats 5]

Builds a models folder whose version_log.json holds N versions (copies of one real
entry; every other one deployed, so about N/2 events), then times, as subprocesses:
`retrain_model.py --history`, `retrain_model.py --promote` (with the model file copy
timed separately), and a small `retrain_model.py --force` against the N-version log and
against a 1-version log (the difference is the bookkeeping that grows with N).
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

from measure import ROOT, machine, median, stamp

sys.path.insert(0, str(ROOT))


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
    p.add_argument("--versions", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    py, script = sys.executable, str(ROOT / "retrain_model.py")
    with tempfile.TemporaryDirectory() as big_dir, tempfile.TemporaryDirectory() as small_dir:
        big, small = Path(big_dir), Path(small_dir)
        make_project(big, args.versions)
        make_project(small, 1)
        size = (big / "models" / "version_log.json").stat().st_size / 2**20
        history = [timed([py, script, "--history"], big) for _ in range(args.repeats)]
        target = f"v1.{args.versions // 2}.0"
        back = json.loads((big / "models" / "version_log.json").read_text())["production"]
        promote, copies = [], []
        from retraining.fsutil import atomic_copy

        for _ in range(args.repeats):
            promote.append(timed([py, script, "--promote", target, "-q"], big))
            t = time.perf_counter()
            atomic_copy(big / "models" / f"catboost_model_{target}.cbm", big / "copy_probe.cbm")
            copies.append(time.perf_counter() - t)
            timed([py, script, "--promote", back, "-q"], big)
        retrain = {"1 version": [], f"{args.versions} versions": []}
        run = [py, script, "--data", "data.csv", "--iterations", "30", "-q", "--no-report", "--force"]
        for _ in range(args.repeats):
            retrain["1 version"].append(timed(run, small))
            retrain[f"{args.versions} versions"].append(timed(run, big))
    h, pr, cp = median(history), median(promote), median(copies)
    r1, rn = median(retrain["1 version"]), median(retrain[f"{args.versions} versions"])
    print(f"{stamp()}, {machine()}, log of {args.versions} versions = {size:.1f} MiB, medians of {args.repeats}")
    print("| measure | time | goal |")
    print("|---|---|---|")
    print(f"| `--history` (whole process) | {h:.2f} s | < 0.5 s |")
    print(f"| `--promote` (whole process) | {pr:.2f} s (model copy {cp * 1000:.1f} ms) | < 1 s beyond the copy |")
    print(f"| small retrain, 1-version log | {r1:.2f} s | |")
    print(f"| small retrain, {args.versions}-version log | {rn:.2f} s | bookkeeping growth {rn - r1:+.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
