"""The slice gate speaks for every candidate that would deploy, a deploy within noise included (#21 item 4, #27).

The gate used to speak only when the candidate won overall. Since the noise rule, a
candidate a little below the champion deploys too ("equal within noise"), and
bench_guard's slice regression showed one such deploy hiding a collapsed segment (0.51
against 0.73 on a quarter of the rows) without a word. Expected AUCs come from
scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, write_csv
from sklearn.metrics import roc_auc_score

from retraining.guard.findings import CheckSettings
from retraining.guard.outcome import slice_gate


def _a_little_lower_overall_and_collapsed_on_e(seed: int = 4, n: int = 3000):
    """The candidate a little below the champion overall, and without signal on region e."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    region = np.array(list("abcde"))[rng.integers(0, 5, n)]
    champ = y + rng.normal(0, 0.75, n)
    cand = y + rng.normal(0, 0.6, n)  # a little better on a-d ...
    cand[region == "e"] = rng.normal(0, 1, int((region == "e").sum()))  # ... and nothing on e
    return pd.DataFrame({"region": region}), y, cand, champ


def test_a_deploy_within_noise_with_a_collapsed_slice_is_named():
    X, y, cand, champ = _a_little_lower_overall_and_collapsed_on_e()
    overall_cand, overall_champ = roc_auc_score(y, cand), roc_auc_score(y, champ)
    assert overall_cand < overall_champ  # it does not win overall
    e = X.region.to_numpy() == "e"
    found, table = slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings(), deploys=True)
    assert [w["value"] for w in found[0].numbers["slices"]] == ["e"] and "equal within noise overall" in found[0].message
    assert found[0].numbers["slices"][0]["candidate"] == pytest.approx(roc_auc_score(y[e], cand[e]), abs=1e-4)
    assert found[0].numbers["overall"] == {"candidate": pytest.approx(overall_cand, abs=1e-4), "champion": pytest.approx(overall_champ, abs=1e-4)}
    assert slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings(), deploys=False)[0] == []  # held: nothing to add
    assert slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings())[0] == []  # no verdict given: "wins overall", as strict
    assert len(table) == 5


def test_a_real_run_passes_the_rules_verdict_to_the_gate(tmp_path):
    """A candidate learned segment 'north' backwards; a rule wide enough to call it equal deploys it, and the gate speaks."""
    from retraining.data.dataset import load_dataset

    frame = make_frame(1500, seed=3)
    write_csv(tmp_path / "data.csv", frame)
    settings = {"slice_min_rows": 50}
    retrainer(tmp_path, check_settings=settings).retrain()
    holdout = load_dataset(tmp_path / "data.csv").holdout
    broken = frame.copy()
    rows = (broken.c2 == "north").to_numpy() & ~holdout  # the training side only: the holdout keeps the truth
    broken.loc[rows, "target"] = 1 - broken.loc[rows, "target"]
    write_csv(tmp_path / "data.csv", broken)
    wide = {"alpha": 1e-300, "margin": 1.0, "loss_tolerance": 100.0, "recent_versions": 0}  # everything is "equal within noise"
    common = {"check_settings": settings, "slice_columns": ["c2"], "data_checks": "warn"}
    held = retrainer(tmp_path, rule="strict", **common).retrain(force=True)
    assert held.status == "kept for review" and held.candidate_auc < held.champion_auc
    assert "slice_regression" not in {c["name"] for c in held.checks}  # strict holds it: the gate has nothing to add
    deployed = retrainer(tmp_path, **wide, **common).retrain(force=True)
    assert deployed.status == "deployed" and deployed.rule["verdict"] == "within noise", deployed.reason
    found = [c for c in deployed.checks if c["name"] == "slice_regression"]
    assert found and found[0]["columns"] == ["c2"] and "north" in found[0]["message"], deployed.checks
