"""Read and validate the training CSV; pick features; draw the stable holdout split.

The one public entry is :func:`load_dataset`. It never writes anything and raises
:class:`~retraining.errors.DataError` with a message that says what is wrong, where,
and what to do.

The holdout split is *stable across runs*: whether a row is in the holdout depends only
on that row (a hash of its ``--id-column`` value, or of its content), or with
``--time-column`` on its time (the newest 20 %). A row that an earlier version trained on
therefore never lands in a later holdout, so the champion is never scored on rows it
memorised.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .fsutil import sha256_file

log = logging.getLogger(__name__)

MISSING_CATEGORY = "__missing__"
HOLDOUT_FRACTION = 0.2
MIN_PER_CLASS = 5
SPLIT_VERSION = 1
_BUCKETS = 10_000
_HASH_KEY = "catboost-retrain"  # 16 bytes, fixed forever: changing it re-draws every split
_DELIMITERS = (",", ";", "\t", "|")
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

    path: Path
    sha256: str
    X: pd.DataFrame
    y: np.ndarray
    cat_features: list[str]
    holdout: np.ndarray
    positive_class: str
    dropped: dict[str, str] = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

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
            "split": dict(self.split),
        }


def load_dataset(
    path: str | Path,
    target: str = "target",
    positive_class: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    drop_columns: tuple[str, ...] | list[str] = (),
    sha256: str | None = None,
) -> Dataset:
    """Read ``path`` and return a :class:`Dataset`; raise :class:`DataError` if unusable."""
    path = Path(path)
    frame = read_csv(path)
    where = f"{path}"
    if target not in frame.columns:
        raise DataError(f"{where}: no target column {target!r}; columns are {_names(frame.columns)}. Name the outcome column with --target NAME.")
    for flag, name in (("--id-column", id_column), ("--time-column", time_column)):
        if name is not None and name not in frame.columns:
            raise DataError(f"{where}: {flag} {name!r} is not a column; columns are {_names(frame.columns)}.")
    for name in drop_columns:
        if name not in frame.columns:
            raise DataError(f"{where}: --drop-columns names {name!r}, which is not a column; columns are {_names(frame.columns)}.")
    if target in drop_columns or target in (id_column, time_column):
        raise DataError(f"{where}: the target column {target!r} cannot also be dropped or used as id/time column.")

    y, positive = encode_target(frame[target], target, positive_class, where)
    holdout, split = stable_holdout(frame, y, target, id_column, time_column, where)

    excluded = {target, *drop_columns} | {c for c in (id_column, time_column) if c}
    X, cat_features, dropped = prepare_features(frame.drop(columns=list(excluded)), where)
    for name in drop_columns:
        dropped[name] = "dropped with --drop-columns"
    check_holdout(y, holdout, where)
    na = frame.isna().sum()
    return Dataset(
        path=path,
        sha256=sha256 or sha256_file(path),
        X=X,
        y=y,
        cat_features=cat_features,
        holdout=holdout,
        positive_class=positive,
        dropped=dropped,
        split=split,
        missing={str(k): int(v) for k, v in na.items() if v},
    )


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV quickly (pyarrow engine), with clear errors for files that are not CSVs."""
    if not path.exists():
        raise DataError(f"{path}: file not found. Pass the training data with --data PATH.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a CSV file. Pass the CSV file with --data PATH.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty. Export the training data as a CSV with a header row.")
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" in head:
        raise DataError(f"{path}: is not a text CSV (binary content). Export the data as a comma-separated text file.")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) < (1 << 16) or exc.start < len(head) - 4:
            raise DataError(f"{path}: is not UTF-8 text (byte {exc.start}). Re-save the CSV as UTF-8.") from exc
        text = head[: exc.start].decode("utf-8-sig")
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise DataError(f"{path}: the first line is blank; the file must start with a header row.")
    delimiter = max(_DELIMITERS, key=lambda d: (first_line.count(d), d == ","))
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter))
    if len(header) < 2:
        raise DataError(
            f"{path}: found a single column {first_line[:60]!r}; this does not look like a CSV "
            "with features and a target (expected a header row separated by commas)."
        )
    names = [h.strip() for h in header]
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    if dupes:
        raise DataError(f"{path}: duplicate column names {_names(dupes)} in the header row; give every column a unique name.")
    if any(not n for n in names):
        raise DataError(f"{path}: the header row has an empty column name (column {names.index('') + 1}); name every column.")
    try:
        frame = _read(path, delimiter, engine="pyarrow")
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        log.debug("pyarrow CSV reader failed (%s); retrying with pandas' C reader", exc)
        try:
            frame = _read(path, delimiter, engine="c")
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc2:
            detail = str(exc2).strip().splitlines()[0] if str(exc2).strip() else type(exc2).__name__
            raise DataError(f"{path}: cannot be parsed as CSV ({detail}). Check quoting and that every row has {len(names)} fields.") from exc2
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no data rows.")
    return frame


