"""Read and validate the training CSV; pick features; draw the stable holdout split.

The one public entry is :func:`load_dataset`. It never writes anything and raises
:class:`~retraining.errors.DataError` with a message that says what is wrong, where,
and what to do.

The holdout split is *stable across runs*: whether a row is in the holdout depends only
on that row's key (a hash of its ``--id-column`` value, or of its feature values, never
its label: :mod:`retraining.guard.ledger`), or with ``--time-column`` on its time (the newest
20 %). Without a time column a row keeps its side as long as its key stays: a corrected
label moves nothing; an edited feature value (no id column) makes it a different row.
The run also drops holdout rows found in the champion's training ledger.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.data.keys import content_hashes, id_hashes, id_text, key_columns, key_info, key_kinds, row_keys, written_id_text
from retraining.errors import DataError
from retraining.sources import SourceSpec, column_list, log_table_notes, read_table, suggest

log = logging.getLogger(__name__)

MISSING_CATEGORY = "__missing__"
HOLDOUT_FRACTION = 0.2
MIN_PER_CLASS = 5
SPLIT_VERSION = 2  # 2: the row-hash split buckets the row key without the label (1 hashed the label too)
_BUCKETS = 10_000
_KNOWN_POSITIVE = {
    frozenset({"yes", "no"}): "yes",
    frozenset({"true", "false"}): "true",
    frozenset({"y", "n"}): "y",
    frozenset({"t", "f"}): "t",
    frozenset({"1", "0"}): "1",
    frozenset({"1.0", "0.0"}): "1.0",
    frozenset({"positive", "negative"}): "positive",
    frozenset({"pos", "neg"}): "pos",
}


@dataclass
class Dataset:
    """A validated training set, ready for CatBoost."""

    path: str  # what logs and the version log show: a file path, or a database URL with the password masked
    sha256: str
    X: pd.DataFrame
    y: np.ndarray
    cat_features: list[str]
    holdout: np.ndarray
    positive_class: str
    dropped: dict[str, str] = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    infinite: dict[str, np.ndarray] = field(default_factory=dict)  # per numeric column with any: which rows held +-inf (NaN in X)
    keys: np.ndarray | None = None  # uint64 row key per row (retraining.data.keys.row_keys); never includes the label
    times: np.ndarray | None = None  # the --time-column as int64 ns since the epoch (dates) or float64 (numbers)
    source_notes: list[str] = field(default_factory=list)  # how the source was read (retraining.sources.base.Table.notes)
    key_kinds: dict = field(default_factory=dict)  # content keys: how each key column was read (retraining.data.keys.key_kinds)
    parsed_ids: pd.Series | None = None  # a CSV's ids as the reader parsed them (read as text for ``keys``): see legacy_keys
    _legacy: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def legacy_keys(self) -> np.ndarray:
        """The row keys of the ids as the CSV reader parsed them (42 for "00042"): what a ledger written
        before ids were read as text holds (:func:`retraining.guard.ledger.keys_for`). Hashed at the
        first call (only a run that meets such a ledger pays); ``keys`` when the ids were not re-read.
        """
        if self.parsed_ids is None or self.parsed_ids.isna().any():
            return np.asarray(self.keys, dtype=np.uint64)
        if self._legacy is None:
            self._legacy = id_hashes(self.parsed_ids)
        return self._legacy

    @property
    def features(self) -> list[str]:
        return list(self.X.columns)

    @property
    def rows(self) -> int:
        return len(self.y)

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    def schema(self) -> list[list[str]]:
        """The feature schema: ``[[name, "categorical"|"numeric"], ...]`` in column order."""
        cats = set(self.cat_features)
        return [[c, "categorical" if c in cats else "numeric"] for c in self.X.columns]

    def describe(self) -> dict:
        """What the version log records about the data."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "rows": self.rows,
            "positives": self.positives,
            "positive_rate": round(self.positives / self.rows, 6),
            "positive_class": self.positive_class,
            "holdout_rows": int(self.holdout.sum()),
            "dropped_columns": dict(self.dropped),
            "missing_values": dict(self.missing),
            "infinite_values": {name: int(mask.sum()) for name, mask in self.infinite.items()},
            "split": dict(self.split),
        }


