"""The quick ledger keys of serve.py's log thread (#20) are the frame path's keys, bit for bit.

:func:`retraining.ab.quickkeys.quick_keys` keys a few JSON rows without a DataFrame; the
reference is the frame path (:func:`retraining.ab.rowkeys.frame_keys` over the frame
``table_keys`` builds, and the ledger's own :func:`retraining.data.keys.content_hashes` of
a training frame). Every comparison also checks that the quick path answered (not None),
so that a test cannot pass by falling back.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from retraining.ab.quickkeys import TextHashes, quick_keys
from retraining.ab.rowkeys import _ABSENT, KeySpec, frame_keys, table_keys
from retraining.data.keys import HASH_KEY, content_hashes, id_hashes
from retraining.serving.inputs import Table, decode

INTS = [0, 1, -1, 7, 42, -5000, 2**31, 2**53 - 1, -(2**53) + 1]
FLOATS = [0.0, -0.0, 1.0, 0.1, -2.5, 1e300, -1e-300, 42.0, math.nan, math.inf, -math.inf]
TEXTS = ["", "a", "007", "42", "Ünïcode €", "with space", " padded ", "nan", "None", "\x00NA", "tab\tin", "日本"]
OTHER = [True, False, [1], {"a": 1}, 2**53, -(2**60), 2**70, _ABSENT]  # outside the quick path: it must say None


def by_frame(spec: KeySpec, values: dict) -> tuple[np.ndarray, np.ndarray]:
    """The frame path, as table_keys took it for every group before the quick path."""
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in values.items()}, columns=list(spec.columns))
    return frame_keys(spec, frame)


def quick(spec: KeySpec, values: dict):
    return quick_keys(spec.method, spec.columns, dict(spec.kinds), spec.parsed_ids, values)


def column(rng: random.Random, pool: list, n: int) -> list:
    return [rng.choice(pool) for _ in range(n)]


@pytest.mark.parametrize("seed", range(3))
def test_content_keys_match_the_frame_path_on_many_kinds_of_rows(seed):
    """Random columns of ints, floats (-0.0, NaN, inf), text, nulls and mixtures, under each kind a ledger records."""
    rng = random.Random(seed)
    pools = {
        "ints": [*INTS, None],
        "floats": [*FLOATS, None],
        "numbers": [*INTS, *FLOATS, None],
        "text": [*TEXTS, None],
        "nulls": [None],
        "mixed": [*INTS, *TEXTS, None],
        "other": [*INTS, *TEXTS, *OTHER],
    }
    answered = {"number": set(), "text": set(), "auto": set()}
    for trial in range(150):
        n = rng.choice([1, 1, 2, 5, 40])
        names = rng.sample(["a", "b", "c", "d", "e", "zz", "Ä"], rng.randint(1, 5))
        kinds = {name: rng.choice(["number", "text", "auto"]) for name in names}
        drawn = {name: rng.choice(list(pools)) for name in names}
        values = {name: column(rng, pools[drawn[name]], n) for name in names}
        spec = KeySpec("v", "features", tuple(names), tuple(kinds.items()))
        got = quick(spec, values)
        if got is None:
            continue
        keys, known = by_frame(spec, values)
        assert known.all(), (trial, values)
        assert got.dtype == np.uint64 and got.tolist() == keys.tolist(), (trial, kinds, values)
        for name in names:
            answered[kinds[name]].add(drawn[name])
    # the quick path took every case it is meant to cover (and so the comparison above ran on them)
    assert answered["number"] >= {"ints", "floats", "numbers", "nulls"}
    assert answered["text"] >= {"text", "nulls"}
    assert answered["auto"] >= {"ints", "text", "nulls"}


@pytest.mark.parametrize("value", [*OTHER[:4], 2**53, 2**70])
def test_values_outside_the_quick_path_fall_back_to_the_frame(value):
    """A bool, a list, an object or a huge int: None, and table_keys gives the frame path's answer."""
    spec = KeySpec("v", "features", ("n", "t"), (("n", "number"), ("t", "text")))
    for values in ({"n": [1, value], "t": ["x", "y"]}, {"n": [1, 2], "t": ["x", value]}):
        assert quick(spec, values) is None
        sent = Table(columns=["n", "t"], data=[[values["n"][i], values["t"][i]] for i in range(2)])
        keys, known = table_keys(spec, [sent])
        expected, expected_known = by_frame(spec, values)
        assert keys.tolist() == expected.tolist() and known.tolist() == expected_known.tolist()


def test_auto_columns_with_nan_or_a_mixture_fall_back():
    """Under a kind the ledger does not record, NaN or numbers beside text read by the whole column: the frame decides."""
    spec = KeySpec("v", "features", ("x",), (("x", "auto"),))
    assert quick(spec, {"x": [1.0, math.nan]}) is None
    assert quick(spec, {"x": [1, "a"]}) is None
    assert quick(spec, {"x": [1, None]}) is not None and quick(spec, {"x": ["a", None]}) is not None


