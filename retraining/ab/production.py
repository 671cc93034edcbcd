"""Batch scoring with the production version alone, logged as production lines (``ab_test.py score --production-only``).

The lines are the ones ``serve.py --id-column`` writes (docs/monitoring.md): experiment
``production``, variant ``production``, share null, the entity hashed with the salt
``production`` (or the given salt), appended under the log's lock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retraining.ab.predlog import PRODUCTION, append_predictions, entity_hashes, lay_out_production, production_experiment, production_salt
from retraining.ab.rowkeys import KeyBook, frame_keys
from retraining.errors import DataError, StateError
from retraining.registry import Registry


def score_production(
    registry: Registry,
    frame: pd.DataFrame,
    ids,
    log_path: Path | None,
    *,
    version: str | None = None,
    salt: str | None = None,
    durable: bool = False,
    key_frame: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, str]:
    """Score ``frame`` with ``version`` (default: production); append its lines to ``log_path``.

    ``key_frame``: the rows as the lines' keys read them (a CSV's id column as written), if not ``frame``.

    Returns id, variant, model_version, score per row, and the version that scored.
    """
    from retraining.training import load_model, predict

    data = registry.read_log()
    version = version or data.get("production")
    if version is None:
        raise StateError(f"no production version in {registry.log_path}; run retrain_model.py first or pass --champion.")
    entry = registry.find(data, version)
    model = load_model(registry.verify(entry), f"model {version}")
    names = list(model.feature_names_)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(f"the input lacks columns {version} needs: {', '.join(missing[:8])}.")
    cats = [names[i] for i in model.get_cat_feature_indices()]
    ids = np.asarray(ids)
    hashes = entity_hashes(ids, production_salt(production_experiment(salt)))  # checks every row has an id, before scoring
    scores = predict(model, frame[names], cats)
    if log_path is not None:
        book = KeyBook(registry)
        spec = book.spec(version)
        keyed = frame if key_frame is None else key_frame
        keys = frame_keys(spec, keyed)  # each row's ledger key under this version
        book.warn_unkeyed(spec, keyed.columns, keys[1])
        lines = lay_out_production(hashes, version=version, sha=entry["sha256"], salt=salt, keys={PRODUCTION: keys})
        append_predictions(Path(log_path), lines, scores, durable=durable)
    out = pd.DataFrame({"id": ids, "variant": PRODUCTION, "model_version": version, "score": scores})
    return out, version
