"""Generate a synthetic dataset: N rows x 30 features (25 numeric, 5 categorical), learnable target.

    python bench/make_synthetic.py ROWS OUT.csv [--seed 0]

The target is drawn from a logistic model over a few numeric features, two categorical
ones and an interaction, so CatBoost has something to learn (ROC-AUC about 0.8). Written
in chunks, so memory stays flat; never committed (bench/data/ is in .gitignore).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

CATS = {f"cat{i}": [f"c{i}_{k}" for k in range(3 + 4 * i)] for i in range(5)}


def chunk(n: int, rng: np.random.Generator, start: int) -> pd.DataFrame:
    num = rng.normal(size=(n, 25)).astype(np.float32)
    frame = pd.DataFrame(num, columns=[f"num{i}" for i in range(25)])
    frame.insert(0, "row_id", np.arange(start, start + n))
    for name, values in CATS.items():
        frame[name] = rng.choice(values, size=n)
    logit = 1.2 * num[:, 0] - 0.8 * num[:, 1] + 0.6 * num[:, 2] * num[:, 3] + 0.9 * (frame["cat0"] == "c0_0") - 0.5 * (frame["cat1"] == "c1_2") - 1.5
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    frame.loc[rng.random(n) < 0.01, "num5"] = np.nan  # some missing values
    return frame


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", type=int)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    step = 200_000
    for start in range(0, args.rows, step):
        part = chunk(min(step, args.rows - start), rng, start)
        part.to_csv(args.out, mode="w" if start == 0 else "a", header=start == 0, index=False, float_format="%.5g")
    print(f"wrote {args.out} ({args.rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
