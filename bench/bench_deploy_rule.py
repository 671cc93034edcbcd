"""How often does the deploy rule ask a person on clean nights, and does it hold clearly weaker models? (issue #27)

Clean growing nights: each data set is shuffled once per seed; night k's file is the first
60 % + 10 % x (k-1) of the shuffled rows (five nights: 60 % ... 100 %, nothing broken).
Each night is one real run (``ModelRetrainer.retrain``, ``--data-checks warn`` so that only
the deploy rule decides, no report). On nights 2-5 the run's decision is counted:

- **asks a person**: the candidate was kept for review (goal: at most 5 % of the clean
  comparisons); the strict rule's count on the same comparisons (candidate < champion)
  is shown next to it;
- **clearly weaker**: before each of nights 2-5, a copy of the models folder meets a weak
  candidate (``--iterations 5 --depth 2``) on the same night's file; it must be held
  (goal: 100 %).

Data sets (all ship inside a package; nothing is downloaded): the bank data
(``featured_dataset.csv``), scikit-learn's breast cancer (569 rows), statsmodels' ``fair``
(6,366 rows; target: any affair). Needs ``pip install -r requirements-bench.txt``.

    nice -n 10 python bench/bench_deploy_rule.py --seeds 3 --iterations 100 [--rule noise|strict] [--only bank]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.retrainer import ModelRetrainer

ROOT = Path(__file__).resolve().parent.parent
NIGHTS = (0.6, 0.7, 0.8, 0.9, 1.0)
MARGIN = 0.005  # the default --margin


def bank() -> pd.DataFrame:
    return pd.read_csv(ROOT / "featured_dataset.csv")


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns={c: c.replace(" ", "_") for c in frame.columns})


def fair() -> pd.DataFrame:
    from statsmodels.datasets import fair as fair_data

    frame = fair_data.load_pandas().data
    return frame.assign(target=(frame.pop("affairs") > 0).astype(int))


DATASETS = {"bank": bank, "breast_cancer": breast_cancer, "fair": fair}


def run_night(folder: Path, night_csv: Path, args: argparse.Namespace, **overrides) -> dict:
    settings = {
        "data_path": night_csv,
        "models_dir": folder / "models",
        "production_path": folder / "catboost_model.cbm",
        "iterations": args.iterations,
        "seed": 42,
        "thread_count": args.threads,
        "progress_every": 0,
        "report": False,
        "data_checks": "warn",
        "rule": args.rule,
        **overrides,
    }
    result = ModelRetrainer(**settings).retrain(force=True)
    return {
        "status": str(result.status),
        "candidate_auc": result.candidate_auc,
        "champion_auc": result.champion_auc,
        "verdict": (result.rule or {}).get("verdict"),
        "p_worse": (result.rule or {}).get("p_worse"),
        "drop": (result.rule or {}).get("drop"),
        "reason": result.reason,
        "slide": (result.rule or {}).get("slide"),
        "loss": (result.rule or {}).get("loss"),
    }


def weak_night(folder: Path, night_csv: Path, args: argparse.Namespace) -> dict:
    """A clearly weaker candidate against tonight's champion, in a throw-away copy of the folder."""
    weak = folder / "weak"
    shutil.rmtree(weak, ignore_errors=True)
    shutil.copytree(folder / "models", weak / "models")
    shutil.copy2(folder / "catboost_model.cbm", weak / "catboost_model.cbm")
    try:
        return run_night(weak, night_csv, args, iterations=5, depth=2)
    finally:
        shutil.rmtree(weak, ignore_errors=True)


def one_series(name: str, frame: pd.DataFrame, seed: int, args: argparse.Namespace, work: Path) -> list[dict]:
    shuffled = frame.iloc[np.random.default_rng(seed).permutation(len(frame))].reset_index(drop=True)
    folder = work / f"{name}-{seed}"
    folder.mkdir(parents=True)
    rows = []
    for night, share in enumerate(NIGHTS, start=1):
        csv = folder / f"night{night}.csv"
        shuffled.iloc[: round(share * len(shuffled))].to_csv(csv, index=False)
        weak = weak_night(folder, csv, args) if night > 1 else None
        clean = run_night(folder, csv, args)
        rows.append({"dataset": name, "seed": seed, "night": night, "clean": clean, "weak": weak})
        line = f"{name} seed {seed} night {night}: {clean['status']} ({clean['verdict']}, drop {clean['drop']}, p_worse {clean['p_worse']})"
        print(line + (f"; weak: {weak['status']} ({weak['verdict']})" if weak else ""), flush=True)
    return rows


def summarize(rows: list[dict]) -> dict:
    out = {}
    for name in [*dict.fromkeys(r["dataset"] for r in rows), "all"]:
        mine = [r for r in rows if r["night"] > 1 and name in ("all", r["dataset"])]
        asks = sum(r["clean"]["status"] != "deployed" for r in mine)
        strict_asks = sum(r["clean"]["candidate_auc"] < r["clean"]["champion_auc"] for r in mine)
        noise = sum(r["clean"]["verdict"] == "within noise" for r in mine)
        held = sum(r["weak"]["status"] != "deployed" for r in mine)
        beyond = [r for r in mine if r["weak"]["drop"] is not None and r["weak"]["drop"] > MARGIN]  # measurably weaker on the holdout
        counts = {"asks": asks, "strict_would_ask": strict_asks, "within_noise": noise, "weak_held": held}
        counts["weak_beyond_margin"] = len(beyond)
        counts["weak_beyond_margin_held"] = sum(r["weak"]["status"] != "deployed" for r in beyond)
        out[name] = {"comparisons": len(mine), **counts}
    return out


def share(s: dict, key: str) -> str:
    n = s["comparisons"]
    return f"{s[key]} ({100 * s[key] / n:.0f} %)" if n else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rule", choices=("noise", "strict"), default="noise")
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="only these data sets")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "deploy_rule.json")
    args = parser.parse_args()
    started = time.time()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-deploy-rule-") as work:
        for name in args.only or DATASETS:
            frame = DATASETS[name]()
            for seed in range(args.seeds):
                rows += one_series(name, frame, seed, args, Path(work))
    summary = summarize(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows, "seconds": round(time.time() - started)}, indent=2), encoding="utf-8")
    print_table(summary)
    print(f"\n{time.time() - started:.0f} s; rows in {args.out}")
    return 0


def print_table(summary: dict) -> None:
    print("\n| data set | clean comparisons | asks a person | strict would ask | deployed within noise | weak held | weak > margin below: held |")
    print("|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        cells = [share(s, k) for k in ("asks", "strict_would_ask", "within_noise", "weak_held")]
        cells.append(f"{s['weak_beyond_margin_held']} of {s['weak_beyond_margin']}")
        print(f"| {name} | {s['comparisons']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