def _read(path: Path, delimiter: str, engine: str) -> pd.DataFrame:
    kwargs: dict = {"sep": delimiter, "engine": engine, "encoding": "utf-8-sig"}
    if engine == "c":
        kwargs["low_memory"] = False
    return pd.read_csv(path, **kwargs)


def encode_target(column: pd.Series, name: str, positive_class: str | None, where: str) -> tuple[np.ndarray, str]:
    """Map a two-valued target to 0/1; return the array and the positive value as text."""
    missing = column.isna()
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0]) + 2  # +1 header, +1 one-based
        raise DataError(f"{where}: target column {name!r} is empty in {int(missing.sum())} rows (first at line {first}); fill or drop those rows.")
    text = _as_text(column)
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


def _as_text(column: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(column) and (column.dropna() % 1 == 0).all():
        column = column.astype("int64")
    return column.astype(str).str.strip()


def _kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    return "categorical"


def prepare_features(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """Turn raw columns into CatBoost-ready features; drop the ones that cannot help."""
    n = len(frame)
    out: dict[str, pd.Series] = {}
    cats: list[str] = []
    dropped: dict[str, str] = {}
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
                log.info("Column %r: %d infinite values treated as missing", name, int(inf.sum()))
                arr[inf] = np.nan
            out[name] = pd.Series(arr, index=frame.index, name=name)
    if not out:
        raise DataError(f"{where}: no usable feature columns are left ({_names(dropped) or 'none given'}); add features.")
    return pd.DataFrame(out, index=frame.index), cats, dropped


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


def stable_holdout(frame: pd.DataFrame, y: np.ndarray, target: str, id_column: str | None, time_column: str | None, where: str) -> tuple[np.ndarray, dict]:
    """Boolean holdout mask that depends only on each row (or its time), never on chance."""
    if time_column:
        t = frame[time_column]
        if not pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_datetime64_any_dtype(t):
            try:
                t = pd.to_datetime(t, utc=True, format="mixed")
            except (ValueError, TypeError) as exc:
                raise DataError(f"{where}: --time-column {time_column!r} holds values that are neither numbers nor dates ({exc}).") from exc
        if t.isna().any():
            raise DataError(f"{where}: --time-column {time_column!r} is empty in {int(t.isna().sum())} rows; fill or drop them.")
        order = np.sort(t.to_numpy())
        k = max(1, math.ceil(HOLDOUT_FRACTION * len(order)))
        threshold = order[len(order) - k]
        mask = (t >= threshold).to_numpy()
        return mask, {
            "method": "time",
            "column": time_column,
            "fraction": HOLDOUT_FRACTION,
            "from": str(threshold),
            "version": SPLIT_VERSION,
        }
    if id_column:
        ids = frame[id_column]
        if ids.isna().any():
            raise DataError(f"{where}: --id-column {id_column!r} is empty in {int(ids.isna().sum())} rows; every row needs an id.")
        hashes = pd.util.hash_array(_as_text(ids).to_numpy(dtype=object), hash_key=_HASH_KEY, categorize=False)
        return _bucket(hashes), {"method": "id-hash", "column": id_column, "fraction": HOLDOUT_FRACTION, "version": SPLIT_VERSION}
    return _bucket(row_hashes(frame)), {"method": "row-hash", "fraction": HOLDOUT_FRACTION, "version": SPLIT_VERSION}


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content, independent of how pandas typed the columns.

    Numbers hash by value (``1`` and ``1.0`` agree, so a column that gains a missing value
    and turns float keeps its hashes); everything else hashes by its text. Columns are
    combined in name order, so reordering columns in the file keeps the split.
    """
    combined = np.zeros(len(frame), dtype=np.uint64)
    for name in sorted(frame.columns):
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            arr = col.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # + 0.0 folds -0.0 into 0.0
            arr[np.isnan(arr)] = -1.2345e308
            h = pd.util.hash_array(arr, hash_key=_HASH_KEY)
        else:
            text = col.astype(object).where(col.notna(), "\x00NA").astype(str)
            h = pd.util.hash_array(text.to_numpy(dtype=object), hash_key=_HASH_KEY, categorize=False)
        name_h = pd.util.hash_array(np.array([name], dtype=object), hash_key=_HASH_KEY, categorize=False)[0]
        with np.errstate(over="ignore"):
            combined = combined * np.uint64(1_000_003) ^ (h ^ name_h)
    return combined


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


def _names(names) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:12])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
