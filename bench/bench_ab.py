"""Benchmark: A/B scoring overhead and the analysis of a 1,000,000-line prediction log.

    python bench/bench_ab.py [--rows 100000] [--repeats 7] [--log-lines 1000000] [--log-dir DIR] [--warm-memory MB]

Trains two versions on the shipped dataset (500 and 300 iterations) in a temporary
folder, then in one process, interleaved, times (a) the champion's plain predict_proba on
100,000 rows, (b) ABTest.predict in split mode with the prediction log written, (c) in
shadow mode. Medians and ratios to (a) are printed. Then it writes a log of 1,000,000
predictions and times ab_test.analyze on it (outcomes for every entity).
Goals (issue #5): split <= 1.15x, shadow <= 2.2x, analysis < 10 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from measure import ROOT, machine, median, stamp, table_head, table_row


def warm_memory(path: Path, megabytes: int) -> None:
    """Write and delete ``megabytes`` of scratch data: the kernel then reuses those pages."""
    block = b"\0" * (1 << 20)
    with path.open("wb") as fh:
        for _ in range(megabytes):
            fh.write(block)
    path.unlink()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--log-lines", type=int, default=1_000_000)
    p.add_argument("--log-dir", type=Path, help="where the scoring runs write their prediction logs (default: the temp folder)")
    p.add_argument(
        "--warm-memory",
        type=int,
        default=0,
        metavar="MB",
        help="first write and delete a scratch file of MB megabytes, so that the log's page cache lands on memory the machine has used before "
        "(on a freshly booted VM, first-touched memory makes new page cache several times slower; see bench/README.md)",
    )
    args = p.parse_args()
    from catboost import Pool

    from ab_test import ABTest, analyze, assign_arms, entity_hashes
    from retraining.training import as_categoricals

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = pd.read_csv(ROOT / "featured_dataset.csv")
        base.insert(0, "customer_id", np.arange(len(base)))
        base.to_csv(work / "data.csv", index=False)
        for iters in ("500", "300"):
            cmd = [
                sys.executable,
                str(ROOT / "retrain_model.py"),
                "--data",
                "data.csv",
                "--id-column",
                "customer_id",
                "--iterations",
                iters,
                "-q",
                "--no-report",
                "--force",
            ]
            subprocess.run(cmd, cwd=work, check=True, capture_output=True)
        reps = int(np.ceil(args.rows / len(base)))
        frame = pd.concat([base] * reps, ignore_index=True).iloc[: args.rows]
        frame["customer_id"] = np.arange(args.rows)
        frame = frame.drop(columns="target")
        logs = args.log_dir or work
        tests = {
            "split": ABTest(work / "models", work / "catboost_model.cbm", share=0.1, log_path=logs / "split.jsonl"),
            "shadow": ABTest(work / "models", work / "catboost_model.cbm", shadow=True, log_path=logs / "shadow.jsonl"),
        }
        champion = tests["split"].model("champion")
        names = list(champion.feature_names_)
        cats = [names[i] for i in champion.get_cat_feature_indices()]
        X = frame[names]  # the rows as a user has them: categorical columns hold Python strings
        ids = frame["customer_id"].to_numpy()
        times: dict[str, list[float]] = {"plain": [], "by hand": [], "split": [], "shadow": []}
        for name in ("split", "shadow"):
            tests[name].predict(frame.iloc[:1000], ids[:1000])  # load models, warm caches
        if args.warm_memory:
            warm_memory(logs / "scratch.bin", args.warm_memory)
        for _ in range(args.repeats):
            t = time.perf_counter()
            champion.predict_proba(Pool(X, cat_features=cats))
            times["plain"].append(time.perf_counter() - t)
            t = time.perf_counter()  # the same with the categorical columns made pandas categoricals first, as ABTest does
            champion.predict_proba(Pool(as_categoricals(X, cats), cat_features=cats))
            times["by hand"].append(time.perf_counter() - t)
            for name, test in tests.items():
                t = time.perf_counter()
                test.predict(frame, ids)
                times[name].append(time.perf_counter() - t)
        plain, hand, split, shadow = (median(times[k]) for k in ("plain", "by hand", "split", "shadow"))
        print(f"  all runs: { {k: [round(v, 3) for v in vs] for k, vs in times.items()} }", file=sys.stderr)
        warm = f", memory warmed ({args.warm_memory} MB)" if args.warm_memory else ""
        columns = ["date", "machine", "rows", "plain predict_proba", "split + log", "ratio", "shadow + log", "ratio"]
        head = table_head(*columns, "categoricals by hand", "split, shadow vs that")
        row = table_row(
            f"{stamp()}{warm}",
            machine(),
            args.rows,
            f"{plain:.3f} s",
            f"{split:.3f} s",
            f"{split / plain:.2f}",
            f"{shadow:.3f} s",
            f"{shadow / plain:.2f}",
            f"{hand:.3f} s",
            f"{split / hand:.2f}, {shadow / hand:.2f}",
        )
        if not args.log_lines:
            print(head + "\n" + row)
            return 0

        # a log of N predictions and outcomes for every entity
        test = tests["split"]
        big = work / "big.jsonl"
        n = args.log_lines
        rng = np.random.default_rng(0)
        all_ids = np.arange(n)
        hashes = entity_hashes(all_ids, test.salt)
        is_ch = assign_arms(hashes, test.share)
        y = rng.integers(0, 2, n)
        test.log_path = big
        test.log_predictions(hashes, is_ch, np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1))
        outcomes = pd.DataFrame({"customer_id": all_ids, "label": y})
        t = time.perf_counter()
        result = analyze(big, outcomes, "customer_id", "label")
        analysis = time.perf_counter() - t
        size = big.stat().st_size / 2**20
    print(head + "\n" + row + "\n")
    print(table_head("date", "log lines", "log size", "analyze", "recommendation"))
    print(table_row(stamp(), n, f"{size:.0f} MiB", f"{analysis:.2f} s", result["recommendation"]["action"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
