"""The check settings' newer parts (the monitor's object, slice columns, a graded severity) and a
ledger with no rows: the mutants mutmut left alive in ``retraining/guard/findings.py`` and
``ledger.py`` (bench/MUTATION.md). Expected values are written by hand.
"""

from __future__ import annotations

import numpy as np
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
