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

import numpy as np
import pandas as pd

from retraining.data.dataset import MISSING_CATEGORY

PROFILE_FORMAT = 2  # 2: labels, missing shares, q01/q99/min/max, known categories (1 still reads)
KNOWN_CATEGORIES = 1000
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


def profile(X: pd.DataFrame, cat_features: list[str], y: np.ndarray | None = None) -> dict:
    """The profile of a training frame (features already prepared by ``retraining.data.dataset``).

    Format 2 adds what the data checks (:mod:`retraining.guard.checks`) compare with: the label
    counts (pass ``y``), per column the missing share, per numeric column min/max and the
    1st/99th percentiles with the share of rows outside them, per categorical column the
    known categories (up to :data:`KNOWN_CATEGORIES`). Format-1 profiles still compare.
    """
    cats = set(cat_features)
    features = {name: _categorical_profile(X[name]) if name in cats else _numeric_profile(X[name]) for name in X.columns}
    out: dict = {"format": PROFILE_FORMAT, "rows": len(X), "features": features}
    if y is not None:
        positives = int(np.asarray(y).sum())
        out["labels"] = {"rows": len(y), "positives": positives, "rate": round(positives / len(y), 6) if len(y) else None}
    return out


def _numeric_profile(col: pd.Series) -> dict:
    values = col.to_numpy(dtype=float)
    finite = values[~np.isnan(values)]
    quantiles = np.quantile(finite, [0.01, *np.linspace(0, 1, BINS + 1)[1:-1], 0.99]) if len(finite) else np.zeros(0)
    edges = sorted(set(quantiles[1:-1].round(10).tolist()))
    out = {"kind": "numeric", "edges": edges, "shares": _numeric_shares(values, edges), "missing": _share(len(values) - len(finite), len(values))}
    if len(finite):
        q01, q99 = float(quantiles[0]), float(quantiles[-1])
        outside = int(((finite < q01) | (finite > q99)).sum())
        out.update(min=float(finite.min()), max=float(finite.max()), q01=q01, q99=q99, outside=_share(outside, len(finite)))
    return out


def _categorical_profile(col: pd.Series) -> dict:
    shares = col.value_counts(normalize=True, sort=True)
    top = shares.iloc[:TOP_CATEGORIES]
    out = {
        "kind": "categorical",
        "categories": {str(k): round(float(v), 6) for k, v in top.items()},
        "other": round(float(shares.iloc[TOP_CATEGORIES:].sum()), 6),
        "complete": len(shares) <= TOP_CATEGORIES,
        "missing": round(float(shares.get(MISSING_CATEGORY, 0.0)), 6),
    }
    if len(shares) <= KNOWN_CATEGORIES:
        out["known"] = sorted(str(k) for k in shares.index)
    return out


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def known_categories(ref: dict) -> set[str] | None:
    """Every category the reference saw, or ``None`` when the profile does not hold them all."""
    if "known" in ref:
        return set(ref["known"])
    return set(ref["categories"]) if ref.get("complete", False) else None


def _feature_psi(ref: dict, col: pd.Series, kind: str) -> tuple[float, list[str]]:
    """PSI of one column against its reference, and the never-seen categories (most frequent first)."""
    if kind == "numeric":
        return psi(ref["shares"], _numeric_shares(col.to_numpy(dtype=float), ref["edges"])), []
    known = ref["categories"]
    shares = col.value_counts(normalize=True)
    actual = [float(shares.get(k, 0.0)) for k in known] + [float(shares[~shares.index.isin(list(known))].sum())]
    everything = known_categories(ref)
    unseen = [str(k) for k in shares.index if str(k) not in everything] if everything is not None else []
    return psi([*known.values(), ref["other"]], actual), unseen[:20]


def compare(reference: dict, X: pd.DataFrame, cat_features: list[str], reference_version: str | None = None, new: np.ndarray | None = None) -> dict:
    """PSI per feature of ``X`` against ``reference``; new categories; the share drifted.

    With ``new`` (a mask of the rows new since the previous version) every feature also
    gets ``psi_new``/``band_new`` and ``new_categories`` lists the never-seen categories of
    the new rows: drift shows on the night it arrives instead of diluted in the whole file.
    """
    cats = set(cat_features)
    ref_features = reference.get("features", {})
    judge_new = new is not None and 0 < int(np.sum(new)) < len(X)
    X_new = X[new] if judge_new else None
    rows: dict[str, dict] = {}
    for name in X.columns:
        ref = ref_features.get(name)
        kind = "categorical" if name in cats else "numeric"
        if ref is None or ref["kind"] != kind:
            band_text = "new feature" if ref is None else f"kind changed ({ref['kind']} -> {kind})"
            rows[name] = {"psi": None, "band": band_text, "new_categories": []}
            continue
        value, new_cats = _feature_psi(ref, X[name], kind)
        rows[name] = {"psi": round(value, 6), "band": band(value), "new_categories": new_cats}
        if judge_new:
            value_new, new_cats = _feature_psi(ref, X_new[name], kind)
            rows[name].update(psi_new=round(value_new, 6), band_new=band(value_new), new_categories=new_cats)
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
        "new_rows": int(np.sum(new)) if judge_new else None,
        "significant_new": [n for n, r in rows.items() if r.get("psi_new") is not None and r["psi_new"] > SIGNIFICANT],
    }


def summary_line(drift: dict | None) -> str | None:
    """One line for the run summary when drift is significant, else ``None``.

    It leads with the rows new since the last accepted version (what the checks judge),
    then says what the whole file shows, so it never reads "no drift" on the night the new
    rows moved.
    """
    if not drift:
        return None
    whole, new = drift.get("significant") or [], drift.get("significant_new") or []
    if not whole and not new:
        return None
    parts, ref = [], drift["reference"]
    if new:
        parts.append(f"drift in the {drift.get('new_rows')} new rows vs {ref} (PSI > {SIGNIFICANT}): {_names(new, drift, 'psi_new')}")
    lead = "whole file (old and new rows)" if new else f"drift: {len(whole)} feature(s) shifted significantly vs {ref}"
    if whole:
        parts.append(f"{lead} (PSI > {SIGNIFICANT}): {_names(whole, drift, 'psi')}")
    else:
        parts.append("the whole file (old and new rows) shows none")
    return "; ".join(parts)


def _names(names: list[str], drift: dict, key: str) -> str:
    worst = max(names, key=lambda n: drift["features"][n][key])
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{shown}; worst {worst} PSI {drift['features'][worst][key]:.2f}"
