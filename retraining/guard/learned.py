"""Data checks that learn from the rows: a leaked label column, and multivariate drift.

:func:`leak_check` scores every column on its own against the label of the judged rows:
a numeric column by its values (a missing value ranks lowest, so a column filled only
after the outcome is known counts too), a categorical column by its category's positive
rate learned on the other half of the rows (cross-fitted, so a unique id cannot look
perfect). A column whose ROC-AUC (either direction) reaches ``leak_auc`` is a label in
disguise: ``leak`` blocks.

:func:`adversarial_check` trains a small CatBoost classifier (``adversarial_iterations``,
depth 4, at most ``adversarial_rows`` rows of each side, stopped after
``adversarial_seconds``) to tell tonight's rows from the reference rows (rows of today's
file the production model trained on) and scores it on a held-out half. An AUC near 0.5:
the rows look alike; above ``multivariate_auc`` (and p < ``label_p_value``): a warning
naming the columns that drive it; above ``multivariate_block_auc`` a block. When columns
that drifted on their own (PSI > ``drift_psi``, or named by another finding) carry half
the classifier's importance, that is ordinary drift (a season, a campaign, a unit change)
and the checks of single columns already report it: no finding, only the summary. Swapped columns
of similar range and broken relationships between columns show here and nowhere else.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd

from retraining.evaluation import roc_auc
from retraining.guard.findings import BLOCK, WARN, CheckSettings, Finding

log = logging.getLogger(__name__)


# -- leaked label -----------------------------------------------------------------------------
def single_feature_auc(col: pd.Series, y: np.ndarray, categorical: bool) -> float:
    """ROC-AUC of one column alone on labels ``y``, in its better direction (0.5 to 1)."""
    y = np.asarray(y).astype(int)
    if categorical:
        codes, uniques = pd.factorize(col.astype(str))
        halves = np.arange(len(codes)) % 2
        scores = np.empty(len(codes))
        prior = y.mean()
        for half in (0, 1):  # each half scored by the category rates of the other half (smoothed by one prior row)
            fit = halves != half
            positives = np.bincount(codes[fit], weights=y[fit], minlength=len(uniques))
            rows = np.bincount(codes[fit], minlength=len(uniques))
            scores[~fit] = ((positives + prior) / (rows + 1))[codes[~fit]]
        return float(roc_auc(y, scores))  # cross-fitted: a direction is already learned
    v = col.to_numpy(dtype=float)
    v = np.where(np.isnan(v), -np.inf, v)
    auc = roc_auc(y, v)
    return float(max(auc, 1 - auc)) if math.isfinite(auc) else float("nan")


def leak_check(X: pd.DataFrame, y: np.ndarray, cat_features: list[str], s: CheckSettings) -> list[Finding]:
    """A column that on its own predicts the label of the judged rows almost perfectly."""
    positives = int(np.sum(y))
    if len(y) < s.min_column_rows or min(positives, len(y) - positives) < s.leak_min_class:
        return []
    cats = set(cat_features)
    hits = {}
    for name in X.columns:
        auc = single_feature_auc(X[name], y, name in cats)
        if math.isfinite(auc) and auc >= s.leak_auc:
            hits[name] = round(auc, 4)
    if not hits:
        return []
    shown = ", ".join(f"{name!r} (ROC-AUC {auc:.3f})" for name, auc in sorted(hits.items(), key=lambda kv: -kv[1])[:5])
    message = (
        f"{len(hits)} column(s) alone predict the label of the {len(y)} judged rows almost perfectly: {shown}; "
        f"a column filled after the outcome is known (a leaked label)? Drop it (--drop-columns) or fix the export"
    )
    return [Finding("leak", BLOCK, sorted(hits), {"single_feature_auc": hits, "rows": len(y), "threshold": s.leak_auc}, message)]


# -- multivariate drift (adversarial validation) ------------------------------------------------
def adversarial_check(
    X: pd.DataFrame,
    judged: np.ndarray,
    reference: np.ndarray,
    cat_features: list[str],
    s: CheckSettings,
    *,
    explained: set[str] | None = None,
    seed: int = 0,
    threads: int = -1,
) -> tuple[list[Finding], dict]:
    """Can a classifier tell the ``judged`` rows of ``X`` from the ``reference`` rows? Findings and a summary.

    ``explained``: columns that drifted on their own (named by another finding, or PSI above
    ``drift_psi``); when they carry half the classifier's importance or more, there is no
    finding: the signal is that drift, already reported (the summary says so).
    """
    rng = np.random.default_rng(seed)
    a = _sample(np.flatnonzero(judged), int(s.adversarial_rows), rng)
    b = _sample(np.flatnonzero(reference & ~judged), int(s.adversarial_rows), rng)
    if min(len(a), len(b)) < s.min_new_rows / 2:
        return [], {"note": f"too few rows to compare ({len(a)} tonight, {len(b)} reference)"}
    started = time.perf_counter()
    rows = np.concatenate([a, b])
    label = np.r_[np.ones(len(a), int), np.zeros(len(b), int)]
    test = rng.random(len(rows)) < 0.5
    frame = X.iloc[rows].reset_index(drop=True)
    fitted = _fit(frame[~test], label[~test], cat_features, s, seed, threads)
    if isinstance(fitted, str):
        return [], {"note": fitted}
    model, iterations = fitted
    auc, p = auc_above_chance(label[test], model.predict_proba(frame[test])[:, 1])
    shares = dict(zip(frame.columns, np.asarray(model.get_feature_importance(), float) / 100.0, strict=True))
    top = sorted(shares.items(), key=lambda kv: -kv[1])
    summary = {
        "auc": round(auc, 4),
        "p_value": float(f"{p:.3g}"),
        "rows": [len(a), len(b)],
        "iterations": iterations,
        "seconds": round(time.perf_counter() - started, 3),
        "importance": {k: round(float(v), 4) for k, v in top[:10]},
    }
    if not math.isfinite(auc) or auc < s.multivariate_auc or p >= s.label_p_value:
        return [], summary
    drifted = {k: v for k, v in shares.items() if k in (explained or set())}
    if sum(drifted.values()) >= 0.5:  # columns that drifted on their own carry it: the drift and range checks report those
        return [], {**summary, "explained_by": sorted(drifted, key=lambda k: -drifted[k])[:5]}
    driving = [k for k, v in top if v >= s.multivariate_column_share and k not in drifted][:5] or [top[0][0]]
    return [_finding(summary, {k: shares[k] for k in driving}, s)], summary


def _finding(summary: dict, driving: dict, s: CheckSettings) -> Finding:
    auc, p, (a, b) = summary["auc"], summary["p_value"], summary["rows"]
    shown = ", ".join(f"{k!r} ({v:.0%})" for k, v in driving.items())
    message = (
        f"a classifier tells tonight's {a} rows from {b} rows the production model trained on with ROC-AUC {auc:.3f} "
        f"(p = {p:.2g}); driven by {shown}: swapped or broken columns, or a changed relationship between them?"
    )
    numbers = {**summary, "driving": {k: round(float(v), 4) for k, v in driving.items()}}
    return Finding("multivariate_drift", BLOCK if auc > s.multivariate_block_auc else WARN, list(driving), numbers, message)


def auc_above_chance(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and the one-sided p-value of "better than 0.5" (Mann-Whitney's null variance)."""
    auc = float(roc_auc(y, scores))
    n1, n0 = int(np.sum(y)), int(len(y) - np.sum(y))
    if not (n1 and n0 and math.isfinite(auc)):
        return auc, 1.0
    return auc, 0.5 * math.erfc((auc - 0.5) / math.sqrt((n1 + n0 + 1) / (12 * n1 * n0)) / math.sqrt(2))


def _fit(X: pd.DataFrame, y: np.ndarray, cat_features: list[str], s: CheckSettings, seed: int, threads: int):
    from catboost import CatBoostClassifier

    deadline = time.perf_counter() + s.adversarial_seconds

    class _Deadline:  # CatBoost has no time limit of its own: stop after the budget
        def after_iteration(self, info) -> bool:
            return time.perf_counter() < deadline

    cats = [c for c in cat_features if c in X.columns]
    model = CatBoostClassifier(
        iterations=int(s.adversarial_iterations), depth=4, learning_rate=0.2, random_seed=seed, verbose=False, thread_count=threads, allow_writing_files=False
    )
    try:
        model.fit(X, y, cat_features=cats, callbacks=[_Deadline()])
    except Exception as exc:  # CatBoostError (e.g. every feature constant): a check must not fail the run
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("The multivariate drift check could not train its classifier (%s); skipped.", why)
        return f"classifier failed: {why}"[:300]
    return model, int(model.tree_count_)


def _sample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return idx if len(idx) <= n else np.sort(rng.choice(idx, n, replace=False))