def load_dataset(
    source: str | Path | SourceSpec,
    target: str = "target",
    positive_class: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    drop_columns: tuple[str, ...] | list[str] = (),
    sha256: str | None = None,
) -> Dataset:
    """Read ``source`` (a path, a database URL or a :class:`SourceSpec`) into a :class:`Dataset`; raise :class:`DataError` if unusable."""
    table = read_table(source, log_notes=False)  # logged below, once the data is usable
    where = table.display
    _check_columns(table.frame, target, id_column, time_column, drop_columns, where)
    frame, parsed_ids = ids_as_written(table, source, id_column)
    y, positive = encode_target(frame[target], target, positive_class, where)
    holdout, split, keys, times = stable_holdout(frame, target, id_column, time_column, drop_columns, where)

    excluded = {target, *drop_columns} | {c for c in (id_column, time_column) if c}
    X, cat_features, dropped, infinite = prepare_features(frame.drop(columns=list(excluded)), where)
    for name in drop_columns:
        dropped[name] = "dropped with --drop-columns"
    check_holdout(y, holdout, where)
    log_table_notes(table)
    return Dataset(
        path=table.display,
        sha256=sha256 or table.fingerprint,
        X=X,
        y=y,
        cat_features=cat_features,
        holdout=holdout,
        positive_class=positive,
        dropped=dropped,
        split=split,
        missing={str(k): int(v) for k, v in frame.isna().sum().items() if v},
        infinite=infinite,
        keys=keys,
        times=times,
        source_notes=list(table.notes),
        key_kinds=key_kinds(frame, split["key"].get("columns", [])),
        parsed_ids=parsed_ids,
    )


def _check_columns(frame: pd.DataFrame, target: str, id_column: str | None, time_column: str | None, drop_columns, where: str) -> None:
    """The named columns exist and do not overlap; a :class:`DataError` naming the first that does not."""
    columns = list(frame.columns)
    if target not in columns:
        hint = suggest(target, columns) or _two_valued(frame)
        raise DataError(f"{where}: no target column {target!r}.{hint} Columns are {_names(columns)}. Name the outcome column with --target NAME.")
    for flag, name in (("--id-column", id_column), ("--time-column", time_column)):
        if name is not None and name not in columns:
            raise DataError(f"{where}: {flag} {name!r} is not a column.{suggest(name, columns)} Columns are {_names(columns)}.")
    for name in drop_columns:
        if name not in columns:
            raise DataError(f"{where}: --drop-columns names {name!r}, which is not a column.{suggest(name, columns)} Columns are {_names(columns)}.")
    if target in drop_columns or target in (id_column, time_column):
        raise DataError(f"{where}: the target column {target!r} cannot also be dropped or used as id/time column.")


