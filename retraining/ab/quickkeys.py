"""Ledger keys of a few JSON rows without a DataFrame: the numbers of the frame path, at a fraction of its cost.

serve.py's log thread keys the rows of each flush (:func:`retraining.ab.rowkeys.table_keys`),
often a handful of 1-row requests. The frame path (a pandas frame, each column read through
pandas, then :func:`retraining.data.keys.content_hashes`) costs milliseconds per call
whatever the number of rows, which a busy server pays several times a second on the CPU
its request threads need (bench/README.md, "Production log"). This path covers the values
JSON carries in the common cases and hashes them with the very pandas function the ledger
used (``pd.util.hash_array`` with the same key), once per flush for every number and once
per text never seen before; the keys are bit for bit those of the frame path
(tests/test_quick_keys.py compares the two on many kinds of rows).

Covered (anything else returns None and the caller takes the frame path):

- content keys: a ``number`` column of ints (below 2**53 in size), floats and nulls; a
  ``text`` column of text and nulls; a column of unrecorded kind (``auto``) of text and
  nulls, or of ints and floats (no NaN) and nulls;
- id keys of a ledger that recorded its ids as text: ints, and text whose first and last
  characters are printable ASCII (no surrounding spaces to strip).

It imports only :mod:`retraining.data.keys`, numpy and pandas.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from retraining.data.keys import _NA_NUMBER, _NA_TEXT, HASH_KEY, combine_columns

_EXACT_INT = 2.0**53  # beyond it an int has no exact float
_NONE, _INT, _FLOAT, _STR = type(None), int, float, str


class TextHashes:
    """``pd.util.hash_array`` of texts with the key's hash key, each distinct text hashed once (a bounded cache)."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, texts: list) -> np.ndarray:
        """The hashes of ``texts``; None stands for a missing value (``content_hashes``' text of one)."""
        distinct = set(texts)
        if None in distinct:
            distinct.discard(None)
            distinct.add(_NA_TEXT)
        with self._lock:
            values = {t: self._known[t] for t in distinct if t in self._known}
        missing = [t for t in distinct if t not in values]
        if missing:  # a text no encoding carries (a lone surrogate) raises here: the caller falls back
            hashed = pd.util.hash_array(np.array(missing, dtype=object), hash_key=HASH_KEY, categorize=False).tolist()
            values.update(zip(missing, hashed, strict=True))
            with self._lock:
                if len(self._known) + len(missing) > self.limit:
                    self._known.clear()
                self._known.update(zip(missing, hashed, strict=True))
        values[None] = values.get(_NA_TEXT)
        return np.fromiter(map(values.__getitem__, texts), np.uint64, count=len(texts))


TEXTS = TextHashes()


def quick_keys(method: str | None, columns: tuple[str, ...], kinds: dict[str, str], parsed_ids: bool, values: dict[str, list]) -> np.ndarray | None:
    """The row keys (uint64) of the rows whose key columns hold ``values`` (one list per column), or None if not covered.

    ``method``, ``columns``, ``kinds`` and ``parsed_ids`` are those of a
    :class:`retraining.ab.rowkeys.KeySpec`; a value of a column a row lacks is any object
    that is not a JSON scalar (the frame path then says which rows have no key).
    """
    if not columns or not len(values[columns[0]]):
        return None
    try:
        if method == "id" and not parsed_ids:
            return _id_keys(values[columns[0]])
        if method == "features":
            return _content_keys(columns, kinds, values)
    except (UnicodeError, ValueError, TypeError, OverflowError):  # a text no encoding carries: the frame path goes row by row
        return None
    return None


def _id_keys(ids: list) -> np.ndarray | None:
    """:func:`retraining.data.keys.id_hashes` of ints and of text that has no spaces to strip."""
    texts = []
    for v in ids:
        t = type(v)
        if t is _STR and v and " " < v[0] < "\x7f" and " " < v[-1] < "\x7f":
            texts.append(v)
        elif t is _INT and -_EXACT_INT < v < _EXACT_INT:
            texts.append(str(v))
        else:
            return None
    return TEXTS(texts)


def _content_keys(columns: tuple[str, ...], kinds: dict[str, str], values: dict[str, list]) -> np.ndarray | None:
    """:func:`retraining.data.keys.content_hashes` of the columns as the frame path reads them."""
    hashes: dict[str, np.ndarray] = {}
    numbers, texts = [], []
    for name in columns:
        how = _read_as(kinds.get(name, "auto"), values[name])
        if how is None:
            return None
        (numbers if how == "number" else texts).append(name)
    n = len(values[columns[0]])
    if texts:  # every text of every text column in one look-up
        hashed = TEXTS([v for name in texts for v in values[name]]).reshape(len(texts), n)
        hashes.update(zip(texts, hashed, strict=True))
    if numbers:
        arr = np.array([values[name] for name in numbers], dtype=np.float64) + 0.0  # None is NaN; + 0.0: -0.0 is 0.0
        inexact = np.abs(arr) >= _EXACT_INT  # an int this large is rare in a request: the frame path decides how it reads
        if inexact.any() and any(_INT in set(map(type, values[name])) for name, big in zip(numbers, inexact.any(axis=1), strict=True) if big):
            return None
        arr[np.isnan(arr)] = _NA_NUMBER
        hashed = pd.util.hash_array(arr.ravel()).reshape(len(numbers), n)  # elementwise: one call for all (no key: numbers)
        hashes.update(zip(numbers, hashed, strict=True))
    return combine_columns(hashes, n)


def _read_as(kind: str, column: list) -> str | None:
    """How the frame path reads a column of ``kind`` holding these values: "number", "text", or None (not covered)."""
    types = set(map(type, column))
    if not types <= {_NONE, _INT, _FLOAT, _STR}:  # bool, a list, an object, a row without the column
        return None
    if kind == "text" or (kind == "auto" and types <= {_NONE, _STR}):
        return "text" if types <= {_NONE, _STR} else None
    if kind not in ("number", "auto") or _STR in types:
        return None
    if kind == "auto" and any(v != v for v in column if type(v) is _FLOAT):  # NaN: the frame path's reading depends on the rest
        return None
    return "number"
