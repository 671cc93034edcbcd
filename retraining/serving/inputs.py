"""The request side of serve.py: JSON payloads -> rows a CatBoost model can score.

Accepted bodies (the first three are what ``mlflow models serve`` takes at /invocations)::

    {"dataframe_split": {"columns": ["x1", "c1"], "data": [[0.5, "red"], ...]}}
    {"dataframe_records": [{"x1": 0.5, "c1": "red"}, ...]}
    {"inputs": [{"x1": 0.5, ...}, ...]}   or   {"inputs": {"x1": [0.5, ...], "c1": [...]}}
    [{"x1": 0.5, "c1": "red"}, ...]        (plain JSON records; one object = one row)

Every problem becomes a :class:`BadRequest` with an HTTP status (400 bad JSON or shape,
413 too large, 422 the rows do not fit the model) and one line naming what is wrong and
where. Values are turned into what :func:`retraining.training.predict` would hand CatBoost:
numbers for numeric features (``null`` is a missing value, which CatBoost accepts unless the
model was trained with ``nan_mode=Forbidden``), text for categorical ones (numbers become
their text, ``null`` the category training used for missing values).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import orjson

from retraining.data.dataset import MISSING_CATEGORY

WRAPPERS = ("dataframe_split", "dataframe_records", "inputs", "instances")


class BadRequest(Exception):
    """A request the service refuses: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Table:
    """The rows of a request: ``records`` (dicts) or ``columns`` + ``data`` (lists)."""

    records: list | None = None
    columns: list | None = None
    data: list | None = None

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self.data)

    def names(self) -> set:
        """Every column name any row has."""
        if self.records is None:
            return set(self.columns)
        names: set = set()
        for rec in self.records:
            names.update(rec)
        return names

    def column(self, name: str, what: str) -> list:
        """One column's values; :class:`BadRequest` naming the first row without it."""
        if self.records is None:
            if name not in self.columns:
                raise BadRequest(422, f"no {what} column {name!r} in the request (columns: {_show(self.columns)}).")
            i = self.columns.index(name)
            return [row[i] for row in self.data]
        try:
            return [rec[name] for rec in self.records]
        except KeyError:
            first = next(n for n, rec in enumerate(self.records, start=1) if name not in rec)
            raise BadRequest(422, f"row {first} has no {what} column {name!r}.") from None

    def take(self, index: list[int]) -> Table:
        if self.records is not None:
            return Table(records=[self.records[i] for i in index])
        return Table(columns=self.columns, data=[self.data[i] for i in index])


def decode(body: bytes) -> Table:
    """Parse a request body into a :class:`Table`; :class:`BadRequest` (400) if it is not one."""
    if not body.strip():
        raise BadRequest(400, 'empty body: send JSON rows, e.g. [{"feature": 1.5, ...}] or {"dataframe_split": ...}.')
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        payload = _lenient(body, exc)  # NaN and Infinity, which Python's json writes
    if isinstance(payload, dict):
        keys = [k for k in WRAPPERS if k in payload]
        if len(keys) > 1:
            raise BadRequest(400, f"the body has both {keys[0]!r} and {keys[1]!r}; send one.")
        if keys:
            return _unwrap(keys[0], payload[keys[0]])
        return _records([payload], "the body")
    if isinstance(payload, list):
        return _records(payload, "the body")
    raise BadRequest(400, f"the body is a JSON {type(payload).__name__}; send a list of row objects or an MLflow payload (dataframe_split, dataframe_records).")


def _lenient(body: bytes, error: Exception):
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested deeper than Python's json goes
        raise BadRequest(400, f"malformed JSON: {str(error).splitlines()[0]}.") from None
    try:  # Python's json lets through what orjson refuses: lone UTF-16 surrogates ("\ud800"), which no text can carry, and deep nesting
        orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:
        if "surrogate" in str(exc):
            raise BadRequest(400, "the body has a lone UTF-16 surrogate (such as \\ud800), which is not text; send valid Unicode.") from None
        raise BadRequest(400, f"malformed JSON: {str(exc).splitlines()[0]}.") from None
    return payload


