"""Outcomes joined to the production predictions, and what each version did.

:func:`join` gives every prediction its outcome (or none): the outcome table's ids are
hashed with each experiment's salt (``production``, or ``S`` of ``production:S``, for
production lines; the A/B experiment id for A/B lines, unless ``salt`` is given), exactly as the writers hashed
them. An id that appears several times in the outcomes keeps its last row. Every
prediction of an entity gets that entity's outcome.

:func:`summarize` gives, per version, overall and per day: rows scored, rows with an
outcome, realized ROC-AUC with the DeLong 95 % CI, Brier score, predicted vs observed
positive rate, the label-free estimate (CBPE) and the version's holdout AUC.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retraining.ab.predlog import entity_hashes, production_salt
from retraining.data.dataset import encode_target
from retraining.errors import DataError
from retraining.monitoring import stats
from retraining.sources import column_list, suggest

log = logging.getLogger(__name__)


@dataclass
class Joined:
    """The predictions with an outcome column (``y``: 1, 0, or -1 for none yet) and what the join counted."""

    frame: pd.DataFrame
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def labels_of(outcomes: pd.DataFrame, id_column: str, label_column: str, positive_class: str | None, where: str) -> tuple[pd.DataFrame, dict, list[str]]:
    """The outcome rows with a label, one per id (the last), as ``id``, ``y``; counts; notes."""
    for col in (id_column, label_column):
        if col not in outcomes.columns:
            raise DataError(f"{where}: no column {col!r}; columns are {column_list(outcomes.columns)}.{suggest(col, outcomes.columns)}")
    rows = outcomes[[id_column, label_column]]
    missing = rows[label_column].isna()
    rows = rows[~missing & rows[id_column].notna()]
    counts = {"outcome_rows": len(outcomes), "missing_labels": int(missing.sum())}
    if rows.empty:
        raise DataError(f"{where}: no row has both {id_column!r} and {label_column!r}; nothing to join.")
    y, positive = encode_target(rows[label_column], label_column, positive_class, where)
    frame = pd.DataFrame({"id": rows[id_column].to_numpy(), "y": y})
    text = frame["id"].astype(str).str.strip()
    dup = text.duplicated(keep="last")
    counts["duplicate_ids"] = int(dup.sum())
    notes = []
    if dup.any():
        first = text[dup].iloc[0]
        notes.append(f"{where}: {int(dup.sum())} outcome rows repeat an id (first: {first!r}); the last row of each id wins.")
    counts["positive_class"] = positive
    return frame[~dup.to_numpy()], counts, notes


def join(preds: pd.DataFrame, labels: pd.DataFrame, counts: dict, salt: str | None, where: str) -> Joined:
    """Each prediction's outcome (``y``); the match rate of the outcomes."""
    y = np.full(len(preds), -1, dtype=np.int8)
    matched = np.zeros(len(labels), dtype=bool)
    codes, names = _codes(preds["experiment"])
    for code, exp in enumerate(names):
        rows = np.flatnonzero(codes == code)
        if not len(rows):
            continue
        key = entity_hashes(labels["id"], production_salt(exp) or salt or exp)
        index = pd.Index(key)
        at = index.get_indexer(preds["entity"].to_numpy()[rows])
        hit = at >= 0
        y[rows[hit]] = labels["y"].to_numpy()[at[hit]]
        matched[np.unique(at[hit])] = True
    counts = {**counts, "labelled": len(labels), "matched": int(matched.sum()), "unknown_ids": int((~matched).sum())}
    counts["match_rate"] = round(counts["matched"] / len(labels), 6) if len(labels) else None
    notes = []
    if len(preds) and len(labels) and not matched.any():
        raise DataError(
            f"{where}: none of the {len(labels)} outcome ids matches a logged prediction (match rate 0 %); "
            "check --id-column, --salt for A/B logs, and that --log is this registry's log."
        )
    if counts["unknown_ids"]:
        notes.append(f"{where}: {counts['unknown_ids']} of {len(labels)} outcome ids match no logged prediction (match rate {counts['match_rate']:.1%}).")
    return Joined(preds.assign(y=y), counts, notes)


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and their names of a (categorical) column, without a string per row."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    return cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]


def day_date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def day_text(day: int) -> str:
    return day_date(day).isoformat()


def summarize(joined: pd.DataFrame, holdout: dict, references: dict | None = None) -> list[dict]:
    """Per version (newest first): overall numbers and a per-day list (see the module docstring).

    ``references`` (version -> holdout scores) adds each day's score PSI against them.
    """
    out = []
    codes, names = _codes(joined["model_version"])
    for version in sorted({names[c] for c in np.unique(codes) if c >= 0}, key=_version_key, reverse=True):
        rows = joined[codes == names.index(version)]
        item = {"version": version, **_numbers(rows), **holdout.get(version, {})}
        days = rows["day"].to_numpy()
        item["days"] = [{"day": day_text(d), **_numbers(rows[days == d], brief=True)} for d in np.unique(days)]
        reference = (references or {}).get(version)
        if reference is not None:
            for d, day in zip(np.unique(days), item["days"], strict=True):
                day["score_psi"] = stats.psi(reference, rows["score"].to_numpy(dtype=float)[days == d])
        out.append(item)
    return out


def _numbers(rows: pd.DataFrame, brief: bool = False) -> dict:
    has = (rows["y"] >= 0).to_numpy()
    scores = rows["score"].to_numpy(dtype=float)
    live = stats.realized(rows["y"].to_numpy()[has], scores[has])
    out = {
        "rows": len(rows),
        "rows_with_outcome": int(has.sum()),
        "positives": live["positives"],
        "realized_auc": live["roc_auc"],
        "ci_low": live["ci_low"],
        "ci_high": live["ci_high"],
        "estimated_auc": stats.expected_auc(scores),
    }
    if not brief:
        out.update(
            realized_se=live["se"], brier=live["brier"], predicted_rate=float(scores.mean()) if len(scores) else None, observed_rate=live["observed_rate"]
        )
    return out


def _version_key(version: str) -> tuple:
    try:
        return tuple(int(x) for x in version.lstrip("v").split("."))
    except ValueError:
        return (0,)
