"""The deploy rule's outcome field by field: which rule decided, its verdict, the numbers it
recorded, each gate at exactly its value, the slow-slide guard's record. Written for the
mutants mutmut left alive in ``retraining/rules.py`` (bench/MUTATION.md).

A comparison is given by its z; "candidate worse" has p = Phi(z), computed here with scipy.
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from retraining.rules import DeployRule, apply_slide, judge


class Comparison:
    """What the rule reads from a DeLong comparison: z, and the one-sided p of "better" (1 - Phi(z))."""

    def __init__(self, p_worse: float) -> None:
        self.z = float(norm.ppf(p_worse))
        self.p_value_one_sided = float(norm.sf(self.z))


def fields(out) -> tuple:
    return (out.deploy, out.verdict, out.rule, None if out.p_worse is None else round(out.p_worse, 9), out.drop)


def test_the_floor_and_the_first_model_name_the_rule_in_force():
    cmp = Comparison(0.3)
    assert fields(judge(DeployRule(min_auc=0.9), 0.85, 0.8, cmp)) == (False, "floor", "noise", None, None)
    assert fields(judge(DeployRule(min_auc=0.9, rule="strict"), 0.85, 0.8, cmp)) == (False, "floor", "strict", None, None)
    assert fields(judge(DeployRule(), 0.85, None, None)) == (True, "first", "noise", None, None)
    assert fields(judge(DeployRule(rule="strict"), 0.85, None, None)) == (True, "first", "strict", None, None)


def test_strict_records_the_paired_p_and_the_drop_on_every_path():
    strict, cmp = DeployRule(rule="strict"), Comparison(0.3)
    better = judge(strict, 0.86, 0.85, cmp)
    assert fields(better) == (True, "better", "strict", 0.3, -0.01) and better.why == "ROC-AUC 0.8600 vs 0.8500: better (--rule strict)"
    assert fields(judge(strict, 0.85, 0.85, cmp)) == (True, "equal", "strict", 0.3, 0.0)
    worse = judge(strict, 0.84, 0.85, cmp)
    assert fields(worse) == (False, "worse", "strict", 0.3, 0.01) and worse.why == "ROC-AUC 0.8400 vs 0.8500: worse on the raw numbers (--rule strict)"
    short = judge(DeployRule(rule="strict", min_improvement=0.02), 0.86, 0.85, cmp)
    assert fields(short) == (False, "min improvement", "strict", 0.3, -0.01)
    assert short.why == "ROC-AUC 0.8600 vs 0.8500: improvement +0.0100 is below --min-improvement 0.0200 (--rule strict)"


def test_the_noise_rule_says_better_or_equal_with_its_numbers():
    cmp = Comparison(0.3)
    better = judge(DeployRule(), 0.86, 0.85, cmp)
    assert fields(better) == (True, "better", "noise", 0.3, -0.01) and better.why == "ROC-AUC 0.8600 vs 0.8500: better"
    equal = judge(DeployRule(), 0.85, 0.85, cmp)
    assert fields(equal) == (True, "equal", "noise", 0.3, 0.0) and equal.why == "ROC-AUC 0.8500 vs 0.8500: equal"


def test_the_noise_rule_at_exactly_alpha_and_exactly_the_margin():
    cmp = Comparison(0.04)
    at_alpha = DeployRule(alpha=0.5 * math.erfc(-cmp.z / math.sqrt(2)))  # Phi(z) written out: p of "worse" equals alpha exactly
    assert judge(at_alpha, 0.848, 0.85, cmp).verdict == "within noise"
    only_p = judge(DeployRule(), 0.8450, 0.85, cmp)  # drop exactly the margin, p = 0.04 < 0.05
    assert only_p.why == "ROC-AUC 0.8450 vs 0.8500: worse (DeLong one-sided p = 0.04, drop 0.0050; p < 0.05: significantly worse)"
    only_drop = judge(at_alpha, 0.84, 0.85, cmp)  # p = alpha, drop over the margin
    assert only_drop.why == f"ROC-AUC 0.8400 vs 0.8500: worse (DeLong one-sided p = 0.04, drop 0.0100; drop > margin {0.005:g})"


def test_the_gates_work_only_on_a_deploy_and_say_which():
    cmp = Comparison(0.3)
    worse = judge(DeployRule(min_improvement=0.01), 0.80, 0.85, Comparison(0.001))
    assert worse.verdict == "worse"  # a loss stays a loss, not "min improvement"
    assert judge(DeployRule(min_improvement=0.01), 0.86, 0.85, cmp).deploy is True  # exactly the improvement asked for
    short = judge(DeployRule(min_improvement=0.01), 0.849, 0.85, cmp)
    assert fields(short) == (False, "min improvement", "noise", 0.3, 0.001)
    assert short.why == "ROC-AUC 0.8490 vs 0.8500: improvement -0.0010 is below --min-improvement 0.0100"
    unscored = judge(DeployRule(require_significance=True), 0.86, 0.85, None)
    assert (unscored.deploy, unscored.verdict) == (False, "not significant")
    assert judge(DeployRule(require_significance=True), 0.86, 0.85, Comparison(0.6)).verdict == "not significant"


def test_the_log_entry_carries_the_rule_and_its_numbers_to_8_digits():
    cmp = Comparison(0.123456789123)
    out = judge(DeployRule(), 0.849, 0.85, cmp)
    d = out.to_dict(DeployRule())
    assert {k: d[k] for k in ("rule", "verdict", "p_worse", "drop", "slide", "margin", "alpha")} == {
        "rule": "noise",
        "verdict": "within noise",
        "p_worse": round(float(norm.cdf(cmp.z)), 8),
        "drop": 0.001,
        "slide": None,
        "margin": 0.005,
        "alpha": 0.05,
    }
    assert round(float(norm.cdf(cmp.z)), 8) != round(float(norm.cdf(cmp.z)), 9)
    first = judge(DeployRule(), 0.85, None, None).to_dict(DeployRule())
    assert (first["p_worse"], first["drop"]) == (None, None)


def _slide(best) -> dict:
    return {"versions": [], "skipped": [], "best": best}


def test_the_slide_guard_records_its_numbers_and_holds_only_a_deploy():
    base = judge(DeployRule(), 0.85, 0.85, Comparison(0.5))
    empty = _slide(None)
    kept = apply_slide(DeployRule(), base, empty)
    assert kept.deploy is True and kept.slide == empty  # recorded even when it holds nothing
    best = {"version": "v1.2.0", "auc": 0.9, "candidate_auc": 0.84, "rows": 400}
    lost = judge(DeployRule(), 0.84, 0.85, Comparison(0.001))
    held = apply_slide(DeployRule(), lost, _slide(best))
    assert (held.deploy, held.verdict, held.slide["best"]) == (False, "worse", best)  # already kept: its own verdict stays
    assert apply_slide(DeployRule(), base, None) == base


@pytest.mark.parametrize("rule", ["noise", "strict"])
def test_a_tie_is_equal_under_either_rule(rule):
    out = judge(DeployRule(rule=rule), 0.8, 0.8, Comparison(0.5))
    assert (out.deploy, out.verdict, out.drop) == (True, "equal", 0.0)


def test_the_log_entry_names_the_rule_that_decided_not_the_one_asked_for():
    """The noise rule without a paired test falls back to strict: the entry says strict."""
    out = judge(DeployRule(), 0.849, 0.85, None)
    assert out.to_dict(DeployRule())["rule"] == "strict"


# -- the log-loss condition of a deploy within noise -------------------------------------------------
def _losses(new: float, old: float, p: float):
    from retraining.evaluation import LossComparison

    return LossComparison(new, old, 0.1, 0.1, float(norm.isf(p)), p, 500)


NOISE = "DeLong one-sided p = 0.3, drop 0.0010"


def test_a_deploy_within_noise_also_needs_a_log_loss_no_worse_than_the_tolerance():
    cmp = Comparison(0.3)
    fine = _losses(0.42, 0.40, 0.3)  # x1.05
    out = judge(DeployRule(), 0.849, 0.85, cmp, losses=fine)
    assert fields(out) == (True, "within noise", "noise", 0.3, 0.001) and out.loss == fine.to_dict()
    assert out.to_dict(DeployRule())["loss"] == fine.to_dict()
    loss = "log loss 0.4200 vs 0.4000 (x1.050), paired one-sided p = 0.3"
    assert out.why == f"ROC-AUC 0.8490 vs 0.8500: equal within noise ({NOISE} <= 0.005; {loss}, <= x1.1; the fresher model wins)"
    assert 0.004741 / 0.00431 > 1.0 + 0.1 and round(0.004741 / 0.00431, 9) == 1.1  # x1.1 up to float dust
    assert judge(DeployRule(), 0.849, 0.85, cmp, losses=_losses(0.004741, 0.00431, 0.3)).deploy is True
    dust = judge(DeployRule(), 0.849, 0.85, cmp, losses=_losses(0.44000000004, 0.4, 0.3))  # x1.1000000001: 1e-10 over, within 9 digits
    assert dust.deploy is True and round(0.44000000004 / 0.4, 10) > 1.1
    worse = judge(DeployRule(), 0.849, 0.85, cmp, losses=_losses(0.48, 0.40, 0.3))
    assert fields(worse) == (False, "worse log loss", "noise", 0.3, 0.001)
    loss = "log loss 0.4800 vs 0.4000 (x1.200), paired one-sided p = 0.3"
    assert worse.why == f"ROC-AUC 0.8490 vs 0.8500: equal within noise by ROC-AUC ({NOISE} <= 0.005), but worse by {loss}; more than x1.1"
    both = judge(DeployRule(), 0.849, 0.85, cmp, losses=_losses(0.48, 0.40, 0.01))
    assert both.why.endswith("paired one-sided p = 0.01; p < 0.05: significantly worse, more than x1.1")
    assert judge(DeployRule(), 0.849, 0.85, cmp, losses=_losses(0.42, 0.40, 0.05)).deploy is True  # p exactly alpha
    assert judge(DeployRule(loss_tolerance=0.25), 0.849, 0.85, cmp, losses=_losses(0.48, 0.40, 0.3)).why.endswith("<= x1.25; the fresher model wins)")


def test_the_log_loss_decides_only_a_deploy_within_noise_and_is_recorded_on_every_path():
    bad = _losses(0.80, 0.40, 0.001)
    better = judge(DeployRule(), 0.86, 0.85, Comparison(0.3), losses=bad)
    assert (better.deploy, better.verdict, better.loss) == (True, "better", bad.to_dict())
    lost = judge(DeployRule(), 0.80, 0.85, Comparison(0.001), losses=bad)
    assert (lost.verdict, lost.loss) == ("worse", bad.to_dict())
    strict = judge(DeployRule(rule="strict"), 0.849, 0.85, Comparison(0.3), losses=bad)
    assert (strict.verdict, strict.rule, strict.loss) == ("worse", "strict", bad.to_dict())
    assert judge(DeployRule(), 0.849, 0.85, Comparison(0.3)).loss is None