def _unwrap(key: str, value) -> Table:
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or not isinstance(value.get("data"), list):
            raise BadRequest(400, 'dataframe_split needs {"columns": [names], "data": [[values], ...]}.')
        columns, data = value["columns"], value["data"]
        if not all(isinstance(c, str) for c in columns):
            raise BadRequest(400, "dataframe_split: every column name must be a string.")
        width = len(columns)
        for n, row in enumerate(data, start=1):
            if not isinstance(row, list) or len(row) != width:
                raise BadRequest(400, f"dataframe_split: row {n} is not a list of {width} values (one per column).")
        if not data:
            raise BadRequest(400, "dataframe_split: no rows in 'data'.")
        return Table(columns=columns, data=data)
    if isinstance(value, dict):  # {"inputs": {"col": [values], ...}}
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise BadRequest(400, f"{key}: as columns, every value must be a list, all of one length.")
        columns = list(value)
        return _unwrap("dataframe_split", {"columns": columns, "data": [list(r) for r in zip(*value.values(), strict=True)]})
    return _records(value, key)


def _records(value, where: str) -> Table:
    if not isinstance(value, list) or not value:
        raise BadRequest(400, f"{where}: expected a non-empty list of row objects.")
    for n, rec in enumerate(value, start=1):
        if not isinstance(rec, dict):
            raise BadRequest(400, f"{where}: row {n} is a JSON {type(rec).__name__}, not an object of column: value.")
    return Table(records=value)


def rows_for(table: Table, features: tuple[str, ...], cat_indices: frozenset[int], nan_ok: bool) -> list[list]:
    """The model's feature values of every row, in the model's order, checked and converted."""
    if table.records is not None:
        try:
            rows = [[rec[f] for f in features] for rec in table.records]
        except KeyError:
            raise BadRequest(422, _missing_records(table.records, features)) from None
    else:
        where = {c: i for i, c in enumerate(table.columns)}
        missing = [f for f in features if f not in where]
        if missing:
            raise BadRequest(422, f"missing feature columns: {_show(missing)} (the model needs {_show(features)}).")
        idx = [where[f] for f in features]
        rows = [[row[i] for i in idx] for row in table.data]
    for i, name in enumerate(features):
        if i in cat_indices:
            _categorical(rows, i, name)
        else:
            _numeric(rows, i, name, nan_ok)
    return rows


def _missing_records(records: list, features: tuple[str, ...]) -> str:
    missing = [f for f in features if any(f not in rec for rec in records)]
    first = next(n for n, rec in enumerate(records, start=1) if missing[0] not in rec)
    return f"missing feature columns: {_show(missing)} (first in row {first}; the model needs {_show(features)})."


def _numeric(rows: list, i: int, name: str, nan_ok: bool) -> None:
    for n, row in enumerate(rows, start=1):
        v = row[i]
        t = type(v)
        if t is float:
            if v != v and not nan_ok:
                raise BadRequest(422, f"row {n}: {name} is NaN, and this model was trained with nan_mode=Forbidden; send a number.")
        elif t is int:
            continue
        elif v is None:
            if not nan_ok:
                raise BadRequest(422, f"row {n}: {name} is null, and this model was trained with nan_mode=Forbidden; send a number.")
            row[i] = math.nan
        else:
            raise BadRequest(422, f"row {n}: {name} must be a number (or null), not {_value(v)}.")


def _categorical(rows: list, i: int, name: str) -> None:
    for n, row in enumerate(rows, start=1):
        v = row[i]
        t = type(v)
        if t is str:
            continue
        if v is None or (t is float and v != v):
            row[i] = MISSING_CATEGORY
        elif t in (int, float, bool):
            row[i] = str(v)  # what pandas' astype(str) makes of it when training.predict scores a frame
        else:
            raise BadRequest(422, f"row {n}: {name} is categorical: send text, a number or null, not {_value(v)}.")


def _value(v) -> str:
    kind = {dict: "an object", list: "a list", bool: "true/false", str: "text"}.get(type(v), type(v).__name__)
    return f"{kind} {_short(v)}"


def _short(v) -> str:
    text = orjson.dumps(v).decode() if not isinstance(v, float) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _show(names) -> str:
    names = list(names)
    shown = ", ".join(map(str, names[:10]))
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
