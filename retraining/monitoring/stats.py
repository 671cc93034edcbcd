"""The monitor's statistics: realized AUC with its CI, the decay test, CBPE, score PSI.

- :func:`realized`: n, outcomes, ROC-AUC with the DeLong 95 % CI, Brier score, predicted
  vs observed positive rate.
- :func:`decay_test`: one-sided z-test that the realized AUC lies below the holdout AUC.
  The two samples are independent (live rows vs the holdout), so the variance of the
  difference is the sum of the two DeLong variances.
- :func:`expected_auc`: the label-free estimate (confidence-based performance estimation,
  as NannyML's CBPE): if the scores are calibrated, row *i* is a positive with probability
  ``p_i``, so the expected counts of (positive, negative) pairs ranked right give the AUC.
- :func:`psi`: population stability index of served scores against the holdout's.
"""

from __future__ import annotations

import math

import numpy as np

from retraining.ab.stats import auc_with_ci
from retraining.evaluation import brier


def realized(y: np.ndarray, scores: np.ndarray) -> dict:
    """Outcome count, AUC with CI (None below two of a class), Brier, predicted and observed rate."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=float)
    out = auc_with_ci_one_sort(y, s)
    out["brier"] = brier(y, s) if len(y) else None
    out["predicted_rate"] = float(s.mean()) if len(s) else None
    out["observed_rate"] = float(y.mean()) if len(y) else None
    return out


def auc_with_ci_one_sort(y: np.ndarray, scores: np.ndarray) -> dict:
    """:func:`retraining.ab.stats.auc_with_ci`, bit for bit, with one sort of the scores instead of three."""
    return auc_with_ci(y, scores, components=one_sort_components)


def one_sort_components(x: np.ndarray, z_neg: np.ndarray) -> tuple:
    """:func:`retraining.evaluation.structural_components` (AUC, V10, V01) from one sort.

    The DeLong placement values need the midranks of the scores among all rows, among the
    positives and among the negatives. All three come from one argsort of all rows: the
    positives (negatives) taken in that order are sorted too. A midrank depends only on its
    tie group, so the sort need not be stable; the values and the order of every sum are
    those of ``structural_components``.
    """
    m, n = len(x), len(z_neg)
    z = np.concatenate([x, z_neg])
    order = np.argsort(z)
    zs = z[order]
    tz = np.empty(len(z))
    tz[order] = _sorted_midranks(zs)
    positive = order < m
    tx, ty = np.empty(m), np.empty(n)
    tx[order[positive]] = _sorted_midranks(zs[positive])
    ty[order[~positive] - m] = _sorted_midranks(zs[~positive])
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    return auc, (tz[:m] - tx) / n, 1.0 - (tz[m:] - ty) / m


def _sorted_midranks(v: np.ndarray) -> np.ndarray:
    """1-based midranks of ascending ``v`` (NaNs last, tied with each other, as ``np.unique`` groups them)."""
    new = np.empty(len(v), dtype=bool)
    new[:1] = True
    np.not_equal(v[1:], v[:-1], out=new[1:])
    if len(v) and np.isnan(v[-1]):  # sorted: a NaN, if any, is last
        nan = np.isnan(v)
        new[1:] &= ~(nan[1:] & nan[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(v)))
    upper = np.cumsum(counts)
    return np.repeat(upper - (counts - 1) / 2.0, counts)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def always_valid_p(delta: float, se: float, tau: float) -> float:
    """The always-valid p-value of ``delta`` (a normal estimate with standard error ``se``) being 0.

    The mixture sequential probability ratio test (Robbins; Johari et al. 2017): with a
    N(0, tau²) mixture over the true difference, the likelihood ratio is
    ``sqrt(v / (v + tau²)) * exp(delta² tau² / (2 v (v + tau²)))``, ``v = se²``, and
    ``p = min(1, 1 / ratio)``. Rejecting at ``p < alpha`` keeps the false-alarm rate at
    ``alpha`` however often the test is repeated on growing data: the monitor may run hourly.
    """
    if not se > 0 or not tau > 0:
        return 0.0 if delta != 0 and se == 0 else 1.0
    v = se * se
    log_ratio = 0.5 * math.log(v / (v + tau * tau)) + delta * delta * tau * tau / (2 * v * (v + tau * tau))
    return float(min(1.0, math.exp(-log_ratio))) if log_ratio < 700 else 0.0


def decay_test(live: dict, holdout_auc: float, holdout_se: float | None, tau: float = 0.02) -> dict | None:
    """One-sided: is the live AUC below ``holdout_auc``? (None without a live AUC.)"""
    if live.get("roc_auc") is None or holdout_auc is None:
        return None
    drop = float(holdout_auc - live["roc_auc"])
    se = math.sqrt(live["se"] ** 2 + (holdout_se or 0.0) ** 2)
    z = drop / se if se > 0 else (math.inf if drop > 0 else 0.0)
    p_seq = always_valid_p(drop, se, tau) if drop > 0 else 1.0
    return {
        "drop": drop,
        "se": se,
        "z": z,
        "p_fixed": normal_sf(z),
        "p_value": p_seq,
        "test": "one-sided always-valid mixture SPRT on the AUC difference, independent DeLong variances",
    }


def holdout_se(y: np.ndarray, scores: np.ndarray) -> float | None:
    """The DeLong standard error of the holdout AUC (from models/evaluations/VERSION.npz)."""
    return auc_with_ci(np.asarray(y).astype(bool), scores)["se"]


def hanley_mcneil_se(auc: float, positives: int, negatives: int) -> float | None:
    """The AUC's standard error from its value and the class counts (when no holdout scores are kept)."""
    if positives < 1 or negatives < 1 or not 0 < auc < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return math.sqrt(max(var, 0.0))


