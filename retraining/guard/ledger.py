"""Which rows each version trained on and held out, and which rows of today's file are new.

**The row key** (the one definition: :func:`retraining.data.keys.row_keys`) is a 64-bit hash, one per row:

- with ``--id-column``: a hash of the id's text (``42`` and ``42.0`` agree);
- without: a hash of the row's *feature values*: every column except the target, the
  ``--id-column``, the ``--time-column`` and ``--drop-columns``. Numbers hash by value
  (``1`` and ``1.0`` agree, ``-0.0`` is ``0.0``), everything else by its text; columns
  are combined in name order, so reordering the file's columns keeps every key.

It never includes the label, so correcting a label keeps the row's key, its side of the
holdout split (:func:`retraining.data.dataset.stable_holdout` buckets the same key) and its place
in the ledgers. It leaves out the time column too: with ``--time-column`` "new" is decided
by time, and a corrected timestamp is not a different row. What does change a key: an
edited feature value, or (without an id column) a column added, removed or renamed; then
those rows count as new and cannot be matched to earlier ledgers ("key changed").

**The ledger** of a version (``models/ledgers/vX.Y.Z.npz``, :data:`LEDGER_FORMAT`) holds
the sorted keys of its training rows and of its holdout rows (repeats kept: 8 bytes per
row) and, with ``--time-column``, the latest time it saw. The run uses it twice:

- :func:`in_training`: today's holdout rows that the champion trained on are left out of
  the deploy comparison, so no model is scored on rows it learned (:func:`comparison_rows`
  keeps them, with a warning, when too few rows of a class would remain);
- :func:`split_rows`: against the ledger of the previous version whose data was accepted
  (:func:`last_accepted`: a version held back by a blocking data check does not count, so
  its rows stay new until they are fixed or promoted), the rows of today's file
  are new, seen before, or copies of rows seen before (a re-sent batch). Rows are matched
  as a multiset: a key the previous version had once and today's file has twice gives one
  seen row and one re-sent copy. With ``--time-column`` a row newer than the previous
  version's latest time is new whatever its key. When the file is not cumulative (only
  today's rows), every row is new and the earlier rows count as gone.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retraining.data.keys import content_hashes, id_hashes
from retraining.errors import StateError
from retraining.fsutil import commit_temp, temp_path_beside
from retraining.guard.findings import WARN, Finding
from retraining.records import Decision

if TYPE_CHECKING:
    from retraining.data.dataset import Dataset

log = logging.getLogger(__name__)

LEDGER_FORMAT = 1


# -- the ledger record -------------------------------------------------------------------
@dataclass
class Ledger:
    """The rows one version trained on and held out, as sorted row keys."""

    version: str
    train: np.ndarray
    holdout: np.ndarray
    key: dict = field(default_factory=dict)
    max_time: int | float | None = None
    time_kind: str | None = None  # "datetime" (int64 ns since the epoch, UTC) or "number"
    format: int = LEDGER_FORMAT
    kinds: dict = field(default_factory=dict)  # content keys: how training read each key column (retraining.data.keys.key_kinds)
    ids: str | None = None  # id keys: "text" (ids as written); None: a ledger written before, of ids as the CSV reader parsed them

    @property
    def rows(self) -> int:
        return len(self.train) + len(self.holdout)

    def meta(self) -> dict:
        return {
            "format": self.format,
            "version": self.version,
            "key": self.key,
            "max_time": self.max_time,
            "time_kind": self.time_kind,
            "key_kinds": self.kinds,
            "ids": self.ids,
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
        }


def make_ledger(version: str, ds: Dataset) -> Ledger:
    """The ledger of a version trained on ``ds`` (its training side; its holdout)."""
    keys = np.asarray(ds.keys, dtype=np.uint64)
    max_time, kind = None, None
    if ds.times is not None and len(ds.times):
        kind = "datetime" if ds.times.dtype.kind in "iu" else "number"
        max_time = int(ds.times.max()) if kind == "datetime" else float(ds.times.max())
    key = dict(ds.split.get("key", {}))
    ids = "text" if key.get("method") == "id" else None
    kinds = dict(getattr(ds, "key_kinds", None) or {})
    return Ledger(version, np.sort(keys[~ds.holdout]), np.sort(keys[ds.holdout]), key, max_time, kind, kinds=kinds, ids=ids)


def save_ledger(ledger: Ledger, path: Path) -> None:
    """Write ``ledger`` to ``path`` (``.npz``) atomically; make the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = np.frombuffer(json.dumps(ledger.meta()).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, train=ledger.train.astype(np.uint64), holdout=ledger.holdout.astype(np.uint64), meta=meta)
    tmp = temp_path_beside(path)
    tmp.write_bytes(buffer.getvalue())
    commit_temp(tmp, path)


