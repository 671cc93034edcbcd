"""Statistics of an A/B (or shadow) experiment on ROC-AUC.

- :func:`auc_with_ci`: one arm's ROC-AUC with its DeLong standard error and 95 % CI.
- :func:`unpaired_difference`: split mode; two independent samples, so the variance of
  the difference is the sum of the two variances.
- Shadow mode is paired: :func:`retraining.evaluation.compare_auc`.
- :func:`srm_test`: sample-ratio mismatch, chi-square of the arm counts against the
  configured share (one degree of freedom).
- :func:`recommend`: promote the challenger, keep the champion, or keep collecting (with
  an estimate of how many more labelled rows a decision would take).
"""

from __future__ import annotations

import math

import numpy as np

from retraining.evaluation import structural_components

Z95 = 1.959963984540054
Z80_POWER = 0.8416212335729143
SRM_ALPHA = 0.001


def auc_with_ci(y: np.ndarray, scores: np.ndarray, components=structural_components) -> dict:
    """n, positives, ROC-AUC, DeLong standard error and 95 % CI of one arm.

    ``components(positives, negatives)`` gives the AUC and the DeLong placement values; the
    monitor passes a one-sort version of :func:`retraining.evaluation.structural_components`.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=float)
    m, n = int(y.sum()), int((~y).sum())
    out = {"n": len(y), "positives": m, "roc_auc": None, "se": None, "ci_low": None, "ci_high": None}
    if m < 2 or n < 2:
        return out
    auc, v10, v01 = components(s[y], s[~y])
    var = float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    se = math.sqrt(max(var, 0.0))
    out.update(roc_auc=float(auc), se=se, ci_low=max(0.0, auc - Z95 * se), ci_high=min(1.0, auc + Z95 * se))
    return out


def unpaired_difference(champion: dict, challenger: dict) -> dict | None:
    """Challenger minus champion for two independent arms (needs both AUCs)."""
    if champion["roc_auc"] is None or challenger["roc_auc"] is None:
        return None
    delta = challenger["roc_auc"] - champion["roc_auc"]
    se = math.sqrt(champion["se"] ** 2 + challenger["se"] ** 2)
    z = delta / se if se > 0 else (0.0 if delta == 0 else math.copysign(math.inf, delta))
    return {
        "delta": delta,
        "se": se,
        "z": z,
        "p_value": math.erfc(abs(z) / math.sqrt(2)),
        "p_challenger_better": 0.5 * math.erfc(z / math.sqrt(2)),
        "p_champion_better": 0.5 * math.erfc(-z / math.sqrt(2)),
        "ci_low": delta - Z95 * se,
        "ci_high": delta + Z95 * se,
        "test": "unpaired DeLong (independent arms)",
    }


def paired_difference(comparison) -> dict:
    """The paired DeLong result (challenger = new, champion = old) in the same shape."""
    d = comparison
    se = (d.ci_high - d.delta) / Z95 if d.ci_high != d.delta else 0.0
    return {
        "delta": d.delta,
        "se": se,
        "z": d.z,
        "p_value": d.p_value,
        "p_challenger_better": d.p_value_one_sided,
        "p_champion_better": 0.5 * math.erfc(-d.z / math.sqrt(2)) if math.isfinite(d.z) else float(d.z < 0),
        "ci_low": d.ci_low,
        "ci_high": d.ci_high,
        "test": "paired DeLong (same rows)",
    }


def srm_test(n_champion: int, n_challenger: int, share: float) -> dict:
    """Chi-square test of the observed split against the configured challenger share."""
    total = n_champion + n_challenger
    expected = (total * (1 - share), total * share)
    if total == 0 or min(expected) == 0:
        return {"chi2": None, "p_value": None, "mismatch": False, "expected_share": share, "observed_share": None}
    chi2 = sum((o - e) ** 2 / e for o, e in zip((n_champion, n_challenger), expected, strict=True))
    p = math.erfc(math.sqrt(chi2 / 2))  # chi-square with one degree of freedom
    return {"chi2": chi2, "p_value": p, "mismatch": p < SRM_ALPHA, "expected_share": share, "observed_share": n_challenger / total}


def rows_needed(diff: dict, labelled: int, alpha_z: float = Z95) -> int | None:
    """Labelled rows in all for the observed difference to reach significance with 80 % power."""
    if diff is None or diff["delta"] == 0 or not diff["se"]:
        return None
    factor = ((alpha_z + Z80_POWER) * diff["se"] / abs(diff["delta"])) ** 2
    return math.ceil(labelled * factor)


def recommend(diff: dict | None, srm: dict | None, labelled: int, alpha: float = 0.05, margin: float = 0.005) -> dict:
    """What to do next, with the reason in words."""
    if srm and srm.get("mismatch"):
        return {
            "action": "blocked",
            "reason": (
                f"sample ratio mismatch: the challenger got {srm['observed_share']:.2%} of entities, expected "
                f"{srm['expected_share']:.2%} (chi-square p = {srm['p_value']:.2g}); the assignment is broken, fix it before trusting any result"
            ),
        }
    if diff is None:
        return {"action": "keep collecting", "reason": "an arm has fewer than two labelled positives or negatives", "more_rows": None}
    if diff["p_challenger_better"] < alpha and diff["delta"] > 0:
        return {
            "action": "promote challenger",
            "reason": f"challenger better by {diff['delta']:+.4f} AUC (one-sided p = {diff['p_challenger_better']:.3g})",
        }
    if diff["p_champion_better"] < alpha and diff["delta"] < 0:
        return {
            "action": "keep champion",
            "reason": f"champion better by {-diff['delta']:.4f} AUC (one-sided p = {diff['p_champion_better']:.3g})",
        }
    if -margin < diff["ci_low"] and diff["ci_high"] < margin:
        return {"action": "keep champion", "reason": f"no difference: the 95% CI of the AUC difference lies within ±{margin}"}
    need = rows_needed(diff, labelled)
    more = None if need is None else max(0, need - labelled)
    est = f"about {more:,} more labelled rows" if more is not None else "an unknown number of rows (no difference observed yet)"
    return {
        "action": "keep collecting",
        "reason": f"not significant yet (p = {diff['p_value']:.3g}); {est} for 80% power",
        "more_rows": more,
    }
