"""The per-column checks (value_checks) at their edges: what counts as missing, which profile
a column is judged against, the missing-share test's arithmetic, the range's bounds, the
never-seen categories' list.

Written for the mutants mutmut left alive in ``retraining/guard/checks.py`` (bench/MUTATION.md).
Every expected value is written by hand or computed here by a formula (scipy's normal tail
for the one-sided test), never by the function under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from retraining.data.dataset import MISSING_CATEGORY
from retraining.guard.checks import _missing_jump, value_checks
from retraining.guard.findings import CheckSettings

DEFAULTS = CheckSettings()
NUM = {"kind": "numeric", "missing": 0.0, "q01": 0.0, "q99": 1.0, "min": -0.1, "max": 1.1, "outside": 0.0}
CAT = {"kind": "categorical", "missing": 0.0, "known": ["red", "green"]}


def _values(n_inside: int, *, below: int = 0, above: int = 0, missing: int = 0, at_low: int = 0, at_high: int = 0) -> np.ndarray:
    return np.r_[np.linspace(0.1, 0.9, n_inside), np.full(below, -5.0), np.full(above, 5.0), np.full(missing, np.nan), np.zeros(at_low), np.ones(at_high)]


def _names(found) -> list[tuple[str, list[str]]]:
    return [(f.name, f.columns) for f in found]


# -- what is missing ---------------------------------------------------------------------------
def test_an_empty_column_word_for_word_numeric_or_categorical():
    X = pd.DataFrame({"x": np.full(100, np.nan), "c": [MISSING_CATEGORY] * 100})  # exactly min_column_rows
    assert [f.to_json() for f in value_checks(X, ["c"], {"x": NUM, "c": CAT}, DEFAULTS)] == [
        {"name": "all_missing", "severity": "block", "columns": ["x"], "numbers": {"rows": 100}, "message": "column 'x' is empty in all 100 rows"},
        {"name": "all_missing", "severity": "block", "columns": ["c"], "numbers": {"rows": 100}, "message": "column 'c' is empty in all 100 rows"},
    ]


def test_an_empty_column_is_judged_against_what_training_had():
    empty = pd.DataFrame({"x": np.full(100, np.nan)})
    assert _names(value_checks(empty, [], {}, DEFAULTS)) == [("all_missing", ["x"])]  # not in the profile: it had values
    assert _names(value_checks(empty, [], {"x": {"kind": "numeric"}}, DEFAULTS)) == [("all_missing", ["x"])]  # no missing share recorded
    assert value_checks(empty, [], {"x": {**NUM, "missing": 1.0}}, DEFAULTS) == []  # empty in training too


def test_an_infinity_is_not_missing_and_a_missing_value_stays_missing():
    """300 of 1,000 rows missing, 100 more infinite (NaN in X, listed in ``infinite``): 30 % missing, not 40 % nor 10 %."""
    values = _values(600, missing=400)
    infinite = np.r_[np.zeros(900, bool), np.ones(100, bool)]  # the last 100 of the NaN rows were +-inf
    found = value_checks(pd.DataFrame({"x": values}), [], {"x": NUM}, DEFAULTS, {"x": infinite})
    assert _names(found) == [("missing_rate", ["x"])] and found[0].numbers["missing_share"] == 0.3
    few = np.r_[np.zeros(990, bool), np.ones(10, bool)]  # 10 infinite rows, no missing ones
    assert value_checks(pd.DataFrame({"x": np.r_[_values(990), np.full(10, np.nan)]}), [], {"x": NUM}, DEFAULTS, {"x": few}) == []


@pytest.mark.parametrize(
    ("first", "first_ref", "first_finding"),
    [
        (np.full(200, np.nan), {}, "all_missing"),  # empty
        (np.linspace(0.1, 0.9, 200), None, None),  # not in the profile
        (np.linspace(0.1, 0.9, 200), {"kind": "categorical", "missing": 0.0}, "kind_changed"),
    ],
)
def test_a_column_that_is_done_with_early_does_not_stop_the_next(first, first_ref, first_finding):
    X = pd.DataFrame({"a": first, "b": _values(100, above=100)})  # b: half out of range
    ref = {"b": NUM} if first_ref is None else {"a": {**NUM, **first_ref}, "b": NUM}
    expected = ([(first_finding, ["a"])] if first_finding else []) + [("out_of_range", ["b"])]
    assert _names(value_checks(X, [], ref, DEFAULTS)) == expected


def test_numbers_held_as_python_objects_are_judged_by_value():
    X = pd.DataFrame({"x": pd.Series(list(_values(100, above=100)), dtype=object)})
    assert _names(value_checks(X, [], {"x": NUM}, DEFAULTS)) == [("out_of_range", ["x"])]


# -- the missing-share test --------------------------------------------------------------------
def test_the_missing_share_jump_at_exactly_its_threshold_and_100_rows():
    """25 of 100 rows missing against none in training: +0.25, exactly the threshold set here."""
    found = value_checks(pd.DataFrame({"x": _values(75, missing=25)}), [], {"x": NUM}, CheckSettings(missing_jump=0.25))
    assert _names(found) == [("missing_rate", ["x"])]


@pytest.mark.parametrize(("p_threshold", "flagged"), [(2e-5, True), (1e-5, False)])
def test_the_missing_share_p_value_is_the_one_sided_normal_tail(p_threshold, flagged):
    """Training 50 % missing, today 71 % of 100 rows: se = sqrt(0.25 / 100) = 0.05, z = 0.21 / 0.05 = 4.2, p = 1.33e-5."""
    p = norm.sf(0.21 / math.sqrt(0.5 * 0.5 / 100))
    assert 1e-5 < p < 2e-5 < 3 * p  # so the threshold tells this p from a tail 3 times as large
    settings = CheckSettings(missing_p_value=p_threshold)
    assert bool(_missing_jump("x", np.r_[np.ones(71, bool), np.zeros(29, bool)], 0.5, settings)) == flagged


def test_a_p_value_that_underflows_to_0_is_not_below_a_threshold_of_0():
    missing = np.r_[np.ones(30, bool), np.zeros(70, bool)]  # 30 % against 0 %: z = 0.3 / sqrt(1e-6 / 100) = 3,000
    assert _missing_jump("x", missing, 0.0, CheckSettings(missing_p_value=0.0)) == []
    assert _names(_missing_jump("x", missing, 0.0, DEFAULTS)) == [("missing_rate", ["x"])]


def test_no_rows_no_missing_share():
    assert _missing_jump("x", np.zeros(0, bool), 0.0, CheckSettings(min_column_rows=0)) == []


def test_missing_share_numbers_keep_4_digits():
    """33 of 113 rows missing (0.292035) against 0.012345 in training."""
    found = value_checks(pd.DataFrame({"x": _values(80, missing=33)}), [], {"x": {**NUM, "missing": 0.012345}}, DEFAULTS)
    assert found[0].numbers == {"missing_share": 0.292, "training_missing_share": 0.0123, "rows": 113}
    assert round(33 / 113, 4) != round(33 / 113, 5) and round(0.012345, 4) != round(0.012345, 5)


# -- the range -------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["at_low", "at_high"])
def test_a_value_on_the_training_percentile_is_inside(side):
    assert value_checks(pd.DataFrame({"x": _values(70, **{side: 30})}), [], {"x": NUM}, DEFAULTS) == []


def test_the_range_share_at_exactly_its_threshold_with_100_values():
    """25 of 100 values outside, none in training, threshold 0.25: reached."""
    found = value_checks(pd.DataFrame({"x": _values(75, above=25)}), [], {"x": NUM}, CheckSettings(range_share=0.25))
    assert _names(found) == [("out_of_range", ["x"])]


def test_the_training_share_outside_is_the_profiles_own():
    """11 % outside today: 11 points over a profile that had none outside, 9 over the 2 % assumed for an old one."""
    frame = pd.DataFrame({"x": _values(89, above=11)})
    assert _names(value_checks(frame, [], {"x": NUM}, DEFAULTS)) == [("out_of_range", ["x"])]
    old = {k: v for k, v in NUM.items() if k != "outside"}
    assert value_checks(frame, [], {"x": old}, DEFAULTS) == []


def test_range_numbers_keep_4_digits():
    """17 of 113 values outside (0.150442) against 0.012345 in training."""
    frame = pd.DataFrame({"x": _values(96, below=17)})
    f = value_checks(frame, [], {"x": {**NUM, "outside": 0.012345}}, DEFAULTS)[0]
    assert (f.numbers["share_outside"], f.numbers["training_share_outside"]) == (0.1504, 0.0123)
    assert round(17 / 113, 4) != round(17 / 113, 5)


# -- never-seen categories -------------------------------------------------------------------------
def _cats(n: int, unseen: dict[str, int]) -> pd.DataFrame:
    values = [v for v, k in unseen.items() for _ in range(k)]
    return pd.DataFrame({"c": ["red"] * (n - len(values)) + values})


def test_never_seen_categories_need_a_complete_profile_and_100_rows():
    frame = _cats(1000, {"teal": 100})
    assert value_checks(frame, ["c"], {"c": {"kind": "categorical", "missing": 0.0, "categories": {"red": 1.0}, "complete": False}}, DEFAULTS) == []
    assert _names(value_checks(_cats(100, {"teal": 10}), ["c"], {"c": CAT}, DEFAULTS)) == [("new_categories", ["c"])]  # exactly 100 rows


def test_no_never_seen_category_is_no_finding_whatever_the_thresholds():
    lax = CheckSettings(new_category_share=0.0, new_category_rows=1)
    assert value_checks(_cats(200, {}), ["c"], {"c": CAT}, lax) == []
    assert _names(value_checks(_cats(200, {"teal": 1}), ["c"], {"c": CAT}, lax)) == [("new_categories", ["c"])]


@pytest.mark.parametrize(("kinds", "more"), [(2, ""), (5, ""), (6, " and 1 more")])
def test_more_than_five_never_seen_categories_are_counted_not_listed(kinds, more):
    unseen = {"teal": 20, **{f"k{i}": 1 for i in range(kinds - 1)}}
    f = value_checks(_cats(1000, unseen), ["c"], {"c": CAT}, DEFAULTS)[0]
    shown = ", ".join([f"'{k}' ({v})" for k, v in unseen.items()][:5])
    share = sum(unseen.values()) / 1000
    assert f.message == f"{share:.0%} of rows have never-seen categories in 'c': {shown}{more} (renamed?)"


def test_never_seen_category_numbers_keep_4_digits_and_20_categories():
    unseen = {"teal": 20, **{f"k{i:02d}": 1 for i in range(24)}}  # 44 of 1,013 rows: 0.043435; 25 categories
    f = value_checks(_cats(1013, unseen), ["c"], {"c": CAT}, DEFAULTS)[0]
    assert f.numbers["share"] == 0.0434 and round(44 / 1013, 4) != round(44 / 1013, 5)
    assert f.numbers["rows"] == 44 and len(f.numbers["categories"]) == 20 and next(iter(f.numbers["categories"].items())) == ("teal", 20)