def ids_as_written(table, source: str | Path | SourceSpec, id_column: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
    """The frame with a CSV's ``id_column`` as written ("00042" stays "00042"), and the ids as the reader parsed them.

    Ids are text (:func:`retraining.data.keys.written_id_text`: the canonical text every writer
    shares), so the ledger, the server and the A/B and monitor joins agree on them. Other
    sources keep their values (text or numbers; a number's text is its decimal). Returns the
    frame unchanged and ``None`` when there is nothing to re-read.
    """
    if not id_column or table.kind != "csv":
        return table.frame, None
    from retraining.sources.csvfile import read_text_column

    spec = source if isinstance(source, SourceSpec) else SourceSpec(str(source))
    cells = read_text_column(Path(spec.location), id_column, spec.delimiter, spec.encoding)
    if len(cells) != len(table.frame):  # the two readers disagree on the rows: keep the parsed ids
        log.warning("%s: could not read %r as written (%d rows vs %d); ids are keyed as parsed", table.display, id_column, len(cells), len(table.frame))
        return table.frame, None
    text = written_id_text(cells)
    parsed = table.frame[id_column]
    text = text.set_axis(parsed.index).where(parsed.notna().to_numpy() & (text != "").to_numpy(), None)  # missing where the reader found none
    return table.frame.assign(**{id_column: text.astype(object)}), parsed


def read_csv(path: str | Path) -> pd.DataFrame:
    """The frame of a CSV (or Parquet) file, read by :func:`retraining.sources.base.read_table`."""
    return read_table(SourceSpec(str(path))).frame


def encode_target(column: pd.Series, name: str, positive_class: str | None, where: str) -> tuple[np.ndarray, str]:
    """Map a two-valued target to 0/1; return the array and the positive value as text."""
    missing = column.isna()
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0]) + 2  # +1 header, +1 one-based
        raise DataError(f"{where}: target column {name!r} is empty in {int(missing.sum())} rows (first at line {first}); fill or drop those rows.")
    text = id_text(column)
    values = sorted(pd.unique(text))
    if len(values) < 2:
        raise DataError(f"{where}: target column {name!r} has only one class ({values[0]!r}); a binary classifier needs both classes.")
    if len(values) > 2:
        shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise DataError(f"{where}: target column {name!r} has {len(values)} distinct values ({shown}); a binary target needs exactly two.")
    if positive_class is not None:
        matches = [v for v in values if _same_label(v, positive_class)]
        if not matches:
            raise DataError(f"{where}: --positive-class {positive_class!r} is not a value of target {name!r} (values: {values[0]!r}, {values[1]!r}).")
        positive = matches[0]
    else:
        positive = _KNOWN_POSITIVE.get(frozenset(v.lower() for v in values))
        if positive is None:
            raise DataError(
                f"{where}: target column {name!r} has values {values[0]!r} and {values[1]!r}; say which one is the positive class with --positive-class VALUE."
            )
        positive = next(v for v in values if v.lower() == positive)
    return (text == positive).to_numpy(dtype=np.int8), positive


def _same_label(value: str, wanted: str) -> bool:
    if value.lower() == wanted.strip().lower():
        return True
    try:
        return float(value) == float(wanted)
    except ValueError:
        return False


def _kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    return "categorical"


def prepare_features(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[str], dict[str, str], dict[str, np.ndarray]]:
    """Turn raw columns into CatBoost-ready features; drop the ones that cannot help.

    Infinities become NaN for CatBoost, and the rows that held them are returned per column
    (the ``infinite_values`` data check judges them: they are not "missing").
    """
    n = len(frame)
    out: dict[str, pd.Series] = {}
    cats: list[str] = []
    dropped: dict[str, str] = {}
    infinite: dict[str, np.ndarray] = {}
    for name in frame.columns:
        col = frame[name]
        kind = _kind(col)
        reason = _useless(col, kind, n)
        if reason:
            dropped[name] = reason
            log.info("Leaving out column %r: %s", name, reason)
            continue
        if kind == "categorical":
            out[name] = categorical_values(col)
            cats.append(name)
        else:
            values = col.astype("int64").astype("float64") if kind == "datetime" else col.astype("float64")
            arr = values.to_numpy(copy=True)
            inf = np.isinf(arr)
            if inf.any():
                log.info("Column %r: %d infinite values (the infinite_values data check judges them)", name, int(inf.sum()))
                arr[inf] = np.nan
                infinite[name] = inf
            out[name] = pd.Series(arr, index=frame.index, name=name)
    if not out:
        raise DataError(f"{where}: no usable feature columns are left ({_names(dropped) or 'none given'}); add features.")
    return pd.DataFrame(out, index=frame.index), cats, dropped, infinite


def categorical_values(col: pd.Series) -> pd.Series:
    """Categorical column as text, with missing values as an explicit category."""
    as_obj = col.astype(object)
    return as_obj.where(col.notna(), MISSING_CATEGORY).astype(str)


def _useless(col: pd.Series, kind: str, n: int) -> str | None:
    distinct = col.nunique(dropna=False)
    if distinct <= 1:
        return "constant (one value in every row)"
    if n >= 50 and distinct == n:
        if kind == "categorical":
            return "unique in every row, like an ID"
        if pd.api.types.is_integer_dtype(col) and col.is_monotonic_increasing and int(col.iloc[-1]) - int(col.iloc[0]) == n - 1:
            return "a running row number (unique in every row)"
    return None


