"""Outcomes joined to the production predictions, and what each version did.

:func:`join` gives every prediction its outcome (or none): the outcome table's ids are
hashed with each experiment's salt (``production``, or ``S`` of ``production:S``, for
production lines; the A/B experiment id for A/B lines, unless ``salt`` is given), exactly as the writers hashed
them. An id that appears several times in the outcomes keeps its last row. Every
prediction of an entity gets that entity's outcome.

:func:`summarize` gives, per version, overall and per day: rows scored, rows with an
outcome, realized ROC-AUC with the DeLong 95 % CI, Brier score, predicted vs observed
positive rate, the label-free estimate (CBPE) and the version's holdout AUC. The numbers
that need outcomes come from the labelled rows; the others from the sums over every row
(:mod:`.aggregates`), so a rerun does not reread every kept prediction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retraining.ab.predlog import entity_hashes, production_salt
from retraining.data.dataset import encode_target
from retraining.data.keys import id_text
from retraining.errors import DataError
from retraining.monitoring import ids as outcome_ids
from retraining.monitoring import stats
from retraining.monitoring.aggregates import Aggregates, category_codes
from retraining.sources import column_list, suggest

log = logging.getLogger(__name__)


@dataclass
class Joined:
    """The predictions with an outcome column (``y``: 1, 0, or -1 for none yet) and what the join counted."""

    frame: pd.DataFrame
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    y: np.ndarray | None = None  # the outcome of every row joined (1, 0, -1 for none yet)
    matched: np.ndarray | None = None  # which outcomes matched a row


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
    y, positive = _encode(rows[label_column], label_column, positive_class, where)
    given = rows[id_column]
    frame = pd.DataFrame({"id": given.array if isinstance(given.dtype, pd.StringDtype) else given.to_numpy(), "y": y})  # text stays Arrow
    dup = outcome_ids.duplicated(frame["id"])  # the ids' stripped text, as written out below
    counts["duplicate_ids"] = int(dup.sum())
    notes = []
    if dup.any():
        first = frame["id"].iloc[[int(np.argmax(dup))]].astype(str).str.strip().iloc[0]
        notes.append(f"{where}: {int(dup.sum())} outcome rows repeat an id (first: {first!r}); the last row of each id wins.")
    counts["positive_class"] = positive
    return frame[~dup], counts, notes


def _encode(column: pd.Series, name: str, positive_class: str | None, where: str) -> tuple[np.ndarray, str]:
    """:func:`encode_target`; an integer column by its few distinct values (a value's text is that of the value alone)."""
    if not (isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu"):
        return encode_target(column, name, positive_class, where)
    values = column.to_numpy()
    distinct = pd.unique(values)
    _, positive = encode_target(pd.Series(distinct), name, positive_class, where)
    return np.isin(values, distinct[(id_text(pd.Series(distinct)) == positive).to_numpy()]).astype(np.int8), positive


def join(entity: np.ndarray, experiment: tuple, labels: pd.DataFrame, counts: dict, salt: str | None, where: str, known: dict | None = None) -> Joined:
    """Each prediction's outcome (``y``, one per row of ``entity``); the match rate of the outcomes.

    ``experiment`` is each row's experiment as integer codes and their names. ``Joined.frame``
    is left empty: the caller gathers the labelled rows it needs (``y >= 0``). ``known``
    continues an earlier join of the same outcomes over other rows: ``hashes`` (salt -> the
    outcome ids' hashes, filled in here), ``matched`` (outcomes that matched there), ``rows``.
    """
    known = known if known is not None else {}
    hashes = known.setdefault("hashes", {})
    y = np.full(len(entity), -1, dtype=np.int8)
    matched = np.array(known["matched"], dtype=bool) if known.get("matched") is not None else np.zeros(len(labels), dtype=bool)
    label_y = labels["y"].to_numpy()
    for rows, key in _groups(experiment, salt):
        if key not in hashes:
            hashes[key] = hashes_of_ids(labels["id"], key)
        at = outcome_ids.lookup(hashes[key], entity if rows is None else entity[rows])
        hit = at >= 0
        y[np.flatnonzero(hit) if rows is None else rows[hit]] = label_y[at[hit]]
        matched[at[hit]] = True
    counts = {**counts, "labelled": len(labels), "matched": int(matched.sum()), "unknown_ids": int((~matched).sum())}
    counts["match_rate"] = round(counts["matched"] / len(labels), 6) if len(labels) else None
    notes = []
    if len(entity) + known.get("rows", 0) and len(labels) and not matched.any():
        raise DataError(
            f"{where}: none of the {len(labels)} outcome ids matches a logged prediction (match rate 0 %); "
            "check --id-column, --salt for A/B logs, and that --log is this registry's log."
        )
    if counts["unknown_ids"]:
        notes.append(f"{where}: {counts['unknown_ids']} of {len(labels)} outcome ids match no logged prediction (match rate {counts['match_rate']:.1%}).")
    return Joined(pd.DataFrame(), counts, notes, y, matched)


def rejoin(entity: np.ndarray, experiment: tuple, labels: pd.DataFrame, salt: str | None, last: dict) -> tuple | None:
    """:func:`join` of rows joined before, from that join: only the rows of an id whose label is new, changed or gone are looked up.

    ``last`` is the last run's join of exactly these rows (:meth:`.store.Store.joined`: ``y``,
    ``matched``, ``hashes`` per salt, ``label_y``) with the same ``salt``. A row's outcome
    depends only on the label of its id, so every other row keeps its ``y``, and an outcome
    whose id kept its label keeps ``matched``. Gives ``y``, ``matched`` and the hashes per
    salt as :func:`join` gives them; None when a salt these rows need is not in ``last``.
    """
    groups = list(_groups(experiment, salt))
    if not groups or any(key not in last["hashes"] for _, key in groups):
        return None
    first = next(iter(last["hashes"]))
    hashes, label_y = {first: hashes_of_ids(labels["id"], first)}, labels["y"].to_numpy()
    old = last["hashes"][first]
    if np.array_equal(hashes[first][: len(old)], old):  # outcomes appended: the last labels come first, and no new id is one of them
        was = np.where(np.arange(len(labels)) < len(old), np.arange(len(labels)), -1)
    else:
        was = outcome_ids.lookup(old, hashes[first])  # each outcome's place in the last labels (-1: a new id)
    same = was >= 0
    same[same] = last["label_y"][was[same]] == label_y[same]
    gone = np.ones(len(last["label_y"]), dtype=bool)
    gone[was[was >= 0]] = False
    matched = np.zeros(len(labels), dtype=bool)
    matched[same] = last["matched"][was[same]]
    y, changed = np.array(last["y"], dtype=np.int8), np.flatnonzero(~same)
    log.info("%d outcome ids are new or relabelled and %d gone since the last run: only their rows are joined again", len(changed), int(gone.sum()))
    for rows, key in groups:
        if key not in hashes:
            hashes[key] = hashes_of_ids(labels["id"], key)
        stale = np.concatenate([hashes[key][changed], last["hashes"][key][gone]])  # distinct ids: a gone one is in no new label
        if not len(stale):
            continue
        at = outcome_ids.lookup(stale, entity if rows is None else entity[rows])
        hit = np.flatnonzero(at >= 0)
        at = np.append(changed, -1)[np.minimum(at[hit], len(changed))]  # the new label's place, -1 for a gone id
        y[hit if rows is None else rows[hit]] = np.where(at >= 0, label_y[np.maximum(at, 0)], -1)
        matched[at[at >= 0]] = True
    return y, matched, hashes


def _groups(experiment: tuple, salt: str | None):
    """(rows, salt key) per experiment that has rows; rows None when every row is of the one experiment."""
    codes, names = experiment
    for code, exp in enumerate(names):
        rows = np.flatnonzero(codes == code) if len(names) > 1 or (codes != 0).any() else None
        if rows is None or len(rows):
            yield rows, production_salt(exp) or salt or exp


@dataclass
class Outcomes:
    """The outcome table as a run was given it; :meth:`labels` (:func:`labels_of`) is computed on first use.

    ``given`` is the table, or a function that reads it (called at most once, only when needed).
    ``source`` is a digest of the bytes it is read from and of how (None for a database):
    when it equals the last run's, the table is that run's and need not be read at all.
    """

    given: pd.DataFrame | Callable[[], pd.DataFrame]
    id_column: str
    label_column: str
    positive_class: str | None
    salt: str | None
    where: str
    source: str | None = None

    @property
    def table(self) -> pd.DataFrame:
        if callable(self.given):
            self.given = self.given()
        return self.given

    def labels(self) -> tuple[pd.DataFrame, dict, list[str]]:
        if not hasattr(self, "_labels"):
            self._labels = labels_of(self.table, self.id_column, self.label_column, self.positive_class, self.where)
        return self._labels

    def fingerprint(self, last: dict | None = None) -> str | None:
        """A digest of the id and label columns (types, values, missing ones) and of what reads them; None if Arrow cannot take them.

        Equal digests mean equal labels and equal joins, so a rerun may take the last run's.
        When ``last`` (the last run's join) was of the same ``source``, its digest, without reading the table.
        """
        import pyarrow as pa

        if self.source is not None and last is not None and last.get("source") == self.source and last.get("fingerprint"):
            log.info("%s: the same bytes, read the same way, as the last run's outcomes: their labels are taken without reading them again", self.where)
            return str(last["fingerprint"])
        if self.id_column not in self.table.columns or self.label_column not in self.table.columns:
            return None
        try:
            columns = pa.Table.from_pandas(self.table[[self.id_column, self.label_column]], preserve_index=False).combine_chunks()
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
            return None
        head = (self.id_column, self.label_column, self.positive_class, self.salt, self.where, str(columns.schema), columns.num_rows)
        digest = hashlib.blake2b(repr(head).encode(), digest_size=16)
        for column in columns.columns:
            for chunk in column.chunks:
                for buffer in chunk.buffers():
                    digest.update(b"-" if buffer is None else memoryview(buffer))
        return digest.hexdigest()


def hashes_of_ids(ids: pd.Series, salt: str) -> np.ndarray:
    """:func:`retraining.ab.predlog.entity_hashes` of the ids; text ids that are canonical decimal numbers take its integer path.

    An id's hash is defined by its text, and the text of a non-negative integer is its
    decimal digits, so ``"42"`` and ``42`` hash alike; hashing such text as integers avoids
    a Python string per id. Other text (``"00042"``, ``"a7"``, ``" 42"``) is hashed as text.
    """
    laid = outcome_ids.hashes(ids, salt)
    if laid is not None:
        return laid
    values = ids.to_numpy() if isinstance(ids, pd.Series) else np.asarray(ids)
    if values.dtype.kind in "iuf" or not len(values):
        return entity_hashes(ids, salt)
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        text = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return entity_hashes(ids, salt)
    canonical = pc.fill_null(pc.match_substring_regex(text, r"^(0|[1-9][0-9]{0,18})$"), False).to_numpy(zero_copy_only=False)
    if not canonical.any():
        return entity_hashes(ids, salt)
    out = np.empty(len(values), dtype=np.uint64)
    out[canonical] = entity_hashes(pc.cast(pc.filter(text, pa.array(canonical)), pa.uint64()).to_numpy(), salt)
    if not canonical.all():
        out[~canonical] = entity_hashes(pd.Series(values[~canonical], dtype=object), salt)
    return out


def day_date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def day_text(day: int) -> str:
    return day_date(day).isoformat()


def summarize(labelled: pd.DataFrame, agg: Aggregates, holdout: dict, reference_counts: dict | None = None, memo: Memo | None = None) -> list[dict]:
    """Per version (newest first): overall numbers and a per-day list (see the module docstring).

    ``labelled`` holds the rows with an outcome (``y`` 0 or 1), in log order; ``agg`` the sums
    over every row. ``reference_counts`` (version -> its holdout scores' PSI bucket counts)
    adds each day's score PSI against them. ``memo`` (see :func:`realized`) keeps the
    realized numbers of rows a rerun sees unchanged.
    """
    memo = Memo() if memo is None else memo
    out = []
    codes, names = category_codes(labelled["model_version"])
    for version in sorted(agg.versions(), key=_version_key, reverse=True):
        mine = labelled[["y", "score", "day"]][codes == names.index(version)] if version in names else labelled.iloc[:0]  # what the numbers read
        keys = agg.of_version(version)
        item = {"version": version, **_numbers(mine, agg, keys, memo=memo), **holdout.get(version, {})}
        days = mine["day"].to_numpy()
        item["days"] = [
            {"day": day_text(agg.keys[k][1]), **_numbers(mine[days == agg.keys[k][1]], agg, keys[i : i + 1], True, memo)} for i, k in enumerate(keys)
        ]
        reference = (reference_counts or {}).get(version)
        if reference is not None:
            for i, day in enumerate(item["days"]):
                day["score_psi"] = agg.score_psi(version, keys[i : i + 1], reference)
        out.append(item)
    return out


class Memo:
    """The realized numbers of the last run by a fingerprint of their rows (outcomes and scores, in order).

    A rerun whose labelled rows of a version or day are unchanged takes the kept result
    instead of ranking the rows again; :attr:`used` is what this run looked up, to keep.
    """

    def __init__(self, kept: dict | None = None) -> None:
        self.kept = kept or {}
        self.used: dict[str, dict] = {}

    def realized(self, labelled: pd.DataFrame) -> dict:
        """:func:`stats.realized` of the rows ``y`` and ``score``."""
        y, scores = labelled["y"].to_numpy(), labelled["score"].to_numpy()
        digest = hashlib.blake2b(f"{y.dtype} {scores.dtype} {len(y)}".encode(), digest_size=16)
        digest.update(np.ascontiguousarray(y).tobytes())
        digest.update(np.ascontiguousarray(scores).tobytes())
        key = digest.hexdigest()
        if key not in self.used:
            self.used[key] = self.kept[key] if key in self.kept else stats.realized(y, scores.astype(float))
        return dict(self.used[key])


def _numbers(labelled: pd.DataFrame, agg: Aggregates, keys: np.ndarray, brief: bool = False, memo: Memo | None = None) -> dict:
    live = (memo or Memo()).realized(labelled)
    sums = agg.numbers(keys)
    out = {
        "rows": sums["rows"],
        "rows_with_outcome": len(labelled),
        "positives": live["positives"],
        "realized_auc": live["roc_auc"],
        "ci_low": live["ci_low"],
        "ci_high": live["ci_high"],
        "estimated_auc": sums["estimated_auc"],
    }
    if not brief:
        out.update(realized_se=live["se"], brier=live["brier"], predicted_rate=sums["predicted_rate"], observed_rate=live["observed_rate"])
    return out


def _version_key(version: str) -> tuple:
    try:
        return tuple(int(x) for x in version.lstrip("v").split("."))
    except ValueError:
        return (0,)
