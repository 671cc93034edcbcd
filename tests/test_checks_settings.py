"""The check settings' newer parts (the monitor's object, slice columns, a graded severity) and a
ledger with no rows: the mutants mutmut left alive in ``retraining/guard/findings.py`` and
``ledger.py`` (bench/MUTATION.md). Expected values are written by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining.data.dataset import Dataset
from retraining.errors import UsageError
from retraining.guard.findings import BLOCK, WARN, CheckSettings, Finding, apply_severity
from retraining.guard.ledger import Ledger, make_ledger, split_rows


def test_the_monitors_settings_are_an_object_not_a_number():
    assert CheckSettings.from_json({"monitor": {"min_per_class": 50}}).monitor == {"min_per_class": 50}
    with pytest.raises(UsageError) as bad:
        CheckSettings.from_json({"monitor": {}, "label_effect": "x"})
    assert str(bad.value) == "check settings: label_effect must be a finite number >= 0."  # monitor is not named


@pytest.mark.parametrize("value", ["region", [""], [1], ["region", None], {"region": 1}])
def test_slice_columns_must_be_a_list_of_names(value):
    with pytest.raises(UsageError) as bad:
        CheckSettings.from_json({"slice_columns": value}, "settings.json")
    assert str(bad.value) == 'settings.json: slice_columns must be a list of column names, e.g. {"slice_columns": ["region"]}.'


def test_slice_columns_as_a_list_of_names_are_kept():
    assert CheckSettings.from_json({"slice_columns": ["region", "channel"]}).slice_columns == ["region", "channel"]
    assert CheckSettings.from_json({"slice_columns": []}).slice_columns == []


@pytest.mark.parametrize(
    ("user", "own", "expected"),
    [
        (None, BLOCK, BLOCK),  # at its default severity the check grades itself
        (None, WARN, WARN),
        ("warn", BLOCK, BLOCK),  # "warn" is its default: still graded
        ("block", WARN, BLOCK),  # the user's stricter choice wins
    ],
)
def test_a_graded_check_keeps_its_own_severity_unless_the_user_chose_another(user, own, expected):
    s = CheckSettings.from_json({"severity": {"multivariate_drift": user}} if user else {})
    found = apply_severity([Finding("multivariate_drift", own, ["x"], {}, "m")], s, BLOCK)
    assert [f.severity for f in found] == [expected]


def test_a_previous_ledger_without_rows_makes_every_row_new_and_repeats_nothing():
    keys = np.array([5, 5, 9], np.uint64)
    key = {"method": "features", "columns": ["x"]}
    ds = Dataset("memory", "0" * 64, None, np.zeros(3, int), [], np.zeros(3, bool), "1", split={"key": key}, keys=keys)
    empty = Ledger("v1.0.0", np.zeros(0, np.uint64), np.zeros(0, np.uint64), key)
    rows = split_rows(ds, empty)
    assert rows.new.tolist() == [True, True, True] and rows.resent.tolist() == [False, False, False]
    assert rows.usual_repeats == 0.0 and rows.counts == {"total": 3, "new": 3, "seen": 0, "gone": 0, "resent": 0}


def _timed(times: np.ndarray, split: dict) -> Dataset:
    n = len(times)
    holdout = np.r_[np.zeros(n - 1, bool), True]  # the last row held out
    return Dataset("memory", "0" * 64, None, np.zeros(n, int), [], holdout, "1", split=split, keys=np.arange(n, dtype=np.uint64), times=times)


def test_a_ledger_made_with_a_time_column_keeps_its_kind_and_latest_time():
    ns = np.array([1_700_000_000_123_456_789, 1_600_000_000_000_000_001], np.int64)  # datetimes: int64 ns, not exact as floats
    dated = make_ledger("v1.0.0", _timed(ns, {"key": {"method": "id", "column": "cid"}}))
    assert (dated.time_kind, dated.max_time, type(dated.max_time)) == ("datetime", 1_700_000_000_123_456_789, int)
    assert float(1_700_000_000_123_456_789) != 1_700_000_000_123_456_789
    assert (dated.train.tolist(), dated.holdout.tolist(), dated.key) == ([0], [1], {"method": "id", "column": "cid"})
    numbered = make_ledger("v1.0.0", _timed(np.array([2.5, 7.25]), {}))  # a number column; no key recorded
    assert (numbered.time_kind, numbered.max_time, numbered.key) == ("number", 7.25, {})


def test_a_ledger_records_how_its_keys_were_read_and_an_old_one_reads_without(tmp_path):
    import json

    from retraining.guard.ledger import keys_for, load_ledger, save_ledger

    ids = {"method": "id", "column": "cid"}
    ds = Dataset("memory", "0" * 64, None, np.zeros(2, int), [], np.array([False, True]), "1", split={"key": ids}, keys=np.array([3, 4], np.uint64))
    ledger = make_ledger("v1.0.0", ds)
    assert (ledger.ids, ledger.kinds, ledger.meta()["ids"], ledger.meta()["key_kinds"]) == ("text", {}, "text", {})
    content = {"method": "features", "columns": ["a"]}
    ds.split, ds.key_kinds = {"key": content}, {"a": "number"}
    by_content = make_ledger("v1.1.0", ds)
    assert (by_content.ids, by_content.kinds) == (None, {"a": "number"})
    save_ledger(by_content, tmp_path / "v1.1.0.npz")
    back = load_ledger(tmp_path / "v1.1.0.npz")
    assert (back.kinds, back.ids, back.key) == ({"a": "number"}, None, content)
    meta = {"format": 1, "version": "v0.9.0", "key": ids}  # written before kinds and ids were recorded
    raw = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", train=np.array([3], np.uint64), holdout=np.zeros(0, np.uint64), meta=raw)
    old = load_ledger(tmp_path / "old.npz")
    assert (old.kinds, old.ids) == ({}, None)
    parsed = Dataset("memory", "0" * 64, None, np.zeros(2, int), [], np.zeros(2, bool), "1", split={"key": ids}, keys=np.array([7, 8], np.uint64))
    assert keys_for(parsed, old).tolist() == [7, 8]  # no parsed ids kept: today's keys
    parsed.parsed_ids = pd.Series([42, 43])
    parsed_keys = pd.util.hash_array(np.array(["42", "43"], dtype=object), hash_key="catboost-retrain", categorize=False)  # keys.py's id key, as documented
    assert keys_for(parsed, old).tolist() == parsed_keys.tolist()  # an old id ledger: the keys of the parsed ids
    assert keys_for(parsed, ledger).tolist() == [7, 8]  # a ledger of ids as written
    assert keys_for(parsed, by_content).tolist() == [7, 8]  # a content key


def test_rows_are_matched_to_an_old_id_ledger_by_their_parsed_ids():
    """A ledger written before ids were read as text holds the keys of the parsed ids (42, not "00042")."""
    from retraining.guard.ledger import in_training

    ids = {"method": "id", "column": "cid"}
    legacy = pd.util.hash_array(np.array(["42", "43"], dtype=object), hash_key="catboost-retrain", categorize=False)
    ds = Dataset("memory", "0" * 64, None, np.zeros(2, int), [], np.zeros(2, bool), "1", split={"key": ids}, keys=np.array([7, 8], np.uint64))
    ds.parsed_ids = pd.Series([42, 43])
    old = Ledger("v0.9.0", np.sort(legacy), np.zeros(0, np.uint64), ids)  # no ids="text": written before
    assert split_rows(ds, old).new.tolist() == [False, False]
    assert in_training(ds, old).tolist() == [True, True]