def load_ledger(path: Path) -> Ledger | None:
    """The ledger at ``path``, or ``None`` when there is none (versions made before ledgers)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:  # our handle: closed even when np.load fails
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
            train, holdout = npz["train"].astype(np.uint64), npz["holdout"].astype(np.uint64)
        version = str(meta["version"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise StateError(f"{path}: the row ledger is damaged ({why}); delete it (that version's rows then count as unknown) or restore it.") from exc
    if meta.get("format", 0) > LEDGER_FORMAT:
        raise StateError(f"{path}: ledger format {meta.get('format')} is newer than this program reads ({LEDGER_FORMAT}); upgrade the tool.")
    kinds = meta.get("key_kinds") or {}  # ledgers written before the kinds were recorded have none
    return Ledger(version, train, holdout, meta.get("key", {}), meta.get("max_time"), meta.get("time_kind"), meta.get("format", 1), kinds, meta.get("ids"))


# -- using it ----------------------------------------------------------------------------
@dataclass
class RowSplit:
    """Today's rows against the previous version: new, seen before, re-sent copies."""

    new: np.ndarray
    resent: np.ndarray
    basis: str  # "keys" | "time" | "no ledger" | "key changed"
    counts: dict
    previous: str | None = None
    usual_repeats: float = 0.0  # share of the previous version's rows that repeat a key of another of its rows

    def to_json(self) -> dict:
        return {"basis": self.basis, "previous": self.previous, **self.counts}

    def line(self) -> str:
        c = self.counts
        text = f"rows: {c['total']} total, {c['new']} new, {c['seen']} seen before, {c['gone']} gone"
        if c["resent"]:
            text += f", {c['resent']} repeat rows seen before"
        if self.basis in ("no ledger", "key changed"):
            text += f" ({self.basis}: every row counts as new)"
        return text + (f" (vs {self.previous})" if self.previous else "")


def keys_for(ds: Dataset, ledger: Ledger | None) -> np.ndarray:
    """``ds``'s row keys as ``ledger`` keyed rows.

    Ids are keyed by their text as written ("00042" stays "00042"); a ledger written before
    that (no ``ids`` in its meta) holds the keys of the ids as the CSV reader parsed them
    (42), so today's rows are matched to it by the keys of their parsed ids
    (:meth:`retraining.data.dataset.Dataset.legacy_keys`, hashed only when such a ledger is met).
    """
    if ledger is not None and ledger.key.get("method") == "id" and ledger.ids != "text" and getattr(ds, "parsed_ids", None) is not None:
        return ds.legacy_keys()
    return np.asarray(ds.keys, dtype=np.uint64)


def split_rows(ds: Dataset, previous: Ledger | None) -> RowSplit:
    """Which rows of ``ds`` are new since ``previous`` (the ledger of :func:`last_accepted`'s version)."""
    keys = keys_for(ds, previous)
    n = len(keys)
    if previous is None or previous.key != ds.split.get("key", {}):
        basis = "no ledger" if previous is None else "key changed"
        counts = {"total": n, "new": n, "seen": 0, "gone": 0 if previous is None else previous.rows, "resent": 0}
        return RowSplit(np.ones(n, bool), np.zeros(n, bool), basis, counts, previous.version if previous else None)
    old = np.sort(np.concatenate([previous.train, previous.holdout]))
    newer = np.zeros(n, bool)
    basis = "keys"
    if ds.times is not None and previous.max_time is not None:
        newer = ds.times > previous.max_time
        basis = "time"
    candidates = np.flatnonzero(~newer)
    matched, known_key = _multiset_match(keys[candidates], old)
    seen = np.zeros(n, bool)
    seen[candidates[matched]] = True
    known = np.zeros(n, bool)
    known[candidates] = known_key
    resent = ~seen & ~newer & known
    counts = {
        "total": n,
        "new": int(n - seen.sum()),
        "seen": int(seen.sum()),
        "gone": int(len(old) - seen.sum()),
        "resent": int(resent.sum()),
    }
    usual = float(np.count_nonzero(old[1:] == old[:-1]) / len(old)) if len(old) else 0.0  # old is sorted: repeats sit side by side
    return RowSplit(~seen, resent, basis, counts, previous.version, usual)


