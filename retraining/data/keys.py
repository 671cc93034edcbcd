"""The row key: one 64-bit hash per row, the one definition of "the same row".

- with ``--id-column``: a hash of the id's text (``42`` and ``42.0`` agree);
- without: a hash of the row's *feature values*: every column except the target, the
  ``--id-column``, the ``--time-column`` and ``--drop-columns``. Numbers hash by value
  (``1`` and ``1.0`` agree, ``-0.0`` is ``0.0``), everything else by its text; columns
  are combined in name order, so reordering the file's columns keeps every key.

It never includes the label. The holdout split (:func:`retraining.data.dataset.stable_holdout`),
the ledgers (:mod:`retraining.guard.ledger`) and the A/B log all use it.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

HASH_KEY = "catboost-retrain"  # 16 bytes, fixed forever: changing it re-draws every split and orphans every ledger
_NA_NUMBER = -1.2345e308
_NA_TEXT = "\x00NA"


def row_keys(frame: pd.DataFrame, id_column: str | None, feature_columns: list[str] | tuple[str, ...]) -> np.ndarray:
    """The row key of every row of ``frame`` (uint64): see the module docstring."""
    if id_column:
        return id_hashes(frame[id_column])
    return content_hashes(frame[list(feature_columns)])


def key_columns(frame: pd.DataFrame, target: str, id_column: str | None, time_column: str | None, drop_columns) -> list[str]:
    """The columns a content key covers: all but the target, id, time and dropped columns."""
    excluded = {target, *drop_columns} | {c for c in (id_column, time_column) if c}
    return sorted(c for c in frame.columns if c not in excluded)


def key_info(id_column: str | None, columns: list[str]) -> dict:
    """The descriptor stored with a ledger; two keys are comparable only if these are equal."""
    return {"method": "id", "column": id_column} if id_column else {"method": "features", "columns": sorted(columns)}


def key_kinds(frame: pd.DataFrame, columns) -> dict[str, str]:
    """How :func:`content_hashes` reads each of ``columns``: ``number`` (by value), or by its text:
    ``bool`` (True/False), ``datetime`` (a timestamp's text) or ``text``.

    Recorded in a version's ledger, so that a row sent later (a server's JSON, a batch to
    score) can be keyed the way training keyed the same row (:mod:`retraining.ab.rowkeys`).
    """
    kinds = {}
    for name in columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col):
            kinds[name] = "bool"
        elif pd.api.types.is_numeric_dtype(col):
            kinds[name] = "number"
        elif pd.api.types.is_datetime64_any_dtype(col):
            kinds[name] = "datetime"
        else:
            present = col.dropna()
            kinds[name] = "bool" if len(present) and all(isinstance(v, (bool, np.bool_)) for v in present) else "text"
    return kinds


def integral_floats_as_int(values: pd.Series) -> pd.Series:
    """Floats that are all whole numbers as nullable integers, so that 42.0 reads as "42" (ids, labels)."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all() and (values.dropna().abs() < 2.0**63).all():
        return values.astype("Int64")  # (a whole float of 2**63 or more has no int64: it stays a float)
    return values


def id_text(values: pd.Series) -> pd.Series:
    """Each value's text without surrounding spaces; whole-number floats read as integers (42.0 -> "42")."""
    return integral_floats_as_int(values).astype(str).str.strip()


def written_id_text(cells: pd.Series) -> pd.Series:
    """Ids read as text (a CSV cell as written) in the canonical text every writer shares.

    The canonical text of an id: a string as it is ("00000" stays "00000": leading zeros are
    part of an id); a number in decimal, a whole number without a fraction (42, 42.0 and "42.0"
    are "42"). A CSV cell is text, except that a whole number written with a zero fraction
    ("42.0", what a float column exports) is that number. Surrounding spaces never count.
    """
    text = cells.astype(str).str.strip()
    if not text.str.contains(".", regex=False).any():  # no fraction anywhere (most id columns): nothing to rewrite
        return text
    whole = text.str.fullmatch(r"-?\d+\.0*")
    return text.where(~whole, text.str.replace(r"\.0*$", "", regex=True))


def id_hashes(ids: pd.Series) -> np.ndarray:
    """64-bit hash of each id's text (:func:`id_text`)."""
    text = id_text(ids).to_numpy()  # an object array: astype(str) gives pandas 2's object or pandas 3's str dtype
    # categorize=False: ids are mostly distinct (a factorize pass first is 4x slower), and pandas 2's
    # factorize of strings compares them as C strings ("7\x00" would be "7")
    return pd.util.hash_array(text, hash_key=HASH_KEY, categorize=False)


def content_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content, independent of how pandas typed the columns.

    Numbers hash by value (``1`` and ``1.0`` agree, so a column that gains a missing value
    and turns float keeps its hashes); everything else hashes by its text. Columns are
    combined in name order, so reordering columns in the file keeps the keys.
    """
    hashes = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            # float64 whatever the column's type (a float32 0.5 is 0.5); na_value: pandas 2 refuses a
            # nullable Int64 column with missing values without it; + 0.0 folds -0.0 into 0.0 (pandas 3's
            # hash_array folds it too, pandas 2's does not)
            arr = col.to_numpy(dtype="float64", na_value=np.nan) + 0.0
            arr[np.isnan(arr)] = _NA_NUMBER
            h = pd.util.hash_array(arr)  # no hash key: pandas applies it only to text (numbers hash the same)
        else:  # hash each distinct value once: the same numbers as hashing every row's text
            codes, uniques = pd.factorize(col)  # a missing value is code -1 (pandas' default since 1.5)
            text = np.array([*(str(u) for u in uniques), _NA_TEXT], dtype=object)  # object: "a\x00" stays "a\x00"
            # categorize=False: pandas 2 would factorize these texts as C strings, where the missing value's
            # "\x00NA" is "" and "a\x00" is "a"; they are distinct already
            h = pd.util.hash_array(text, hash_key=HASH_KEY, categorize=False)[codes]  # code -1 (missing) takes the last
        hashes[name] = h
    return combine_columns(hashes, len(frame))


def combine_columns(hashes: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """The row keys from each column's hashes: in name order, each mixed with its name's hash.

    The one place the rule lives; :mod:`retraining.ab.quickkeys` hashes the columns of a few
    JSON rows its own way and combines them here.
    """
    combined = np.zeros(rows, dtype=np.uint64)
    for name in sorted(hashes):
        combined = combined * np.uint64(1_000_003) ^ (hashes[name] ^ _name_hash(name))  # uint64 arrays wrap around silently
    return combined


@functools.lru_cache(maxsize=4096)
def _name_hash(name: str) -> np.uint64:
    """A column name's hash (cached: the server's log thread combines the same few names at every flush)."""
    return pd.util.hash_array(np.array([name], dtype=object), hash_key=HASH_KEY)[0]
