"""monitor.py's benchmarks (issue #20): speed, false alarms on clean streams, the label-free estimate.

    python bench/bench_monitor.py speed --lines 10000000 --outcomes 1000000   # first run and an incremental rerun
    python bench/bench_monitor.py alarms --streams 20                          # decay and rollback on clean streams
    python bench/bench_monitor.py cbpe                                         # CBPE vs realized AUC: bank, breast cancer
    python bench/bench_monitor.py power decay --effects 0.1 0.2 0.4 --streams 20   # concept drift: does decay fire?
    python bench/bench_monitor.py power rollback --effects 0.25 0.5 --streams 20   # a really worse deploy: rolled back?

``speed``: a registry with one real version (CatBoost, 30 iterations on synthetic rows), a
production log of LINES lines written by serve.py's writer (``lay_out_production``, spread
over 10 days, every fifth row with a bake shadow), OUTCOMES labelled ids, all under a
temporary folder (never committed); ``python monitor.py`` is timed as a user runs it, then
again after 10,000 more lines (incremental: only those are parsed, the outcome file is that of the
last run, so it is not read), then with nothing new, then after 10,000 more lines and 10 % more outcomes
appended to the file (new ids, logged on every day: only the predictions of ids whose label is new are
joined again, but every day's AUC changes), then after 10,000 more lines with the outcome file written anew
(every label drawn again, so about 40 % of the ids change label). Each timing gives the wall time, the CPU
time of monitor.py and the 1-minute load average. monitor.py runs with the environment it is given: with
``PYTHONDONTWRITEBYTECODE=1`` every run compiles the project's modules again (about 0.2-0.5 s of CPU).

``alarms``: per seed, a registry with v1.0.0 and v1.1.0 trained on the same clean data
(v1.1.0 deployed, or promoted by hand when the rule kept it), a clean live stream from the same distribution scored by
both (v1.0.0 as the bake shadow), outcomes arriving in 5 steps with a monitor run after
each (``--auto-rollback``): a false alarm is any ``decay`` finding, or any rollback; it
also counts the streams whose deploy was judged at all (a bake comparison ran).

``power``: the other side of ``alarms``: streams where production really gets worse, at a
few effect sizes. ``decay``: v1.0.0 trained on clean data is production; on its live
stream a share EFFECT of the outcomes is shuffled among those rows (concept drift: for
them the features no longer say anything, the base rate stays), outcomes arrive in STEPS
steps with a monitor run after each; reported: how often ``decay`` fired and after how
many outcomes, and the realized AUC drop it faced. ``rollback``: v1.1.0 is trained on the
same data with a share EFFECT of its training labels shuffled (a really worse model),
in production over v1.0.0 (deployed by the rule on its own noisy holdout, else promoted
by hand), a clean live stream scored by both (v1.0.0 as the bake
shadow), ``--auto-rollback``: how often and after how many outcomes it was rolled back,
and the live AUC gap it faced.

``cbpe``: train on half of a dataset, score the other half: realized AUC vs the CBPE
estimate from the scores alone, on the bank data and on scikit-learn's breast cancer data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def registry_with(folder: Path, frame: pd.DataFrame, iterations: int = 30, seed: int = 0) -> None:
    from retrain_model import ModelRetrainer

    frame.to_csv(folder / "data.csv", index=False)
    r = ModelRetrainer(
        data_path=folder / "data.csv",
        models_dir=folder / "models",
        production_path=folder / "catboost_model.cbm",
        iterations=iterations,
        thread_count=2,
        progress_every=0,
        seed=seed,
        report=False,
    )
    r.retrain(force=True)


def speed(lines: int, outcomes: int) -> None:
    from helpers import make_frame

    from retraining.ab.predlog import append_predictions, entity_hashes, lay_out_production
    from retraining.registry import Registry

    folder = Path(tempfile.mkdtemp(prefix="bench_monitor_"))
    try:
        registry_with(folder, make_frame(2000))
        reg = Registry(folder / "models", folder / "catboost_model.cbm")
        entry = reg.find(reg.read_log(), "v1.0.0")
        log = folder / "logs" / "predictions.jsonl"
        rng = np.random.default_rng(0)
        ids_total = max(lines // 2, outcomes)
        t0 = time.perf_counter()
        batch = 1_000_000
        for start in range(0, lines, batch):
            n = min(batch, lines - start)
            ids = rng.integers(0, ids_total, size=n)
            p = rng.beta(2, 5, size=n)
            day = f"2026-11-{1 + (start // batch) % 10:02d}T12:00:00.000Z"
            append_predictions(log, lay_out_production(entity_hashes(ids, "production"), version="v1.0.0", sha=entry["sha256"], at=day), p)
        written = time.perf_counter() - t0
        ids = np.arange(outcomes)
        pd.DataFrame({"id": ids, "label": (rng.random(outcomes) < 0.3).astype(int)}).to_csv(folder / "outcomes.csv", index=False)
        argv = [sys.executable, str(ROOT / "monitor.py"), "--outcomes", "outcomes.csv", "--id-column", "id", "--label-column", "label", "--json", "--quiet"]
        first = _timed(argv, folder)
        more = rng.integers(0, ids_total, size=10_000)
        append_predictions(log, lay_out_production(entity_hashes(more, "production"), version="v1.0.0", sha=entry["sha256"]), rng.random(10_000))
        again = _timed(argv, folder)
        idle = _timed(argv, folder)  # nothing new: no new lines, the same outcome file
        ids = np.arange(outcomes, outcomes + outcomes // 10)  # 10 % more outcomes, appended as they arrive: new ids, on every day
        pd.DataFrame({"id": ids, "label": (rng.random(len(ids)) < 0.3).astype(int)}).to_csv(folder / "outcomes.csv", index=False, header=False, mode="a")
        append_predictions(log, lay_out_production(entity_hashes(more, "production"), version="v1.0.0", sha=entry["sha256"]), rng.random(10_000))
        labelled = _timed(argv, folder)
        ids = np.arange(outcomes + outcomes // 10)  # the file written anew, every label drawn again: every id's label may change
        pd.DataFrame({"id": ids, "label": (rng.random(len(ids)) < 0.3).astype(int)}).to_csv(folder / "outcomes.csv", index=False)
        append_predictions(log, lay_out_production(entity_hashes(more, "production"), version="v1.0.0", sha=entry["sha256"]), rng.random(10_000))
        relabelled = _timed(argv, folder)
        print(f"log: {lines:,} lines, {log.stat().st_size / 2**30:.2f} GiB (written in {written:.1f} s); outcomes: {outcomes:,}")
        print(f"first run: {first}; incremental rerun (+10,000 lines): {again}; rerun (nothing new): {idle}")
        print(f"rerun (+10,000 lines, +10 % outcomes appended): {labelled}; rerun (+10,000 lines, every label drawn again): {relabelled}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _timed(argv: list[str], cwd: Path) -> str:
    """Run monitor.py; its wall time, CPU time (user + system, where the OS tells) and the load average around it."""
    cpu0, load0, t0 = _cpu(), _load(), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    took, cpu = time.perf_counter() - t0, _cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"monitor.py failed: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    v = report["versions"][0]
    what = f"{took:.1f} s wall, {cpu:.1f} s CPU, load {load0} -> {_load()}"
    print(f"  rows {v['rows']:,}, with outcome {v['rows_with_outcome']:,}, realized AUC {v['realized_auc']:.4f} ({what})", flush=True)
    return what


def _cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def alarms(streams: int, steps: int = 5) -> None:
    from helpers import make_frame

    from retraining.ab.predlog import append_predictions, entity_hashes, lay_out_production
    from retraining.monitoring.cli import main
    from retraining.registry import Registry
    from retraining.training import load_model, predict

    decays = rollbacks = judged = 0
    for seed in range(streams):
        folder = Path(tempfile.mkdtemp(prefix="bench_alarm_"))
        try:
            registry_with(folder, make_frame(3000, seed=seed), seed=seed)
            registry_with(folder, make_frame(3000, seed=seed), seed=seed + 1000)
            reg = Registry(folder / "models", folder / "catboost_model.cbm")
            with reg.session() as data:
                if data["production"] != "v1.1.0":  # kept for review: promoted by hand (a re-promotion would hide the deploy)
                    reg.promote(data, "v1.1.0", "bench: promoted by hand", kind="promotion")
            data = reg.read_log()
            live = make_frame(6000, seed=seed + 500, start_id=10**6)
            feats = live.drop(columns=["customer_id", "target"])
            scores = {v: predict(load_model(reg.version_path(v)), feats, ["c1", "c2"]) for v in ("v1.0.0", "v1.1.0")}
            hashes = entity_hashes(live["customer_id"], "production")
            shas = {v: reg.find(data, v)["sha256"] for v in scores}
            log = folder / "predictions.jsonl"
            append_predictions(
                log, lay_out_production(hashes, version="v1.1.0", sha=shas["v1.1.0"], previous=("v1.0.0", shas["v1.0.0"])), scores["v1.1.0"], scores["v1.0.0"]
            )
            found = set()
            for k in range(1, steps + 1):
                live.iloc[: len(live) * k // steps][["customer_id", "target"]].to_csv(folder / "outcomes.csv", index=False)
                args = ["--log", str(log), "--outcomes", str(folder / "outcomes.csv"), "--id-column", "customer_id", "--label-column", "target"]
                args += [
                    "--models-dir",
                    str(folder / "models"),
                    "--production",
                    str(folder / "catboost_model.cbm"),
                    "--auto-rollback",
                    "--json",
                    "--quiet",
                    "--no-page",
                ]
                import contextlib
                import io

                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    assert main(args) == 0
                report = json.loads(out.getvalue())
                found |= {f["name"] for f in report["findings"]} | {a["action"] for a in report["actions"]}
                judged += report["bake"] is not None and "p_worse" in report["bake"]
            decays += "decay" in found
            rollbacks += "rollback" in found
            print(f"seed {seed}: {sorted(found) or 'no alarm'}", flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"false alarms over {streams} clean streams ({steps} monitor runs each): "
        f"decay {decays} ({decays / streams:.0%}), rollback {rollbacks} ({rollbacks / streams:.0%}); "
        f"bake comparisons run {judged} (of {streams * steps} monitor runs)"
    )


def _monitor(folder: Path, log: Path, outcomes: pd.DataFrame) -> dict:
    """One ``monitor.py --auto-rollback --json`` run, in-process, on the outcomes so far."""
    import contextlib
    import io

    from retraining.monitoring.cli import main

    outcomes.to_csv(folder / "outcomes.csv", index=False)
    args = ["--log", str(log), "--outcomes", str(folder / "outcomes.csv"), "--id-column", "customer_id", "--label-column", "target"]
    args += ["--models-dir", str(folder / "models"), "--production", str(folder / "catboost_model.cbm"), "--auto-rollback", "--json", "--quiet", "--no-page"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return json.loads(out.getvalue())


def _shuffled(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """``frame`` with the targets of a random share of its rows shuffled among those rows (concept lost for them)."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rng.random(len(frame)) < share)
    out = frame.copy()
    out.loc[out.index[rows], "target"] = rng.permutation(out["target"].to_numpy()[rows])
    return out


