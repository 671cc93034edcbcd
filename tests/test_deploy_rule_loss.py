"""The deploy rule's log-loss test (#27): "equal within noise" is also asked of the probabilities.

Expected log losses and Brier scores come from scikit-learn, the paired statistic from
scipy's ``ttest_rel`` and the normal tail from ``scipy.stats.norm``; the rule's inputs are
numbers written in the test, and its expected verdicts follow from them by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_main
from scipy.stats import norm, ttest_rel
from sklearn.metrics import brier_score_loss, log_loss

from retraining.errors import ExitCode
from retraining.evaluation import AucComparison, LossComparison, compare_losses
from retraining.rules import DeployRule, judge

WITHIN = 0.40  # a DeLong p (candidate worse) well above alpha: the ROC-AUC cannot tell the two apart


def delong(p: float) -> AucComparison:
    """A DeLong result whose one-sided p for "candidate worse" is ``p`` (z = Phi^-1(p), by scipy)."""
    z = float(norm.ppf(p))
    return AucComparison(0.97, 0.9714, -0.0014, z, 2 * norm.sf(abs(z)), float(norm.sf(z)), -0.01, 0.01, 30, 50)


def losses(new: float, old: float, p: float) -> LossComparison:
    """A log-loss comparison with mean losses ``new`` and ``old`` and one-sided p ``p`` (z from scipy)."""
    return LossComparison(new, old, 0.0, 0.0, float(norm.isf(p)), p, 100)


def test_compare_losses_is_scikit_learns_losses_and_a_paired_test():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 400)
    good = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.15, 400), 0.02, 0.98)
    flat = np.clip(0.5 + (good - 0.5) * 0.5 + rng.normal(0, 0.02, 400), 0.02, 0.98)  # same ranking, less sure
    got = compare_losses(y, flat, good)
    rows = lambda p: -(y * np.log(p) + (1 - y) * np.log(1 - p))  # noqa: E731
    t = ttest_rel(rows(flat), rows(good)).statistic  # the paired t statistic: mean(d) / (sd(d) / sqrt(n))
    assert got.log_loss_new == pytest.approx(log_loss(y, flat), rel=1e-12) and got.log_loss_old == pytest.approx(log_loss(y, good), rel=1e-12)
    assert got.brier_new == pytest.approx(brier_score_loss(y, flat), rel=1e-12) and got.brier_old == pytest.approx(brier_score_loss(y, good), rel=1e-12)
    assert got.z == pytest.approx(t, rel=1e-9) and got.p_worse == pytest.approx(norm.sf(t), rel=1e-9) and got.rows == 400
    assert got.ratio == pytest.approx(log_loss(y, flat) / log_loss(y, good), rel=1e-12) and got.p_worse < 0.05
    same = compare_losses(y, good, good)
    assert same.z == 0.0 and same.p_worse == 0.5 and same.ratio == 1.0
    assert compare_losses(y, flat, good).to_dict()["ratio"] == pytest.approx(round(got.ratio, 6))


@pytest.mark.parametrize(
    ("new", "old", "p", "tolerance", "deploys", "says"),
    [
        (0.2010, 0.2000, 0.30, 0.1, True, "<= x1.1; the fresher model wins"),  # equal on both measures
        (0.2040, 0.2000, 0.049, 0.1, False, "p < 0.05: significantly worse"),  # a 2 % higher log loss, but significant
        (0.2040, 0.2000, 0.05, 0.1, True, "<= x1.1"),  # p equal to alpha is not significant
        (0.2500, 0.2000, 0.30, 0.1, False, "more than x1.1"),  # x1.25 (breast cancer's 5-tree model: not significant on 85 rows)
        (0.375, 0.25, 0.30, 0.5, True, "<= x1.5"),  # exactly the tolerance counts as equal
        (0.3751, 0.25, 0.30, 0.5, False, "more than x1.5"),
        (0.2300, 0.2000, 0.30, 0.2, True, "<= x1.2"),  # the tolerance is a setting
        (0.2500, 0.2000, 0.01, 0.1, False, "p < 0.05: significantly worse, more than x1.1"),
    ],
)
def test_a_deploy_within_noise_also_needs_an_equal_log_loss(new, old, p, tolerance, deploys, says):
    out = judge(DeployRule(loss_tolerance=tolerance), 0.9700, 0.9714, delong(WITHIN), losses=losses(new, old, p))
    assert out.deploy is deploys and out.rule == "noise" and says in out.why, out.why
    assert out.verdict == ("within noise" if deploys else "worse log loss") and out.within_noise is deploys
    assert out.drop == pytest.approx(0.0014, abs=1e-12) and out.p_worse == pytest.approx(WITHIN, abs=1e-12)
    assert out.loss["ratio"] == pytest.approx(new / old, abs=1e-6) and out.loss["p_worse"] == pytest.approx(p, abs=1e-12)


def test_the_why_line_gives_both_measures():
    kept = judge(DeployRule(), 0.9710, 0.9724, delong(0.44), losses=losses(0.1837, 0.1587, 0.25))
    auc = "DeLong one-sided p = 0.44, drop 0.0014 <= 0.005"
    ratio = f"{0.1837 / 0.1587:.3f}"  # 1.158
    expected = f"ROC-AUC 0.9710 vs 0.9724: equal within noise by ROC-AUC ({auc}), but worse by log loss 0.1837 vs 0.1587 (x{ratio}), "
    assert kept.reason == expected + "paired one-sided p = 0.25; more than x1.1: kept for review"
    deployed = judge(DeployRule(), 0.8506, 0.8524, delong(0.28), losses=losses(0.3012, 0.2998, 0.41))
    loss = f"log loss 0.3012 vs 0.2998 (x{0.3012 / 0.2998:.3f}), paired one-sided p = 0.41, <= x1.1"
    assert (
        deployed.reason
        == f"ROC-AUC 0.8506 vs 0.8524: equal within noise (DeLong one-sided p = 0.28, drop 0.0018 <= 0.005; {loss}; the fresher model wins): deployed"
    )


def test_the_log_loss_is_asked_only_of_a_deploy_within_noise():
    awful = losses(0.60, 0.20, 1e-9)  # three times the log loss, significant
    better = judge(DeployRule(), 0.9720, 0.9714, delong(0.9), losses=awful)
    assert better.deploy and better.verdict == "better" and "log loss" not in better.why  # an outright win: no extra test
    tie = judge(DeployRule(), 0.9714, 0.9714, delong(0.5), losses=awful)
    assert tie.deploy and tie.verdict == "equal"
    worse = judge(DeployRule(), 0.9600, 0.9714, delong(0.01), losses=losses(0.19, 0.20, 0.9))
    assert not worse.deploy and worse.verdict == "worse"  # held by the ROC-AUC whatever the log loss
    assert better.loss["ratio"] == pytest.approx(3.0) and worse.loss["p_worse"] == pytest.approx(0.9)  # recorded all the same


def test_strict_stays_exactly_greater_or_equal_on_the_raw_aucs_whatever_the_log_loss():
    awful = losses(0.60, 0.20, 1e-9)
    rule = DeployRule(rule="strict")
    assert judge(rule, 0.9714, 0.9714, delong(0.5), losses=awful).deploy is True
    out = judge(rule, 0.971399, 0.9714, delong(0.5), losses=losses(0.10, 0.20, 0.99))  # lower AUC, far better log loss
    assert out.deploy is False and out.verdict == "worse" and out.rule == "strict"
    assert out.to_dict(rule)["loss"]["ratio"] == pytest.approx(0.5)  # recorded under strict too


def test_without_losses_the_noise_rule_judges_the_roc_auc_alone():
    out = judge(DeployRule(), 0.9700, 0.9714, delong(WITHIN))
    assert out.deploy and out.verdict == "within noise" and out.loss is None and "log loss" not in out.why


def test_the_rule_record_the_report_and_mlflow_carry_the_loss_numbers():
    from retraining.mlflow_sync import rule_tags
    from retraining.report.html import rule_paragraph

    rule = DeployRule(loss_tolerance=0.2)
    record = judge(rule, 0.9700, 0.9714, delong(WITHIN), losses=losses(0.25, 0.20, 0.30)).to_dict(rule)
    assert record["loss_tolerance"] == 0.2 and record["verdict"] == "worse log loss"
    assert record["loss"]["log_loss_new"] == 0.25 and record["loss"]["ratio"] == pytest.approx(1.25)
    tags = rule_tags(record)
    assert tags["retrain.rule.loss_tolerance"] == "0.2" and float(tags["retrain.rule.loss_ratio"]) == pytest.approx(1.25)
    assert float(tags["retrain.rule.loss_p_worse"]) == pytest.approx(0.30) and tags["retrain.rule.verdict"] == "worse log loss"
    assert "log loss 0.2500 vs 0.2000 (x1.250, tolerance x1.2), paired one-sided p = 0.3" in rule_paragraph(record)


def test_the_cli_flag_reaches_the_json_and_the_log_entry(project):
    from retrain_model import main

    base = ("--data", "data.csv", "--iterations", "30", "--threads", "2", "--no-report")
    assert run_main(main, *base, cwd=project).returncode == 0
    ran = run_main(main, *base, "--seed", "7", "--json", "--loss-tolerance", "0.3", cwd=project)
    assert ran.returncode == ExitCode.OK, ran.stderr
    result = json.loads(ran.stdout)
    rule = result["rule"]
    meta = json.loads((project / "models" / "metadata" / f"{result['version']}.json").read_text())
    assert rule["loss_tolerance"] == 0.3 and meta["rule"] == rule
    assert rule["loss"]["log_loss_new"] == pytest.approx(meta["metrics"]["candidate"]["log_loss"], abs=1e-6)  # the rows of the metrics
    assert rule["loss"]["log_loss_old"] == pytest.approx(meta["metrics"]["champion"]["log_loss"], abs=1e-6)
    entry = json.loads((project / "models" / "version_log.json").read_text())["versions"][-1]
    assert entry["rule"]["loss"] == rule["loss"] and entry["rule"]["loss_tolerance"] == 0.3


def test_a_bad_loss_tolerance_is_one_line_and_nothing_written(project):
    from retrain_model import main

    ran = run_main(main, "--data", "data.csv", "--loss-tolerance", "-0.1", cwd=project)
    assert ran.returncode == ExitCode.BAD_INPUT and "loss tolerance" in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert not (project / "models").exists()
