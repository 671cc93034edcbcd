"""Holdout metrics, the paired DeLong test of two ROC-AUCs, and the deploy rule.

Everything here is plain numpy so that a run does not pay for importing scikit-learn;
the tests check each metric against scikit-learn and DeLong against a direct O(m*n)
computation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-15


def _midrank(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (O(n log n))."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC by the rank-sum formula (ties count one half)."""
    y = np.asarray(y_true).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = _midrank(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - m * (m + 1) / 2.0) / (m * n))


def threshold_counts(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score used as the threshold, highest first.

    Tied scores move together (one point per distinct score): the tie-aware cumulative
    sum behind :func:`pr_auc` and the report's ROC and precision-recall curves.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    return tp, (last_of_tie + 1) - tp


def pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    total_pos = int(np.asarray(y_true).astype(bool).sum())
    if total_pos == 0:
        return float("nan")
    tp, fp = threshold_counts(y_true, scores)
    precision = tp / (tp + fp)
    recall = tp / total_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def row_log_loss(y_true: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each row's log loss (probabilities clipped to [1e-15, 1 - 1e-15])."""
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def row_brier(y_true: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each row's squared error of the probability (the Brier score's terms)."""
    return (np.asarray(p, dtype=float) - np.asarray(y_true, dtype=float)) ** 2


def log_loss(y_true: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(row_log_loss(y_true, p)))


def brier(y_true: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(row_brier(y_true, p)))


def holdout_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, log-loss and Brier score of probabilities ``p``."""
    return {
        "roc_auc": round(roc_auc(y_true, p), 6),
        "pr_auc": round(pr_auc(y_true, p), 6),
        "log_loss": round(log_loss(y_true, p), 6),
        "brier": round(brier(y_true, p), 6),
    }


@dataclass(frozen=True)
class AucComparison:
    """Result of :func:`compare_auc` (the paired DeLong test, new minus old)."""

    auc_new: float
    auc_old: float
    delta: float
    z: float
    p_value: float
    p_value_one_sided: float
    ci_low: float
    ci_high: float
    n_positive: int
    n_negative: int

    def __getitem__(self, key: str) -> float:
        return getattr(self, key)

    def to_dict(self) -> dict:
        return {k: (round(v, 8) if isinstance(v, float) and math.isfinite(v) else v) for k, v in asdict(self).items()}


def structural_components(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and the DeLong placement values of one model (Sun & Xu 2014)."""
    m, n = len(pos), len(neg)
    tx = _midrank(pos)
    ty = _midrank(neg)
    tz = _midrank(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:m] - tx) / n  # for each positive: share of negatives ranked below it
    v01 = 1.0 - (tz[m:] - ty) / m  # for each negative: share of positives ranked above it
    return auc, v10, v01


def compare_auc(y_true, scores_new, scores_old, confidence: float = 0.95) -> AucComparison:
    """Paired DeLong test of ROC-AUC(new) - ROC-AUC(old) on the same rows.

    Uses the O(n log n) algorithm of Sun & Xu (2014). Returns the two AUCs, their
    difference, z, the two-sided p-value, the one-sided p-value for "new is better",
    and the ``confidence`` interval of the difference. The result also supports
    ``result["p_value"]``.
    """
    y = np.asarray(y_true).astype(bool)
    a = np.asarray(scores_new, dtype=float)
    b = np.asarray(scores_old, dtype=float)
    if not (len(y) == len(a) == len(b)):
        raise ValueError("y_true, scores_new and scores_old must have the same length")
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise ValueError("compare_auc needs at least two positive and two negative rows")
    auc_a, v10_a, v01_a = structural_components(a[y], a[~y])
    auc_b, v10_b, v01_b = structural_components(b[y], b[~y])
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    delta = float(auc_a - auc_b)
    zcrit = _normal_quantile(0.5 + confidence / 2.0)
    if var <= 1e-18:
        z = 0.0 if delta == 0 else math.copysign(math.inf, delta)
        half = 0.0
    else:
        sd = math.sqrt(var)
        z = delta / sd
        half = zcrit * sd
    p_two = math.erfc(abs(z) / math.sqrt(2.0))
    p_one = 0.5 * math.erfc(z / math.sqrt(2.0))
    return AucComparison(
        auc_new=float(auc_a),
        auc_old=float(auc_b),
        delta=delta,
        z=float(z),
        p_value=float(p_two),
        p_value_one_sided=float(p_one),
        ci_low=delta - half,
        ci_high=delta + half,
        n_positive=m,
        n_negative=n,
    )


@dataclass(frozen=True)
class LossComparison:
    """Result of :func:`compare_losses`: both models' mean log loss and Brier score on the same rows, and the paired test.

    ``p_worse`` is the one-sided p-value of "the candidate's mean log loss is higher than the
    champion's": with each row's difference ``d = loss_new - loss_old``, ``z = mean(d) /
    (sd(d) / sqrt(n))`` and ``p_worse = 1 - Phi(z)`` (the normal approximation of the paired
    t-test; with no spread in ``d``, ``z`` is 0 or +-inf by the sign of the mean).
    """

    log_loss_new: float
    log_loss_old: float
    brier_new: float
    brier_old: float
    z: float
    p_worse: float
    rows: int

    @property
    def ratio(self) -> float:
        """The candidate's mean log loss over the champion's (inf when the champion's is 0)."""
        return self.log_loss_new / self.log_loss_old if self.log_loss_old > 0 else math.inf

    def to_dict(self) -> dict:
        out = {k: (round(v, 8) if isinstance(v, float) and math.isfinite(v) else v) for k, v in asdict(self).items()}
        return {**out, "ratio": round(self.ratio, 6) if math.isfinite(self.ratio) else None}


def compare_losses(y_true, scores_new, scores_old) -> LossComparison:
    """Paired one-sided test of "the candidate's log loss is higher than the champion's" on the same rows (#27)."""
    y = np.asarray(y_true)
    new, old = row_log_loss(y, scores_new), row_log_loss(y, scores_old)
    d = new - old
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    z = (0.0 if mean == 0 else math.copysign(math.inf, mean)) if sd <= 1e-12 else mean / (sd / math.sqrt(len(d)))
    return LossComparison(
        log_loss_new=float(new.mean()),
        log_loss_old=float(old.mean()),
        brier_new=brier(y, scores_new),
        brier_old=brier(y, scores_old),
        z=float(z),
        p_worse=0.5 * math.erfc(z / math.sqrt(2.0)),
        rows=len(d),
    )


def _normal_quantile(q: float) -> float:
    """Inverse of the standard normal CDF by bisection on erfc (no scipy needed)."""
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# The deploy rule has no numpy in it and lives in retraining.rules; re-exported here.
from retraining.rules import DeployRule, decide  # noqa: E402

__all__ = [
    "AucComparison",
    "DeployRule",
    "LossComparison",
    "compare_auc",
    "compare_losses",
    "decide",
    "holdout_metrics",
    "pr_auc",
    "roc_auc",
    "structural_components",
    "threshold_counts",
]
