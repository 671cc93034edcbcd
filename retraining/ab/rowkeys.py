"""The ledger key of each logged prediction: the row key its version's training gave the same row.

Every line of the prediction log carries ``key`` (docs/ab-testing.md): the row key
(:func:`retraining.data.keys.row_keys`) that the training of the line's version gave the
same row. ``ab_test.py analyze`` then leaves out the rows a model trained on whether the
version was trained with ``--id-column`` (the id key) or without (the content key over its
key columns), by looking the key up in that version's ledger.

A :class:`KeySpec` comes from the version's ledger (:class:`KeyBook` reads and keeps it):
the method, the key columns and how training read each column (``number``, ``bool``,
``datetime`` or ``text``: :func:`retraining.data.keys.key_kinds`). The values of a row are
read the same way, whoever sent them: a number column takes numbers (or a number's text),
a text column takes text (a number or true/false sent for it is its text), a bool column
true/false (or their text); null is a missing value. The typed values then go through the
very function training used (:func:`~retraining.data.keys.content_hashes` or
:func:`~retraining.data.keys.id_hashes`).

A row's key cannot be computed when the version has no ledger (made before ledgers), the
row lacks one of the key columns, or a value is one training could not have read (an
object in a number column, a missing id): its line says ``"key":null``, and the analysis
says why (:attr:`KeySpec.why`, :func:`missing_columns`).

Ids: a ledger records that its ids were keyed by their text as written ("00042" stays
"00042"; ``ids: text``). A ledger written before holds the ids as the CSV reader parsed
them, so for it an id that is a number written as text is keyed as that number ("00042"
as 42, "42.0" as 42): the rule of :func:`retraining.guard.ledger.keys_for`.

Ledgers written before the kinds were recorded: a model feature's kind comes from the
version's schema (categorical: text, numeric: number), a column training dropped from the
features as "unique in every row, like an ID" is text and "a running row number" a number;
any other column (a constant one) is read by the type of the values sent (numbers as
numbers, anything else as text), which is what the CSV reader made of the same values.
"""

from __future__ import annotations

import logging
import math
import operator
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retraining.ab.quickkeys import quick_keys
from retraining.data.keys import content_hashes, id_hashes
from retraining.errors import RetrainError

log = logging.getLogger(__name__)
AUTO = "auto"  # a key column whose kind a legacy ledger does not tell: read by the values' own type
_ABSENT = object()  # a row of a request that lacks the column


@dataclass(frozen=True)
class KeySpec:
    """How one version keyed its rows; ``method`` None: no key can be computed, ``why`` says why."""

    version: str
    method: str | None  # "id" | "features" | None
    columns: tuple[str, ...] = ()
    kinds: tuple[tuple[str, str], ...] = ()
    why: str = ""
    parsed_ids: bool = False  # id keys of a ledger written before ids were read as text: numbers-as-text keyed as numbers

    def kind(self, column: str) -> str:
        return dict(self.kinds).get(column, AUTO)

    @property
    def rule(self) -> tuple:
        """What the keys depend on: two versions with one rule give a row the same key (computed once)."""
        return (self.method, self.columns, self.kinds, self.parsed_ids) if self.method else (None, self.version)


def spec_from(version: str, ledger, entry: dict | None) -> KeySpec:
    """The :class:`KeySpec` of ``version`` from its ledger (None: it has none) and its log entry."""
    if ledger is None:
        return KeySpec(version, None, why=f"{version} has no training ledger (made before ledgers, or it was deleted)")
    key = ledger.key or {}
    if key.get("method") == "id" and key.get("column"):
        return KeySpec(version, "id", (str(key["column"]),), parsed_ids=getattr(ledger, "ids", None) != "text")
    columns = tuple(str(c) for c in key.get("columns") or ())
    if key.get("method") != "features" or not columns:
        return KeySpec(version, None, why=f"the ledger of {version} does not say how its rows were keyed ({key or 'no key'})")
    kinds = dict(ledger.kinds) or _legacy_kinds(entry or {})
    return KeySpec(version, "features", columns, tuple((c, kinds.get(c, AUTO)) for c in columns))


def _legacy_kinds(entry: dict) -> dict[str, str]:
    """Kinds of a ledger that predates them: the schema's features, and the dropped columns by their reason."""
    from retraining.records import VersionEntry

    kinds = {}
    try:
        schema = VersionEntry.from_json(entry).feature_schema if entry else []
    except (TypeError, ValueError, KeyError):
        schema = []
    for name, kind in schema:
        kinds[name] = "text" if kind == "categorical" else "number"
    for name, reason in ((entry.get("dataset") or {}).get("dropped_columns") or {}).items():
        if str(reason).startswith("unique in every row"):
            kinds[name] = "text"
        elif str(reason).startswith("a running row number"):
            kinds[name] = "number"
    return kinds