def in_training(ds: Dataset, ledger: Ledger | None) -> np.ndarray:
    """Rows of ``ds`` whose key is among ``ledger``'s training rows (all False without one)."""
    keys = keys_for(ds, ledger)
    if ledger is None or ledger.key != ds.split.get("key", {}):
        return np.zeros(len(keys), bool)
    return _contains(ledger.train, keys)


def rows_in_training(frame: pd.DataFrame, ledger: Ledger | None) -> np.ndarray | None:
    """For raw rows (an A/B replay file): which ones ``ledger``'s version trained on.

    The rows are keyed as the ledger was: by its id column, or by its feature columns.
    ``None`` when that cannot be done (no ledger, or the frame lacks those columns).
    """
    if ledger is None or not ledger.key:
        return None
    if ledger.key.get("method") == "id":
        column = ledger.key["column"]
        return _contains(ledger.train, id_hashes(frame[column])) if column in frame.columns else None
    columns = ledger.key.get("columns", [])
    if not columns or any(c not in frame.columns for c in columns):
        return None
    return _contains(ledger.train, content_hashes(frame[columns]))


# -- which version new rows are counted against; which holdout rows are compared -------------
def held_back(entry: dict) -> bool:
    """A version kept for review by a blocking data-check finding (its rows were not accepted)."""
    return entry.get("decision") != Decision.DEPLOYED and any(c.get("severity") == "block" for c in entry.get("checks") or ())


def last_accepted(data: dict, champ_entry: dict | None) -> dict | None:
    """The newest version that is production or was not held back by a blocking data check.

    New rows are counted against it, so rows a blocked night brought stay new (and checked)
    on the following nights until they are fixed upstream or a person promotes that version.
    """
    production = data.get("production")
    for entry in reversed(data.get("versions", [])):
        if entry.get("version") == production or not held_back(entry):
            return entry
    return champ_entry  # every version in the log was held back: production may be archived


def comparison_rows(ds: Dataset, champion_trained: np.ndarray | None, unknown: str = "") -> tuple[np.ndarray, Finding | None]:
    """The holdout rows both models are scored on: the holdout minus the champion's training rows.

    Also a ``holdout_overlap`` warning when those rows stay in: they cannot be known
    (``unknown`` says why), or too few rows of a class would remain without them.
    """
    from retraining.data.dataset import MIN_PER_CLASS

    holdout = int(ds.holdout.sum())
    if unknown:
        message = f"the champion's training rows cannot be left out of the holdout: {unknown}; its ROC-AUC may be optimistic"
        return ds.holdout, Finding("holdout_overlap", WARN, [], {"holdout_rows": holdout}, message)
    if champion_trained is None:
        return ds.holdout, None
    kept = ds.holdout & ~champion_trained
    positives = int(ds.y[kept].sum())
    negatives = int(kept.sum()) - positives
    if positives >= MIN_PER_CLASS and negatives >= MIN_PER_CLASS:
        return kept, None
    overlap = holdout - int(kept.sum())
    numbers = {"holdout_rows": holdout, "trained_on": overlap, "positives_left": positives, "negatives_left": negatives}
    message = (
        f"{overlap} of {holdout} holdout rows are rows the champion trained on; without them {positives} positive and {negatives} "
        f"negative rows would remain (at least {MIN_PER_CLASS} of each are needed), so they stay in: its ROC-AUC may be optimistic"
    )
    return ds.holdout, Finding("holdout_overlap", WARN, [], numbers, message)


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Membership of each of ``keys``; the queries are sorted first (sequential search is far faster at 1M rows)."""
    if len(sorted_keys) == 0 or len(keys) == 0:
        return np.zeros(len(keys), bool)
    order = np.argsort(keys)
    queries = keys[order]
    idx = np.searchsorted(sorted_keys, queries)
    idx[idx == len(sorted_keys)] = 0
    out = np.empty(len(keys), bool)
    out[order] = sorted_keys[idx] == queries
    return out


def _multiset_match(keys: np.ndarray, sorted_old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per key (in order): matched (the old keys still hold an unmatched copy), and known (the old keys hold it at all)."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    starts = np.r_[True, ks[1:] != ks[:-1]]  # no keys (every row newer by time): the one True broadcasts to nothing below
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(ks)), 0))
    occurrence = np.arange(len(ks)) - group_start  # 0 for the first copy of a key, 1 for the second, ...
    available = np.searchsorted(sorted_old, ks, side="right") - np.searchsorted(sorted_old, ks, side="left")
    matched, known = np.empty(len(keys), bool), np.empty(len(keys), bool)
    matched[order] = occurrence < available
    known[order] = available > 0
    return matched, known
