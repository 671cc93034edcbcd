"""Metrics against scikit-learn, DeLong against a direct O(m*n) computation, the deploy rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from retraining.evaluation import DeployRule, compare_auc, decide, holdout_metrics


def direct_delong(y, a, b):
    """The DeLong statistic computed literally from its definition (O(m*n))."""
    y = np.asarray(y).astype(bool)
    out = []
    for s in (a, b):
        X, Y = s[y], s[~y]
        psi = (X[:, None] > Y[None, :]).astype(float) + 0.5 * (X[:, None] == Y[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = out
    m, n = y.sum(), (~y).sum()
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    z = (auc_a - auc_b) / math.sqrt(var)
    return auc_a, auc_b, z


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_delong_matches_direct_computation(seed, ties):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n)
    a = y * 0.8 + rng.normal(size=n)
    b = y * 0.5 + rng.normal(size=n)
    if ties:  # coarse scores: many ties, as CatBoost gives on few trees
        a, b = np.round(a, 1), np.round(b, 1)
    res = compare_auc(y, a, b)
    auc_a, auc_b, z = direct_delong(y, a, b)
    assert res.auc_new == pytest.approx(auc_a, abs=1e-12)
    assert res.auc_old == pytest.approx(auc_b, abs=1e-12)
    assert res.z == pytest.approx(z, rel=1e-9)
    assert res.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
    assert res.ci_low < res.delta < res.ci_high
    assert res.ci_high - res.delta == pytest.approx(1.959964 * abs(res.delta / res.z), rel=1e-5)
    assert res["p_value"] == res.p_value
    assert set(res.to_dict()) >= {"auc_new", "auc_old", "delta", "z", "p_value", "ci_low", "ci_high"}


def test_delong_identical_scores_and_clear_winner():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 2000)
    s = rng.normal(size=2000) + y
    same = compare_auc(y, s, s)
    assert same.delta == 0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0
    good = compare_auc(y, y * 3 + rng.normal(size=2000), rng.normal(size=2000))
    assert good.p_value < 1e-10 and good.p_value_one_sided < 1e-10 and good.ci_low > 0.3


def test_delong_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        compare_auc([0, 1, 1], [0.1, 0.2], [0.3, 0.4, 0.5])
    with pytest.raises(ValueError, match="two positive"):
        compare_auc([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    p = np.clip(rng.random(500) * 0.6 + y * 0.3, 0, 1)
    if seed % 2:
        p = np.round(p, 1)  # ties
    got = holdout_metrics(y, p)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), abs=1e-6)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-6)
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-6)


def random_comparison():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    return compare_auc(y, rng.random(400), rng.random(400))


def test_deploy_rule_user_default_ties_deploy_worse_kept():
    rule = DeployRule()
    assert decide(rule, 0.80, None, None) == (True, "first model: nothing in production to compare with: deployed")
    ok, why = decide(rule, 0.80, 0.80, None)
    assert ok and ": equal" in why
    ok, why = decide(rule, 0.81, 0.80, None)
    assert ok and ": better" in why
    ok, why = decide(rule, 0.79, 0.80, None)
    assert not ok and "worse" in why


def test_deploy_rule_optional_gates():
    assert decide(DeployRule(min_auc=0.9), 0.85, None, None)[0] is False
    ok, why = decide(DeployRule(min_improvement=0.01), 0.805, 0.80, None)
    assert not ok and "--min-improvement" in why
    cmp = random_comparison()
    ok, why = decide(DeployRule(require_significance=True), cmp.auc_new, cmp.auc_new - 0.001, cmp)
    assert not ok and "not significantly better" in why
    ok, why = decide(DeployRule(require_significance=True), 0.9, 0.8, None, "champion cannot score")
    assert not ok and "could not be scored" in why