def stable_holdout(
    frame: pd.DataFrame, target: str, id_column: str | None, time_column: str | None, drop_columns, where: str
) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray | None]:
    """Holdout mask, split description, row keys and parsed times; the mask depends only on each row.

    Without a time column a row's side is a bucket of its row key (:func:`retraining.data.keys.row_keys`,
    which never includes the label), so a corrected label moves no row between training and holdout.
    With ``--time-column`` the holdout is the newest 20 %.
    """
    if id_column and frame[id_column].isna().any():
        raise DataError(f"{where}: --id-column {id_column!r} is empty in {int(frame[id_column].isna().sum())} rows; every row needs an id.")
    columns = key_columns(frame, target, id_column, time_column, drop_columns)
    keys = row_keys(frame, id_column, columns)
    key = key_info(id_column, columns)
    if time_column:
        t, times = _time_values(frame[time_column], time_column, where)
        order = np.sort(times)
        k = max(1, math.ceil(HOLDOUT_FRACTION * len(order)))
        threshold = order[len(order) - k]
        mask = times >= threshold
        shown = t[mask][times[mask] == threshold].iloc[0]
        info = {"method": "time", "column": time_column, "fraction": HOLDOUT_FRACTION, "from": str(shown), "version": SPLIT_VERSION, "key": key}
        return mask, info, keys, times
    method = {"method": "id-hash", "column": id_column} if id_column else {"method": "row-hash"}
    return _bucket(keys), {**method, "fraction": HOLDOUT_FRACTION, "version": SPLIT_VERSION, "key": key}, keys, None


def _time_values(t: pd.Series, name: str, where: str) -> tuple[pd.Series, np.ndarray]:
    """The time column parsed: the series (for display) and int64 ns (dates) or float64 (numbers)."""
    if not pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_datetime64_any_dtype(t):
        try:
            t = pd.to_datetime(t, utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: --time-column {name!r} holds values that are neither numbers nor dates ({exc}).") from exc
    if t.isna().any():
        raise DataError(f"{where}: --time-column {name!r} is empty in {int(t.isna().sum())} rows; fill or drop them.")
    if pd.api.types.is_datetime64_any_dtype(t):
        return t, t.dt.as_unit("ns").astype("int64").to_numpy()
    return t, t.to_numpy(dtype="float64")


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content (kept for callers; the definition is :func:`retraining.data.keys.content_hashes`)."""
    return content_hashes(frame)


def _bucket(hashes: np.ndarray) -> np.ndarray:
    # Mix the bits once more (splitmix64 finaliser) so that any hash gives even buckets.
    with np.errstate(over="ignore"):
        z = hashes.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(_BUCKETS)) < np.uint64(int(HOLDOUT_FRACTION * _BUCKETS))


def check_holdout(y: np.ndarray, holdout: np.ndarray, where: str) -> None:
    """Both sides of the split need both classes, or AUC means nothing."""
    for side, mask in (("holdout", holdout), ("training side", ~holdout)):
        pos = int(y[mask].sum())
        neg = int(mask.sum()) - pos
        if pos < MIN_PER_CLASS or neg < MIN_PER_CLASS:
            raise DataError(
                f"{where}: too few rows for a fair holdout: the {side} has {pos} positive and {neg} negative rows "
                f"(of {len(y)} in all); at least {MIN_PER_CLASS} of each are needed. Add more data."
            )


def _two_valued(frame: pd.DataFrame) -> str:
    """`` Two-valued columns (a target?): 'y'.`` when no name is close to the missing target."""
    found = [str(c) for c in frame.columns if frame[c].nunique() == 2][:5]
    return f" Two-valued columns (a target?): {_names(found)}." if found else ""


def _names(names) -> str:
    """Every column name, or the first 30 and "... (M in all)" (retraining.sources.base.column_list)."""
    return column_list(names)