def _stream(folder: Path, versions: tuple[str, ...], live: pd.DataFrame) -> tuple[Path, dict]:
    """Log ``live`` as production lines of ``versions[0]`` (and ``versions[1]`` as its bake shadow); each version's live AUC."""
    from retraining.ab.predlog import append_predictions, entity_hashes, lay_out_production
    from retraining.evaluation import roc_auc
    from retraining.registry import Registry
    from retraining.training import load_model, predict

    reg = Registry(folder / "models", folder / "catboost_model.cbm")
    data = reg.read_log()
    feats = live.drop(columns=["customer_id", "target"])
    scores = {v: predict(load_model(reg.version_path(v)), feats, ["c1", "c2"]) for v in versions}
    shas = {v: reg.find(data, v)["sha256"] for v in versions}
    previous = (versions[1], shas[versions[1]]) if len(versions) > 1 else None
    log = folder / "predictions.jsonl"
    lines = lay_out_production(entity_hashes(live["customer_id"], "production"), version=versions[0], sha=shas[versions[0]], previous=previous)
    append_predictions(log, lines, *(scores[v] for v in versions))
    return log, {v: roc_auc(live["target"].to_numpy(), s) for v, s in scores.items()}


def decay_stream(folder: Path, seed: int, share: float, steps: int) -> dict:
    """Production v1.0.0 on a live stream whose outcomes lost the concept for ``share`` of the rows."""
    from helpers import make_frame

    from retraining.registry import Registry

    registry_with(folder, make_frame(3000, seed=seed), seed=seed)
    live = _shuffled(make_frame(6000, seed=seed + 500, start_id=10**6), share, seed + 900)
    log, auc = _stream(folder, ("v1.0.0",), live)
    reg = Registry(folder / "models", folder / "catboost_model.cbm")
    holdout = reg.full_entry(reg.whole_log(reg.read_log()), "v1.0.0")["metrics"]["candidate"]["roc_auc"]
    out = {"drop": holdout - auc["v1.0.0"], "fired_at": None, "rollback": False}
    for k in range(1, steps + 1):
        report = _monitor(folder, log, live.iloc[: len(live) * k // steps][["customer_id", "target"]])
        out["rollback"] |= bool(report["actions"])
        if any(f["name"] == "decay" for f in report["findings"]):
            out["fired_at"] = len(live) * k // steps
            break
    return out


def rollback_stream(folder: Path, seed: int, share: float, steps: int) -> dict:
    """v1.1.0, trained with ``share`` of its labels shuffled, promoted by hand over v1.0.0; a clean live stream."""
    from helpers import make_frame

    from retraining.registry import Registry

    clean = make_frame(3000, seed=seed)
    registry_with(folder, clean, seed=seed)
    registry_with(folder, _shuffled(clean, share, seed + 700), seed=seed + 1000)
    reg = Registry(folder / "models", folder / "catboost_model.cbm")
    with reg.session() as data:
        if data["production"] != "v1.1.0":  # deployed by the rule on its own (noisy) holdout, or kept: then promoted by hand
            reg.promote(data, "v1.1.0", "bench: a worse version promoted by hand", kind="promotion")
    live = make_frame(6000, seed=seed + 500, start_id=10**6)
    log, auc = _stream(folder, ("v1.1.0", "v1.0.0"), live)
    out = {"gap": auc["v1.0.0"] - auc["v1.1.0"], "rolled_back_at": None, "decay": False, "judged": False}
    for k in range(1, steps + 1):
        report = _monitor(folder, log, live.iloc[: len(live) * k // steps][["customer_id", "target"]])
        out["decay"] |= any(f["name"] == "decay" for f in report["findings"])
        out["judged"] |= report["bake"] is not None
        if any(a["action"] == "rollback" for a in report["actions"]):
            out["rolled_back_at"] = len(live) * k // steps
            break
    return out


def power(kind: str, effects: list[float], streams: int, steps: int) -> None:
    """How often (and after how many outcomes) decay fires / a worse deploy is rolled back, per effect size."""
    run, key, size = (decay_stream, "fired_at", "drop") if kind == "decay" else (rollback_stream, "rolled_back_at", "gap")
    for effect in effects:
        results = []
        for seed in range(streams):
            folder = Path(tempfile.mkdtemp(prefix="bench_power_"))
            try:
                results.append(run(folder, seed, effect, steps))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(f"{kind} {effect:g} seed {seed}: {results[-1]}", flush=True)
        hits = [r[key] for r in results if r[key] is not None]
        sizes = np.array([r[size] for r in results])
        at = f"median {np.median(hits):,.0f} outcomes (range {min(hits):,}-{max(hits):,})" if hits else "never"
        other = sum(bool(r.get("rollback") or r.get("decay")) for r in results)
        judged = f"; deploy judged in {sum(r['judged'] for r in results)}" if kind == "rollback" else ""
        print(
            f"== {kind}, effect {effect:g}: AUC {size} mean {sizes.mean():.4f} (min {sizes.min():.4f}, max {sizes.max():.4f}); "
            f"fired in {len(hits)} of {streams} ({len(hits) / streams:.0%}), {at}; other alarms {other}{judged}",
            flush=True,
        )


def _fit_and_score(X: pd.DataFrame, y: np.ndarray, cats: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    from catboost import CatBoostClassifier

    rng = np.random.default_rng(seed)
    train = rng.random(len(y)) < 0.5
    model = CatBoostClassifier(iterations=300, verbose=False, random_seed=seed, thread_count=2, cat_features=cats, allow_writing_files=False)
    model.fit(X[train], y[train])
    return y[~train], model.predict_proba(X[~train])[:, 1]


def cbpe_table() -> None:
    from sklearn.datasets import load_breast_cancer

    from retraining.evaluation import roc_auc
    from retraining.monitoring.stats import expected_auc

    bank = pd.read_csv(ROOT / "featured_dataset.csv")
    target = "target"
    yb = (bank[target].astype(str).str.lower().isin(["1", "yes", "true"])).to_numpy().astype(int)
    Xb = bank.drop(columns=[target])
    cats = [c for c in Xb.columns if not pd.api.types.is_numeric_dtype(Xb[c])]
    bc = load_breast_cancer(as_frame=True)
    sets = {"bank (featured_dataset.csv)": (Xb, yb, cats), "breast cancer (scikit-learn)": (bc.data, bc.target.to_numpy(), [])}
    for name, (X, y, c) in sets.items():
        for seed in range(3):
            yt, p = _fit_and_score(X, y, c, seed)
            real, est = roc_auc(yt, p), expected_auc(p)
            print(f"{name}, seed {seed}: {len(yt)} rows scored, realized AUC {real:.4f}, CBPE {est:.4f}, difference {est - real:+.4f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--lines", type=int, default=10_000_000)
    s.add_argument("--outcomes", type=int, default=1_000_000)
    a = sub.add_parser("alarms")
    a.add_argument("--streams", type=int, default=20)
    sub.add_parser("cbpe")
    w = sub.add_parser("power")
    w.add_argument("kind", choices=["decay", "rollback"])
    w.add_argument("--effects", type=float, nargs="+", default=[0.1, 0.2, 0.4], help="shares of labels shuffled")
    w.add_argument("--streams", type=int, default=20)
    w.add_argument("--steps", type=int, default=10, help="monitor runs per stream, the outcomes arriving in equal parts")
    args = ap.parse_args()
    if args.what == "speed":
        speed(args.lines, args.outcomes)
    elif args.what == "alarms":
        alarms(args.streams)
    elif args.what == "power":
        power(args.kind, args.effects, args.streams, args.steps)
    else:
        cbpe_table()