def test_json_rows_get_the_keys_training_stored_for_the_same_rows():
    """The ledger's keys (content_hashes of the training frame: categorical, ints, floats with -0.0 and NaN, text with gaps)."""
    frame = pd.DataFrame(
        {
            "job": pd.Categorical(["admin.", "technician", "admin.", None, "services"]),
            "age": [30, 41, 58, 23, 30],
            "balance": [0.0, -0.0, np.nan, 12.5, -3.25],
            "city": ["Lyon", None, "Köln", "Lyon", ""],
            "day": [1.0, 2.0, 3.0, np.nan, 5.0],
        }
    )
    ledger = content_hashes(frame)
    kinds = {"job": "text", "age": "number", "balance": "number", "city": "text", "day": "number"}
    spec = KeySpec("v", "features", tuple(sorted(kinds)), tuple(sorted(kinds.items())))
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]
    records[1]["balance"] = -0.0  # JSON carries -0.0
    split = {"dataframe_split": {"columns": list(frame.columns), "data": [list(r.values()) for r in records[3:]]}}
    requests = [*(decode(json.dumps([r]).encode()) for r in records[:3]), decode(json.dumps(split).encode())]
    keys, known = table_keys(spec, requests)
    assert known.all() and keys.tolist() == ledger.tolist()
    assert quick(spec, {name: [r[name] for r in records] for name in spec.columns}) is not None  # the quick path gave them


def test_id_keys_match_the_frame_path_and_the_ledger():
    """Ints and plain text ids take the quick path; spaces to strip, floats and legacy ledgers fall back; all agree."""
    spec = KeySpec("v", "id", ("id",))
    ids = [42, "00042", "abc-1", 0, -7, "x"]
    got = quick(spec, {"id": ids})
    assert got is not None
    assert got.tolist() == by_frame(spec, {"id": ids})[0].tolist()
    assert got.tolist() == id_hashes(pd.Series(["42", "00042", "abc-1", "0", "-7", "x"])).tolist()  # the ledger's id keys
    for odd in (" 42", "42 ", "", 42.0, True, None, "é"):
        assert quick(spec, {"id": [1, odd]}) is None
        keys, known = table_keys(spec, [Table(columns=["id"], data=[[1], [odd]])])
        expected, expected_known = by_frame(spec, {"id": [1, odd]})
        assert keys.tolist() == expected.tolist() and known.tolist() == expected_known.tolist()
    legacy = KeySpec("v", "id", ("id",), parsed_ids=True)
    assert quick(legacy, {"id": ["00042"]}) is None


def test_a_text_no_encoding_carries_falls_back_row_by_row():
    """A lone surrogate cannot be hashed: the quick path says None, the frame path leaves that row unkeyed."""
    spec = KeySpec("v", "features", ("t",), (("t", "text"),))
    values = {"t": ["ok", "\ud800"]}
    assert quick(spec, values) is None
    keys, known = table_keys(spec, [Table(records=[{"t": "ok"}, {"t": "\ud800"}])])
    assert known.tolist() == [True, False] and keys[0] == by_frame(spec, {"t": ["ok"]})[0][0]


def test_rows_are_gathered_from_records_and_split_tables_in_order():
    """Records, dataframe_split with the columns in another order, a name sent twice, a row without a key column."""
    spec = KeySpec("v", "features", ("n", "t"), (("n", "number"), ("t", "text")))
    tables = [
        Table(records=[{"t": "a", "n": 1}, {"n": 2.5, "t": None}]),
        Table(columns=["t", "x", "n", "n"], data=[["b", 0, 3, 99], ["c", 0, -0.0, 99]]),  # the first "n" counts, as Table.column reads it
    ]
    keys, known = table_keys(spec, tables)
    expected, _ = by_frame(spec, {"n": [1, 2.5, 3, 0.0], "t": ["a", None, "b", "c"]})
    assert known.all() and keys.tolist() == expected.tolist()
    keys, known = table_keys(spec, [*tables, Table(records=[{"n": 5}])])  # lacks "t": no key for that row, the others keep theirs
    assert known.tolist() == [True, True, True, True, False] and keys[:4].tolist() == expected.tolist()


def test_the_text_cache_stays_bounded_and_right():
    """Past its limit the cache starts over; every answer is still pandas' hash of the text."""
    hashes = TextHashes(limit=5)
    for start in range(0, 30, 3):
        texts = [f"t{i}" for i in range(start, start + 4)] + ["t0"]
        expected = pd.util.hash_array(np.array(texts, dtype=object), hash_key=HASH_KEY, categorize=False)
        assert hashes(texts).tolist() == expected.tolist()
        assert len(hashes._known) <= 5 + 4
