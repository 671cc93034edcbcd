"""Checks on the two models' scores, after training: slices, calibration, a jump too good to be true.

All three judge the candidate against the champion on the same holdout rows (the holdout
minus the rows the champion trained on):

- :func:`slice_gate` (``slice_regression``, warn): per value of each ``slice_columns``
  column (a numeric one with more than 20 values in quartiles), the two ROC-AUCs on that
  slice's rows (at least ``slice_min_rows``, with ``leak_min_class`` rows of each class),
  compared by the paired DeLong test. A slice where the candidate is worse by at least
  ``slice_min_drop`` with one-sided p < ``slice_p_value`` is named when the candidate
  would deploy by the deploy rule: when it wins overall, and under the noise rule also
  when it is equal within noise (a little lower overall: the run passes the rule's verdict).
- :func:`calibration_check` (``calibration``, warn): the candidate's Brier score or log
  loss is at least ``calibration_ratio`` times the champion's.
- :func:`auc_jump` (``auc_jump``, block): the candidate's ROC-AUC lies more than
  ``auc_jump_sd`` standard deviations (and at least ``auc_jump_min``) above the mean of
  the last versions' (at least ``auc_jump_history`` of them) while a column that is new,
  or has drifted on the new rows, carries at least ``auc_jump_importance`` of the
  candidate's feature importance: the improvement comes from a leaked label.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from retraining.evaluation import LossComparison, compare_auc, compare_losses, roc_auc
from retraining.guard.findings import BLOCK, WARN, CheckSettings, Finding

MAX_VALUES = 20


def slices(col: pd.Series, categorical: bool) -> list[tuple[str, np.ndarray]]:
    """(label, mask) per slice of a column: its values, or quartiles of a numeric one with many values."""
    if categorical or col.nunique(dropna=True) <= MAX_VALUES:
        values = col.astype(object).where(col.notna(), "(missing)")
        return [(str(v), (values == v).to_numpy()) for v in pd.unique(values)]
    v = col.to_numpy(dtype=float)
    edges = np.unique(np.nanquantile(v, [0.25, 0.5, 0.75]))
    out = []
    bounds = [-np.inf, *edges, np.inf]
    for lo, hi in itertools.pairwise(bounds):
        out.append((f"({lo:.4g}, {hi:.4g}]", (v > lo) & (v <= hi)))
    out.append(("(missing)", np.isnan(v)))
    return out


def slice_gate(
    X: pd.DataFrame,
    y: np.ndarray,
    cand: np.ndarray,
    champ: np.ndarray,
    columns: list[str],
    cat_features: list[str],
    s: CheckSettings,
    deploys: bool | None = None,
) -> tuple[list[Finding], list[dict]]:
    """Findings for slices where the candidate is significantly worse while it would deploy; the per-slice table.

    ``deploys`` is the deploy rule's verdict on the overall numbers (True for a deploy
    within noise, a little below the champion); None means "wins overall" (ROC-AUC at
    least the champion's), the strict rule's verdict.
    """
    y = np.asarray(y).astype(int)
    overall_cand, overall_champ = roc_auc(y, cand), roc_auc(y, champ)
    table, worse = [], []
    for column in columns:
        for value, mask in slices(X[column], column in cat_features):
            n, pos = int(mask.sum()), int(y[mask].sum())
            if n < s.slice_min_rows or min(pos, n - pos) < s.leak_min_class:
                continue
            c = compare_auc(y[mask], cand[mask], champ[mask])
            row = {"column": column, "value": value, "rows": n, "positives": pos, "candidate": round(c.auc_new, 4), "champion": round(c.auc_old, 4)}
            p_worse = 1.0 - c.p_value_one_sided
            row["p_worse"] = float(f"{p_worse:.3g}")
            table.append(row)
            if c.delta <= -s.slice_min_drop and p_worse < s.slice_p_value:
                worse.append(row)
    wins = overall_cand >= overall_champ
    if not worse or not (wins if deploys is None else deploys):
        return [], table
    shown = "; ".join(
        f"{w['column']} = {w['value']!r} ({w['rows']} rows): {w['candidate']:.3f} vs {w['champion']:.3f} (p = {w['p_worse']:.2g})" for w in worse[:5]
    )
    message = (
        f"the candidate {'wins' if wins else 'is equal within noise'} overall (ROC-AUC {overall_cand:.3f} vs {overall_champ:.3f}) "
        "but is clearly worse than the champion on "
        f"{len(worse)} slice(s): {shown}"
    )
    numbers = {"slices": worse, "overall": {"candidate": round(overall_cand, 4), "champion": round(overall_champ, 4)}}
    return [Finding("slice_regression", WARN, sorted({w["column"] for w in worse}), numbers, message)], table


def calibration_check(y: np.ndarray, cand: np.ndarray, champ: np.ndarray, s: CheckSettings, losses: LossComparison | None = None) -> list[Finding]:
    """A warning when the candidate's Brier score or log loss is ``calibration_ratio`` times the champion's or worse.

    ``losses`` is the run's :func:`~retraining.evaluation.compare_losses` of the same scores
    (the deploy rule's log-loss test), computed here when not given.
    """
    c = losses or compare_losses(y, cand, champ)
    b_cand, b_champ, l_cand, l_champ = c.brier_new, c.brier_old, c.log_loss_new, c.log_loss_old
    ratios = {"brier": b_cand / b_champ if b_champ > 0 else math.inf, "log_loss": l_cand / l_champ if l_champ > 0 else math.inf}
    if max(ratios.values()) < s.calibration_ratio:
        return []
    numbers = {"brier": [round(b_cand, 5), round(b_champ, 5)], "log_loss": [round(l_cand, 5), round(l_champ, 5)]}
    numbers["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    message = (
        f"the candidate is much worse calibrated than the champion on the same holdout: Brier {b_cand:.4f} vs {b_champ:.4f} "
        f"(x{ratios['brier']:.2f}), log loss {l_cand:.4f} vs {l_champ:.4f} (x{ratios['log_loss']:.2f}); its probabilities are off"
    )
    return [Finding("calibration", WARN, [], numbers, message)]


def auc_jump(auc: float, history: list[float], importance: dict, changed: set[str], s: CheckSettings) -> list[Finding]:
    """A block when the AUC leaps past the version history while a new or changed column carries the importance."""
    if len(history) < s.auc_jump_history or not importance:
        return []
    past = np.asarray(history[-10:], float)
    mean, sd = float(past.mean()), float(past.std(ddof=1)) if len(past) > 1 else 0.0
    jump = auc - mean
    if jump < max(s.auc_jump_sd * max(sd, 0.005), s.auc_jump_min):
        return []
    total = sum(importance.values()) or 1.0
    share = {k: v / total for k, v in importance.items() if k in changed}
    carried = sum(share.values())
    if carried < s.auc_jump_importance:
        return []
    names = sorted(share, key=lambda k: -share[k])
    numbers = {"auc": round(auc, 4), "history_mean": round(mean, 4), "history_sd": round(sd, 4), "jump": round(jump, 4), "importance_share": round(carried, 3)}
    message = (
        f"ROC-AUC {auc:.4f} is {jump:+.4f} above the last {len(past)} versions' mean {mean:.4f} (sd {sd:.4f}) while new or changed "
        f"column(s) {', '.join(map(repr, names[:5]))} carry {carried:.0%} of the importance: too good to be true (a leaked label?)"
    )
    return [Finding("auc_jump", BLOCK, names, numbers, message)]
