"""monitor.py: outcomes joined to the production log; realized AUC, decay, the bake comparison and rollback.

Real CatBoost versions from a real registry; the log is written in the contract's line
layout (retraining.ab.predlog LOG_FIELDS) with the production salt; outcomes as real CSV
files and a real SQLite table. Expected AUCs come from scikit-learn.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, run_main, write_csv
from sklearn.metrics import roc_auc_score

from retraining.ab.predlog import entity_hashes
from retraining.monitoring.cli import main
from retraining.registry import Registry

FEATURES = ["x1", "x2", "x3", "c1", "c2"]


def scores_of(project: Path, version: str, frame: pd.DataFrame) -> np.ndarray:
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    model.load_model(str(project / "models" / f"catboost_model_{version}.cbm"))
    return model.predict_proba(frame[FEATURES])[:, 1]


def entry(project: Path, version: str) -> dict:
    reg = Registry(project / "models", project / "catboost_model.cbm")
    return reg.find(reg.read_log(), version)


def write_log(
    path: Path, project: Path, frame: pd.DataFrame, version: str, previous: str | None = None, day: str = "2026-12-01", batch: str = "a" * 16
) -> np.ndarray:
    """Production lines of ``version`` for every row (and bake-shadow lines of ``previous``): the contract's layout."""
    scores = scores_of(project, version, frame)
    hashes = entity_hashes(frame["customer_id"], "production")
    lines = []
    for arm, ver, served, s in [("production", version, True, scores)] + (
        [("previous", previous, False, scores_of(project, previous, frame))] if previous else []
    ):
        digest = entry(project, ver)["sha256"]
        for i, (h, score) in enumerate(zip(hashes, s, strict=True)):
            line = {
                "request_id": f"{batch}-{i:08x}",
                "time": f"{day}T10:00:00.000Z",
                "experiment": "production",
                "share": None,
                "entity": f"{int(h):016x}",
                "variant": arm,
                "model_version": ver,
                "model_sha256": digest,
                "score": round(float(score), 9),
                "served": served,
            }
            lines.append(json.dumps(line))
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return scores


@pytest.fixture
def deployed(project: Path) -> Path:
    """A registry with v1.0.0 in production, trained on make_frame's learnable data."""
    result = retrainer(project).retrain()
    assert result.deployed
    return project


def traffic(n: int = 3000, seed: int = 7, start_id: int = 100_000, drifted: bool = False) -> pd.DataFrame:
    frame = make_frame(n=n, seed=seed, start_id=start_id)
    if drifted:  # concept drift: the same inputs now mean something else
        rng = np.random.default_rng(seed + 1)
        logit = -1.8 * frame["x1"] + 1.2 * frame["x2"] - 0.8
        frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def monitor(project: Path, *args: str):
    return run_main(main, "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", *args, cwd=project)


def test_realized_auc_per_version_matches_sklearn_and_a_clean_stream_raises_nothing(deployed: Path) -> None:
    live = traffic()
    scores = write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]].iloc[: len(live) // 2])
    ran = monitor(deployed, "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    (v,) = report["versions"]
    half = len(live) // 2
    assert v["version"] == "v1.0.0" and v["rows"] == len(live) and v["rows_with_outcome"] == half
    assert v["realized_auc"] == pytest.approx(roc_auc_score(live["target"][:half], np.round(scores[:half], 9)), abs=1e-6)
    assert v["holdout_auc"] == entry(deployed, "v1.0.0")["metrics"]["candidate"]["roc_auc"]
    assert v["ci_low"] < v["realized_auc"] < v["ci_high"]
    assert report["findings"] == [] and report["actions"] == [] and report["retrain_recommended"] is False
    assert report["counts"]["match_rate"] == 1.0


def test_decay_on_a_concept_drifted_stream(deployed: Path) -> None:
    live = traffic(drifted=True)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    report = json.loads(monitor(deployed, "--json").stdout)
    assert [f["name"] for f in report["findings"]] == ["decay"]
    decay = report["findings"][0]
    assert decay["numbers"]["realized_auc"] < decay["numbers"]["holdout_auc"] and decay["numbers"]["p_value"] < 0.01
    assert report["retrain_recommended"] is True and "below its holdout AUC" in report["reasons"][0]


def test_outcomes_from_an_sqlite_table(deployed: Path) -> None:
    live = traffic(n=1500)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    with sqlite3.connect(deployed / "outcomes.db") as con:
        live[["customer_id", "target"]].to_sql("outcomes", con, index=False)
    ran = run_main(
        main, "--outcomes", "sqlite:///outcomes.db", "--table", "outcomes", "--id-column", "customer_id", "--label-column", "target", "--json", cwd=deployed
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["versions"][0]["rows_with_outcome"] == 1500


def test_a_rerun_reads_only_what_was_appended_and_follows_rotation(deployed: Path) -> None:
    live = traffic(n=2000)
    log = deployed / "predictions.jsonl"
    write_log(log, deployed, live.iloc[:1000], "v1.0.0", day="2026-12-01")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    assert json.loads(monitor(deployed, "--json").stdout)["versions"][0]["rows"] == 1000
    log.rename(deployed / "predictions-20261201-235959.jsonl")  # the writer rotates
    write_log(log, deployed, live.iloc[1000:], "v1.0.0", day="2026-12-02", batch="b" * 16)
    report = json.loads(monitor(deployed, "--json").stdout)
    assert report["versions"][0]["rows"] == 2000 and report["versions"][0]["rows_with_outcome"] == 2000
    assert [d["day"] for d in report["versions"][0]["days"]] == ["2026-12-01", "2026-12-02"]
    state = json.loads((deployed / "models" / "monitoring" / "state.json").read_text())
    assert state["format"] == 1 and len(state["parts"]) == 2
    again = json.loads(monitor(deployed, "--json").stdout)
    assert again["versions"][0]["rows"] == 2000 and len(json.loads((deployed / "models" / "monitoring" / "state.json").read_text())["parts"]) == 2
