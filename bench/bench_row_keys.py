"""Benchmark: the cost of the ledger key on each log line (#21) and of reading CSV ids as written (#23).

    python bench/bench_row_keys.py [--rows 100000] [--id-rows 1000000] [--repeats 7]

1. A version trained without ``--id-column`` on the shipped data (100 iterations) in a
   temporary folder; on ``--rows`` rows of it (the data repeated), in one process,
   interleaved: a plain ``predict_proba`` and :func:`retraining.ab.rowkeys.frame_keys` (the
   content key of every row, what ``ab_test.py score`` adds per version rule). Medians.
2. A CSV of ``--id-rows`` rows with an 8-digit zero-padded id column (every id's written
   text differs from its number, the worst case for the older-ledger keys): ``read_table``,
   then :func:`retraining.data.dataset.ids_as_written` and the older-ledger keys (paid only when an older ledger is met), medians.
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
from measure import ROOT, machine, median, stamp


def timed(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return median(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--id-rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    from catboost import Pool

    from retraining.ab.rowkeys import KeyBook, frame_keys
    from retraining.data.dataset import ids_as_written
    from retraining.data.keys import id_hashes
    from retraining.registry import Registry
    from retraining.sources import read_table
    from retraining.training import load_model

    print(f"{stamp()} {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = read_table(ROOT / "featured_dataset.csv").frame
        base.to_csv(work / "data.csv", index=False)
        cmd = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", "100", "-q", "--no-report"]
        subprocess.run(cmd, cwd=work, check=True, capture_output=True)
        frame = pd.concat([base] * int(np.ceil(args.rows / len(base))), ignore_index=True).iloc[: args.rows].drop(columns="target")
        spec = KeyBook(Registry(work / "models", work / "catboost_model.cbm")).spec("v1.0.0")
        model = load_model(work / "models" / "catboost_model_v1.0.0.cbm")
        names = list(model.feature_names_)
        cats = [names[i] for i in model.get_cat_feature_indices()]
        plain = timed(lambda: model.predict_proba(Pool(frame[names], cat_features=cats)), args.repeats)
        keys = timed(lambda: frame_keys(spec, frame), args.repeats)
        print(f"content keys, {args.rows} rows, {len(spec.columns)} key columns: plain predict_proba {plain:.3f} s, keys {keys:.3f} s ({keys / plain:.2f}x)")

        rng = np.random.default_rng(0)
        n = args.id_rows
        ids = pd.DataFrame({"customer_id": [f"{i:08d}" for i in range(n)], "x": rng.normal(size=n).round(4), "target": rng.integers(0, 2, n)})
        ids.to_csv(work / "ids.csv", index=False)
        table = read_table(work / "ids.csv")
        read = timed(lambda: read_table(work / "ids.csv"), 3)
        written = timed(lambda: ids_as_written(table, work / "ids.csv", "customer_id"), 3)
        parsed = ids_as_written(table, work / "ids.csv", "customer_id")[1]
        legacy = timed(lambda: id_hashes(parsed), 3)  # Dataset.legacy_keys: only a run that meets an older ledger pays it
        print(f"ids as written, {n} rows: read_table {read:.2f} s, ids_as_written {written:.2f} s, older-ledger keys {legacy:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
