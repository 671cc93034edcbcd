"""Training-data profiles and drift (PSI) against the production model's profile.

A profile is small JSON stored beside each version (``models/profiles/vX.Y.Z.json``):
per numeric feature, decile bin edges and the share of rows in each bin (plus a missing
bucket); per categorical feature, the shares of the most frequent categories and an
"other" bucket. Drift compares new data with a profile by the population stability index

    PSI = sum over buckets of (actual - expected) * ln(actual / expected)

with shares floored at 1e-4 so that an empty bucket does not give infinity. Bands:
< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PROFILE_FORMAT = 1
BINS = 10
TOP_CATEGORIES = 50
FLOOR = 1e-4
MODERATE, SIGNIFICANT = 0.1, 0.25
OTHER = "__other__"


def band(psi: float) -> str:
    if psi > SIGNIFICANT:
        return "significant"
    return "moderate" if psi >= MODERATE else "stable"


def psi(expected: list[float] | np.ndarray, actual: list[float] | np.ndarray) -> float:
    """Population stability index of two share vectors over the same buckets."""
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares per bin ``(-inf, e1], (e1, e2], ..., (ek, inf)`` followed by the missing share."""
    n = len(values)
    missing = np.isnan(values)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values[~missing], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return [round(float(c) / n, 6) for c in counts] + [round(float(missing.sum()) / n, 6)]


def profile(X: pd.DataFrame, cat_features: list[str]) -> dict:
    """The profile of a training frame (features already prepared by ``retraining.data``)."""
    cats = set(cat_features)
    features: dict[str, dict] = {}
    for name in X.columns:
        col = X[name]
        if name in cats:
            shares = col.value_counts(normalize=True, sort=True)
            top = shares.iloc[:TOP_CATEGORIES]
            features[name] = {
                "kind": "categorical",
                "categories": {str(k): round(float(v), 6) for k, v in top.items()},
                "other": round(float(shares.iloc[TOP_CATEGORIES:].sum()), 6),
                "complete": len(shares) <= TOP_CATEGORIES,
            }
        else:
            values = col.to_numpy(dtype=float)
            finite = values[~np.isnan(values)]
            edges = sorted(set(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]).round(10).tolist())) if len(finite) else []
            features[name] = {"kind": "numeric", "edges": edges, "shares": _numeric_shares(values, edges)}
    return {"format": PROFILE_FORMAT, "rows": len(X), "features": features}


def compare(reference: dict, X: pd.DataFrame, cat_features: list[str], reference_version: str | None = None) -> dict:
    """PSI per feature of ``X`` against ``reference``; new categories; the share drifted."""
    cats = set(cat_features)
    ref_features = reference.get("features", {})
    rows: dict[str, dict] = {}
    for name in X.columns:
        ref = ref_features.get(name)
        kind = "categorical" if name in cats else "numeric"
        if ref is None:
            rows[name] = {"psi": None, "band": "new feature", "new_categories": []}
            continue
        if ref["kind"] != kind:
            rows[name] = {"psi": None, "band": f"kind changed ({ref['kind']} -> {kind})", "new_categories": []}
            continue
        if kind == "numeric":
            actual = _numeric_shares(X[name].to_numpy(dtype=float), ref["edges"])
            value = psi(ref["shares"], actual)
            new_cats: list[str] = []
        else:
            known = ref["categories"]
            shares = X[name].value_counts(normalize=True)
            actual = [float(shares.get(k, 0.0)) for k in known] + [float(shares[~shares.index.isin(list(known))].sum())]
            value = psi([*known.values(), ref["other"]], actual)
            unseen = [str(k) for k in shares.index if k not in known]
            new_cats = sorted(unseen)[:20] if ref.get("complete", False) else []
        rows[name] = {"psi": round(value, 6), "band": band(value), "new_categories": new_cats}
    missing = [n for n in ref_features if n not in X.columns]
    scored = [r for r in rows.values() if r["psi"] is not None]
    drifted = [n for n, r in rows.items() if r["psi"] is not None and r["psi"] >= MODERATE]
    significant = [n for n, r in rows.items() if r["psi"] is not None and r["psi"] > SIGNIFICANT]
    return {
        "reference": reference_version,
        "features": rows,
        "missing_features": missing,
        "drifted_share": round(len(drifted) / len(scored), 4) if scored else 0.0,
        "significant": significant,
        "moderate": [n for n in drifted if n not in significant],
        "max_psi": max((r["psi"] for r in scored), default=0.0),
    }


def summary_line(drift: dict | None) -> str | None:
    """One line for the run summary when drift is significant, else ``None``."""
    if not drift or not drift.get("significant"):
        return None
    names = drift["significant"]
    worst = max(names, key=lambda n: drift["features"][n]["psi"])
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"drift: {len(names)} feature(s) shifted significantly vs {drift['reference']} (PSI > {SIGNIFICANT}): {shown}; "
        f"worst {worst} PSI {drift['features'][worst]['psi']:.2f}"
    )


def is_finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
