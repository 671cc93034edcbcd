"""Drift of the sampled served features (``features.jsonl`` beside the log) against the version's training profile.

``serve.py --log-features RATE`` writes one line per sampled row (docs/monitoring.md):
``{"time", "model_version", "entity", "features": {...}}``. The production version's rows
of the last ``decay_window_days`` days are compared with its training-data profile
(``models/profiles/VERSION.json``) by the PSI of :func:`retraining.guard.drift.compare`;
features with a significant PSI make one ``drift`` finding. The sample is small, so it
is read whole on every run (not incrementally).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd

from retraining.ab.logfiles import log_files
from retraining.ab.predlog import read_feature_logs
from retraining.errors import DataError
from retraining.guard.drift import SIGNIFICANT, compare
from retraining.guard.findings import WARN, Finding

log = logging.getLogger(__name__)
NAME = "features.jsonl"


def sampled(logs: list[Path], version: str, since: dt.date) -> pd.DataFrame:
    """The sampled feature rows of ``version`` from ``since`` on, from every features file beside the logs.

    Read by the one reader of the feature log, :func:`retraining.ab.predlog.read_feature_logs`
    (a torn line is skipped with a warning: the sample is smaller by one). A feature log that
    cannot be read at all is a warning, not a failed monitor run: drift is then judged without it.
    """
    frames = []
    folders = dict.fromkeys((p if p.is_dir() else p.parent) for p in map(Path, logs))
    for folder in folders:
        if not any(f.stat().st_size for f in log_files(folder / NAME)):
            continue  # no sampling (serve.py without --log-features)
        try:
            head, features = read_feature_logs(folder / NAME)
        except DataError as exc:
            log.warning("%s No feature drift from it in this run.", exc)
            continue
        keep = (head["model_version"].astype(str) == version) & (head["time"].astype(str).str[:10] >= since.isoformat())
        frames.append(features[keep.to_numpy()])
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).infer_objects()  # one version's rows: its own kinds, not the mix of all versions


def feature_drift(registry, data: dict, logs: list[Path], version: str, since: dt.date, min_rows: int) -> tuple[dict | None, Finding | None]:
    """The drift of the sampled features of ``version`` and, if significant, a ``drift`` finding."""
    path = registry.artifact_path("profile", version)
    frame = sampled(logs, version, since)
    if frame.empty or len(frame) < min_rows or not path.is_file():
        return None, None
    entry = registry.full_entry(data, version)
    cats = list(entry.get("categorical_features") or [])
    features = [f for f in entry.get("features") or frame.columns[frame.notna().any()] if f in frame.columns]
    X = frame[features].copy()
    for c in cats:
        if c in X:
            X[c] = X[c].astype(str)
    result = compare(json.loads(path.read_text(encoding="utf-8")), X, cats, version)
    if not result["significant"]:
        return result, None
    worst = {n: result["features"][n]["psi"] for n in result["significant"]}
    message = f"{version}: sampled served features drifted from its training data (PSI > {SIGNIFICANT}): " + ", ".join(f"{n} {v:.2f}" for n, v in worst.items())
    return result, Finding("drift", WARN, list(worst), {"psi": worst, "rows": len(X)}, message)