class KeyBook:
    """The :class:`KeySpec` of each version of a registry, read once (a ledger never changes)."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self._specs: dict[str, KeySpec] = {}
        self._warned: set = set()
        self._lock = threading.Lock()

    def spec(self, version: str) -> KeySpec:
        with self._lock:
            if version not in self._specs:
                self._specs[version] = self._read(version)
            return self._specs[version]

    def _read(self, version: str) -> KeySpec:
        from retraining.guard.ledger import load_ledger

        try:
            ledger = load_ledger(self.registry.artifact_path("ledger", version))
            entry = None
            if ledger is not None and not ledger.kinds:
                entry = self.registry.full_entry(self.registry.read_log(), version)
        except RetrainError as exc:  # a damaged ledger or log: no keys for this version, and the line says so
            log.warning("%s: its row keys cannot be computed: %s", version, exc)
            return KeySpec(version, None, why=str(exc))
        return spec_from(version, ledger, entry)

    def warn_unkeyed(self, spec: KeySpec, names, known: np.ndarray) -> str | None:
        """Log (once per version and reason) why some rows got no key; the message, or None when all have one."""
        if len(known) == 0 or known.all():
            return None
        missing = missing_columns(spec, names)
        if spec.method is None:
            why = spec.why
        elif missing:
            why = f"the rows lack {', '.join(map(repr, missing[:8]))}, which its row key covers (send every column it trained on)"
        else:
            why = f"{int((~known).sum())} of {len(known)} rows hold a value its training could not have read in a key column (or no id)"
        message = f"{spec.version}: some predictions are logged without a row key: {why}; ab_test.py analyze cannot leave out its training rows for those"
        with self._lock:
            first = (spec.version, why if spec.method is None or missing else "values") not in self._warned
            self._warned.add((spec.version, why if spec.method is None or missing else "values"))
        if first:
            log.warning("%s", message)
        return message


def missing_columns(spec: KeySpec, names) -> list[str]:
    """The key columns of ``spec`` that ``names`` (the columns sent) lack."""
    present = set(names)
    return [c for c in spec.columns if c not in present]


def frame_keys(spec: KeySpec, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The ledger key of each row of ``frame`` (uint64) and whether it could be computed (bool)."""
    n = len(frame)
    if spec.method is None or missing_columns(spec, frame.columns):
        return np.zeros(n, np.uint64), np.zeros(n, bool)
    if spec.method == "id":
        typed, ok = _ids(frame[spec.columns[0]], spec.parsed_ids)
        hash_rows = id_hashes
    else:
        typed, ok = {}, np.ones(n, bool)
        for name in spec.columns:
            typed[name], good = read_column(frame[name], spec.kind(name))
            ok &= good
        typed, hash_rows = pd.DataFrame(typed, index=frame.index), content_hashes
    try:
        keys = np.asarray(hash_rows(typed), dtype=np.uint64).copy()
    except (UnicodeError, ValueError, TypeError, OverflowError):  # text no encoding carries (a lone surrogate): row by row
        keys = np.zeros(n, np.uint64)
        for i in range(n):
            try:
                keys[i] = hash_rows(typed.iloc[i : i + 1])[0]
            except (UnicodeError, ValueError, TypeError, OverflowError):
                ok[i] = False
    keys[~ok] = 0
    return keys, ok


def table_keys(spec: KeySpec, tables: list) -> tuple[np.ndarray, np.ndarray]:
    """:func:`frame_keys` of the rows of several requests (:class:`retraining.serving.inputs.Table`), in order.

    The common cases take :func:`retraining.ab.quickkeys.quick_keys` (the same keys without a
    frame: serve.py's log thread calls this for every flush); the rest the frame.
    """
    rows = _rows(tables, spec.columns)
    columns = {name: list(values) for name, values in zip(spec.columns, zip(*rows, strict=True), strict=True)} if rows else {n: [] for n in spec.columns}
    quick = quick_keys(spec.method, spec.columns, dict(spec.kinds), spec.parsed_ids, columns) if spec.method else None
    if quick is not None:
        return quick, np.ones(len(quick), bool)
    return frame_keys(spec, pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()}, columns=list(spec.columns)))


def columns_in_every_row(tables: list) -> set:
    """The columns every row of every request has (a column some rows lack is "lacked", for :meth:`KeyBook.warn_unkeyed`)."""
    sets = [set(t.columns) if t.records is None else set.intersection(*(set(r) for r in t.records)) for t in tables]
    return set.intersection(*sets) if sets else set()


def _rows(tables: list, names: tuple[str, ...]) -> list[tuple]:
    """The values of ``names`` in every row of ``tables``, row by row (``_ABSENT`` where a row lacks the column)."""
    rows: list[tuple] = []
    getters: dict[tuple, Callable] = {}  # one per distinct column list: requests of one client share it
    for t in tables:
        if t.records is not None:
            rows += [tuple(rec.get(n, _ABSENT) for n in names) for rec in t.records]
            continue
        columns = tuple(t.columns)
        get = getters.get(columns)
        if get is None:
            get = getters[columns] = _getter(columns, names)
        rows += map(get, t.data)
    return rows