def expected_auc(scores: np.ndarray, resolution: int = 10_000) -> float | None:
    """CBPE: the AUC to expect from calibrated scores, without labels.

    A row with score ``p`` is a positive with probability ``p``. Each row contributes
    ``p_i * (sum of (1 - p_j) over rows ranked below it, plus half of the ties but itself)``;
    dividing by the expected number of (positive, negative) pairs,
    ``sum(p) * sum(1 - p) - sum(p * (1 - p))``, gives the AUC. Scores are grouped in bins of
    ``1 / resolution`` (rows in one bin count as tied), so the cost is one pass, no sort.
    """
    p = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    if len(p) < 2:
        return None
    return expected_auc_of_bins(*cbpe_bins(p, resolution))


CBPE_RESOLUTION = 10_000


def cbpe_bins(p: np.ndarray, resolution: int = CBPE_RESOLUTION, groups: np.ndarray | None = None, n_groups: int = 1) -> np.ndarray:
    """The CBPE sums of clipped scores ``p`` per bin: ``(3, bins)`` = sum p, sum (1 - p), sum p(1 - p).

    With ``groups`` (0 to ``n_groups - 1`` per row), one such block per group: ``(n_groups, 3, bins)``.
    Sums of blocks of disjoint rows are the block of their union (the monitor keeps them per day).
    """
    q = 1.0 - p
    bins = np.rint(p * resolution).astype(np.int64)
    size = resolution + 1
    if groups is not None:
        bins += groups.astype(np.int64) * size
    out = np.stack([np.bincount(bins, weights=w, minlength=size * n_groups) for w in (p, q, p * q)])
    return out if groups is None else out.reshape(3, n_groups, size).transpose(1, 0, 2)


def expected_auc_of_bins(pos: np.ndarray, neg: np.ndarray, both: np.ndarray) -> float | None:
    """CBPE from the per-bin sums of :func:`cbpe_bins` (see :func:`expected_auc`)."""
    below = np.cumsum(neg) - neg  # negatives' weight in lower bins
    num = float(np.sum(pos * below) + 0.5 * (np.sum(pos * neg) - np.sum(both)))
    den = float(pos.sum() * neg.sum() - np.sum(both))
    return num / den if den > 0 else None


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float | None:
    """PSI over deciles of the reference scores (None if either side is empty)."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if len(ref) == 0 or len(cur) == 0:
        return None
    edges = psi_edges(ref, bins)
    return psi_of_counts(psi_counts(edges, ref), psi_counts(edges, cur))


def psi_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """The inner decile edges of the reference scores (duplicates merged)."""
    return np.unique(np.quantile(np.asarray(reference, dtype=float), np.linspace(0, 1, bins + 1)[1:-1]))


def psi_counts(edges: np.ndarray, scores: np.ndarray, groups: np.ndarray | None = None, n_groups: int = 1) -> np.ndarray:
    """Rows per bucket between ``edges`` (``len(edges) + 1`` buckets); per group with ``groups``: ``(n_groups, buckets)``."""
    buckets = np.searchsorted(edges, np.asarray(scores, dtype=float), side="right")
    if groups is None:
        return np.bincount(buckets, minlength=len(edges) + 1)
    size = len(edges) + 1
    return np.bincount(groups.astype(np.int64) * size + buckets, minlength=size * n_groups).reshape(n_groups, size)


def psi_of_counts(reference: np.ndarray, current: np.ndarray) -> float | None:
    """PSI from the bucket counts of :func:`psi_counts` (None if either side is empty)."""
    if reference.sum() == 0 or current.sum() == 0:
        return None
    a, b = reference / reference.sum(), current / current.sum()
    a, b = np.clip(a, 1e-4, None), np.clip(b, 1e-4, None)
    return float(np.sum((b - a) * np.log(b / a)))
