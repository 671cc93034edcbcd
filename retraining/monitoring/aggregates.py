"""What the report needs of every kept prediction, summed per version and day, so a rerun need not reread them.

The label-free numbers of a version and of each of its days (rows scored, the mean score,
the CBPE estimate, the score PSI against the version's holdout scores) depend only on the
scores, so they are sums over rows: :class:`Aggregates` keeps, per (version, day), the row
count, the sum of scores, the CBPE bin sums (:func:`retraining.monitoring.stats.cbpe_bins`)
and the rows per PSI bucket (between the version's holdout deciles, kept beside them), and
per (version, previous version) the rows with a bake shadow. The sums of two sets of rows
are the sums of their union (:meth:`Aggregates.merge`); numbers computed from sums equal
those computed from the rows up to the order of floating-point additions.

The numbers that need outcomes (realized AUC, Brier, observed rate) come from the labelled
rows alone (:mod:`.analysis`), which change whenever outcomes arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from retraining.monitoring import stats

PSI_BUCKETS = 10  # deciles: at most 9 inner edges


@dataclass
class Aggregates:
    """Sums per (version, day): ``rows``, ``score_sum``, ``cbpe`` (k x 3 x bins), ``psi`` (k x 10); bake pairs; the PSI edges used."""

    keys: list[tuple[str, int]] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    score_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cbpe: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, stats.CBPE_RESOLUTION + 1)))
    psi: np.ndarray = field(default_factory=lambda: np.zeros((0, PSI_BUCKETS), np.int64))
    edges: dict[str, np.ndarray | None] = field(default_factory=dict)  # version -> the PSI edges its counts use
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)  # (version, previous version) -> shadowed rows

    def merge(self, other: Aggregates) -> Aggregates:
        """The sums of both sets of rows (their PSI edges must agree: :meth:`edges_agree`)."""
        keys = sorted(set(self.keys) | set(other.keys))
        at = {k: i for i, k in enumerate(keys)}
        out = Aggregates(keys, np.zeros(len(keys), np.int64), np.zeros(len(keys)), np.zeros((len(keys), *self.cbpe.shape[1:])))
        out.psi = np.zeros((len(keys), PSI_BUCKETS), np.int64)
        for part in (self, other):
            idx = np.array([at[k] for k in part.keys], dtype=np.int64)
            if len(idx):
                out.rows[idx] += part.rows
                out.score_sum[idx] += part.score_sum
                out.cbpe[idx] += part.cbpe
                out.psi[idx] += part.psi
            for pair, n in part.pairs.items():
                out.pairs[pair] = out.pairs.get(pair, 0) + n
        out.edges = {**self.edges, **other.edges}
        return out

    def edges_agree(self, edges: dict[str, np.ndarray | None]) -> bool:
        """Whether the kept PSI counts of every version here used these edges (the version's holdout deciles)."""
        for version in self.versions():
            mine, theirs = self.edges.get(version), edges.get(version)
            if (mine is None) != (theirs is None) or (mine is not None and not np.array_equal(mine, theirs)):
                return False
        return True

    def versions(self) -> list[str]:
        return sorted({v for v, _ in self.keys})

    def of_version(self, version: str, days: tuple[int, int] | None = None) -> np.ndarray:
        """Indices of the version's (version, day) keys, days in ``[first, last]`` if given."""
        return np.array([i for i, (v, d) in enumerate(self.keys) if v == version and (days is None or days[0] <= d <= days[1])], dtype=np.int64)

    def numbers(self, idx: np.ndarray) -> dict:
        """Rows, mean score and CBPE estimate of the rows summed over the keys ``idx``."""
        rows = int(self.rows[idx].sum())
        cbpe = self.cbpe[idx].sum(axis=0)
        return {"rows": rows, "predicted_rate": float(self.score_sum[idx].sum() / rows) if rows else None, "estimated_auc": _estimate(cbpe, rows)}

    def score_psi(self, version: str, idx: np.ndarray, reference_counts: np.ndarray | None) -> float | None:
        """PSI of the rows summed over ``idx`` against the version's holdout counts (None without a reference)."""
        if reference_counts is None or not len(idx):
            return None
        return stats.psi_of_counts(reference_counts, self.psi[idx].sum(axis=0)[: len(reference_counts)])

    def to_arrays(self) -> dict[str, np.ndarray]:
        with_edges = [v for v, e in self.edges.items() if e is not None]
        padded = np.full((len(with_edges), PSI_BUCKETS - 1), np.nan)
        for i, v in enumerate(with_edges):
            padded[i, : len(self.edges[v])] = self.edges[v]
        return {
            "versions": np.array([v for v, _ in self.keys], dtype=str),
            "days": np.array([d for _, d in self.keys], dtype=np.int64),
            "rows": self.rows,
            "score_sum": self.score_sum,
            "cbpe": self.cbpe,
            "psi": self.psi,
            "edge_versions": np.array(with_edges, dtype=str),
            "edges": padded,
            "no_edge_versions": np.array([v for v, e in self.edges.items() if e is None], dtype=str),
            "pair_versions": np.array([list(p) for p in self.pairs] or np.zeros((0, 2)), dtype=str).reshape(-1, 2),
            "pair_rows": np.array(list(self.pairs.values()), dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, z) -> Aggregates:
        keys = list(zip((str(v) for v in z["versions"]), (int(d) for d in z["days"]), strict=True))
        edges: dict[str, np.ndarray | None] = {str(v): row[~np.isnan(row)] for v, row in zip(z["edge_versions"], z["edges"], strict=True)}
        edges.update({str(v): None for v in z["no_edge_versions"]})
        pairs = {(str(a), str(b)): int(n) for (a, b), n in zip(z["pair_versions"], z["pair_rows"], strict=True)}
        return cls(keys, z["rows"], z["score_sum"], z["cbpe"], z["psi"], edges, pairs)


def _estimate(cbpe: np.ndarray, rows: int) -> float | None:
    return stats.expected_auc_of_bins(*cbpe) if rows >= 2 else None


def reference_edges(references: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    """Each version's PSI edges (the inner deciles of its holdout scores; None without them)."""
    return {v: (stats.psi_edges(r) if r is not None and len(r) else None) for v, r in references.items()}


def of_frame(frame: pd.DataFrame, edges: dict[str, np.ndarray | None]) -> Aggregates:
    """The sums of a predictions frame (``model_version``, ``day``, ``score``, ``previous_version``)."""
    if not len(frame):
        return Aggregates()
    vcodes, vnames = category_codes(frame["model_version"])
    day = frame["day"].to_numpy().astype(np.int64)
    first, span = int(day.min()), int(day.max() - day.min()) + 1
    key = vcodes.astype(np.int64) * span + (day - first)
    present = np.flatnonzero(np.bincount(key, minlength=len(vnames) * span))
    group = np.full(len(vnames) * span, -1, np.int64)
    group[present] = np.arange(len(present))
    g = group[key]
    k = len(present)
    p = np.clip(frame["score"].to_numpy(dtype=float), 0.0, 1.0)
    out = Aggregates([(vnames[int(c) // span], first + int(c) % span) for c in present])
    out.rows = np.bincount(g, minlength=k).astype(np.int64)
    out.score_sum = np.bincount(g, weights=frame["score"].to_numpy(dtype=float), minlength=k)
    out.cbpe = stats.cbpe_bins(p, groups=g, n_groups=k)
    out.psi = np.zeros((k, PSI_BUCKETS), np.int64)
    for code, version in enumerate(vnames):
        e = edges[version]
        out.edges[version] = e
        if e is not None:
            sel = np.flatnonzero(vcodes == code)
            out.psi[:, : len(e) + 1] += stats.psi_counts(e, frame["score"].to_numpy(dtype=float)[sel], g[sel], k)
    pcodes, pnames = category_codes(frame["previous_version"])
    shadowed = pcodes >= 0
    if shadowed.any():
        both = vcodes[shadowed].astype(np.int64) * len(pnames) + pcodes[shadowed]
        for c, n in zip(*np.unique(both, return_counts=True), strict=True):
            out.pairs[(vnames[int(c) // len(pnames)], pnames[int(c) % len(pnames)])] = int(n)
    return out


def category_codes(column) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for none) and their names of a (categorical) column, without a string per row."""
    if isinstance(column, pd.Categorical):
        return np.asarray(column.codes), [str(c) for c in column.categories]
    cat = column if isinstance(getattr(column, "dtype", None), pd.CategoricalDtype) else pd.Series(column).astype("category")
    return cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]


def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of one layout, one after the other; categorical columns by their codes (no string per row)."""
    out = {}
    for name in frames[0].columns:
        if isinstance(frames[0][name].dtype, pd.CategoricalDtype):
            out[name] = union([f[name] for f in frames])
        else:
            out[name] = np.concatenate([f[name].to_numpy() for f in frames])
    return pd.DataFrame(out)


def union(columns: list) -> pd.Categorical:
    """One categorical of the columns one after the other (their categories as plain text, so any two unite)."""
    cats = [pd.Categorical(c) for c in columns]
    cats = [pd.Categorical.from_codes(c.codes, categories=pd.Index([str(x) for x in c.categories], dtype=object)) for c in cats]
    return union_categoricals(cats, ignore_order=True)
