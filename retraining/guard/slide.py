"""No slow slide: the candidate against the best of the recent versions, on tonight's holdout.

The noise rule lets a candidate a little below the champion deploy (equal within noise).
Night after night such small steps could add up to a real loss, so before a deploy the
run scores the last few versions (``--recent-versions``, default 5) on tonight's holdout,
each on the holdout rows it did **not** train on (its ledger knows them), next to the
candidate on exactly the same rows. :func:`retraining.rules.apply_slide` then holds the
candidate when the best of them leads it by more than the margin.

A version is skipped, and the skip is said (a log line and the ``skipped`` list), when its
file or its ledger is missing, its file no longer matches the log's sha256, its ledger was
keyed another way (a column added or renamed, another ``--id-column``), it cannot score
tonight's columns, fewer than 5 rows of a class remain without its training rows, or it
was held back by a blocking data check (its data were not accepted).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from retraining.errors import RetrainError
from retraining.evaluation import roc_auc
from retraining.guard.ledger import held_back, in_training, load_ledger

if TYPE_CHECKING:
    from retraining.data.dataset import Dataset
    from retraining.registry import Registry

log = logging.getLogger(__name__)


def recent_entries(data: dict, count: int, exclude: str | None = None) -> list[dict]:
    """The newest ``count`` versions of the log (newest first), less ``exclude`` (tonight's candidate)."""
    from retraining.registry import parse_version

    entries = sorted((e for e in data.get("versions", []) if e.get("version") != exclude), key=lambda e: parse_version(e["version"]))
    return list(reversed(entries))[: max(count, 0)]


def recent_best(registry: Registry, entries: list[dict], ds: Dataset, candidate: Any) -> dict:
    """Score ``entries`` and ``candidate`` on tonight's holdout less each version's training rows.

    Returns ``{"versions": [{"version", "auc", "candidate_auc", "rows"}, ...], "skipped":
    ["v1.0.0: no row ledger", ...], "best": the version with the largest lead over the
    candidate, or None}``.
    """
    from retraining import training

    scored, skipped = [], []
    for entry in entries:
        version = entry["version"]
        try:
            row = _score(registry, entry, ds, candidate, training)
        except RetrainError as exc:  # a damaged ledger or model file: say so, do not fail the run
            row = str(exc)
        if isinstance(row, str):
            skipped.append(f"{version}: {row}")
            log.info("Slow-slide guard: skipped %s: %s", version, row)
        else:
            scored.append(row)
    best = max(scored, key=lambda r: r["auc"] - r["candidate_auc"], default=None)
    return {"versions": scored, "skipped": skipped, "best": best}


def _score(registry: Registry, entry: dict, ds: Dataset, candidate: Any, training: Any) -> dict | str:
    """One version's row, or why it is skipped."""
    from retraining.data.dataset import MIN_PER_CLASS
    from retraining.fsutil import sha256_file

    version = entry["version"]
    if held_back(entry):
        return "held back by a data check (its data were not accepted)"
    path = registry.version_path(version)
    if not path.is_file():
        return f"its model file {path.name} is missing"
    if entry.get("sha256") and sha256_file(path) != entry["sha256"]:
        return f"{path.name} does not match the sha256 in the version log"
    ledger = load_ledger(registry.artifact_path("ledger", version))
    if ledger is None:
        return "no row ledger (made before ledgers existed, or deleted), so its training rows cannot be left out"
    if ledger.key != ds.split.get("key", {}):
        return "its ledger is keyed another way (a column added, removed or renamed, or another --id-column)"
    rows = ds.holdout & ~in_training(ds, ledger)
    positives = int(ds.y[rows].sum())
    if min(positives, int(rows.sum()) - positives) < MIN_PER_CLASS:
        return f"fewer than {MIN_PER_CLASS} rows of a class remain in the holdout without its training rows"
    scores, why = training.score_champion(training.load_model(path, f"version {version}"), ds, rows)
    if scores is None:
        return why.replace("the champion", "it")
    y = np.asarray(ds.y[rows])
    cand = training.predict(candidate, ds.X.loc[rows], ds.cat_features)
    return {"version": version, "auc": round(roc_auc(y, scores), 6), "candidate_auc": round(roc_auc(y, cand), 6), "rows": int(rows.sum())}