def _getter(columns: tuple, names: tuple[str, ...]) -> Callable:
    """A function from a ``dataframe_split`` row to the values of ``names`` (a name sent twice: its first column, as Table.column reads)."""
    where: dict[str, int] = {}
    for i, name in enumerate(columns):
        where.setdefault(name, i)
    index = [where.get(n) for n in names]
    if None in index or len(index) < 2:
        return lambda row: tuple(_ABSENT if i is None else row[i] for i in index)
    return operator.itemgetter(*index)


def read_column(col: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray]:
    """``col`` as training read a column of ``kind`` (see the module docstring), and which rows could be read."""
    typed = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if kind == "number" and typed:
        return col.astype("float64"), np.ones(len(col), bool)
    if kind == AUTO and typed:
        return col.astype("float64"), np.ones(len(col), bool)
    fast = _as_read(col, kind)
    if fast is not None:
        return fast, np.ones(len(col), bool)
    read = {"number": _number, "bool": _bool, "datetime": _datetime, "text": _text}.get(kind)
    if read is None:  # AUTO, not all numbers: numbers as numbers only when every present value is one
        values = [v for v in col.tolist() if v is not None and v is not _ABSENT]
        read = _number if values and all(_is_number(v) for v in values) else _text
    out, ok = [], np.ones(len(col), bool)
    for i, v in enumerate(col.tolist()):
        try:
            out.append(read(v))
        except (TypeError, ValueError, OverflowError):
            out.append(None)
            ok[i] = False
    if read is _number:
        return pd.Series(np.array([math.nan if v is None else v for v in out], dtype="float64"), index=col.index), ok
    return pd.Series(out, index=col.index, dtype=object), ok


def _as_read(col: pd.Series, kind: str) -> pd.Series | None:
    """``col`` as it is when every value already has the type ``kind`` reads (the common case, no loop); None otherwise."""
    if kind == "text" and pd.api.types.is_string_dtype(col) and col.dtype != object:
        return col  # pandas' text dtype: text or missing, as the reader gave training
    inferred = pd.api.types.infer_dtype(col, skipna=True) if col.dtype == object else None
    if kind in ("text", AUTO) and inferred in ("string", "empty"):
        return col
    if kind == "bool" and (pd.api.types.is_bool_dtype(col) or inferred == "boolean"):
        return col
    if kind in ("number", AUTO) and inferred in ("integer", "floating", "mixed-integer-float"):
        try:
            return col.astype("float64")
        except (OverflowError, TypeError, ValueError):  # an integer beyond a float: value by value
            return None
    return None


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _missing(v) -> bool:
    if v is _ABSENT:
        raise ValueError("absent")
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and v != v)


def _number(v):
    if _missing(v):
        return None
    if _is_number(v):
        return float(v)
    if isinstance(v, str):
        return float(v.strip())
    raise TypeError(type(v).__name__)


def _text(v):
    if _missing(v):
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
        return str(v)
    raise TypeError(type(v).__name__)


def _bool(v):
    if _missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise TypeError(type(v).__name__)


def _datetime(v):
    if _missing(v):
        return None
    if isinstance(v, (str, pd.Timestamp, np.datetime64)):
        return pd.Timestamp(v)
    raise TypeError(type(v).__name__)


def _ids(col: pd.Series, parsed: bool = False) -> tuple[pd.Series, np.ndarray]:
    """Ids as training keyed them: every row needs one; a number or text (anything else has no key).

    ``parsed``: for a ledger written before ids were read as text, an id written as a number
    ("00042", "42.0") is that number, as the CSV reader parsed it then.
    """
    if col.dtype != object and not parsed:
        ok = col.notna().to_numpy()
        return col.where(ok, 0) if not ok.all() else col, ok
    values = col.tolist()
    ok = np.array([v is not _ABSENT and (isinstance(v, str) or _is_number(v)) and not _missing(v) for v in values], dtype=bool)
    values = [_as_parsed(v) if parsed or not isinstance(v, str) else v for v in values]  # 42.0 is the id "42" (keys.written_id_text)
    return pd.Series([v if good else "" for v, good in zip(values, ok, strict=True)], index=col.index, dtype=object), ok


_NUMBER_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _as_parsed(v):
    """An id as the CSV reader parsed it: a number written as text is the number (whole ones as integers)."""
    if isinstance(v, str) and _NUMBER_TEXT.match(v.strip()):
        f = float(v.strip())
        return int(f) if math.isfinite(f) and f == math.floor(f) and abs(f) < 2.0**63 else f
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and v == math.floor(v) and abs(v) < 2.0**63:
        return int(v)
    return v
