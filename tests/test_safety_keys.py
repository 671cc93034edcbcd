"""Ids read as written (a CSV cell): the canonical text every writer shares (retraining/data/keys.py's
``written_id_text`` docstring), each case written out by hand."""

from __future__ import annotations

import pandas as pd

from retraining.data.keys import written_id_text


def test_an_id_as_written_keeps_its_zeros_and_drops_a_zero_fraction_and_spaces():
    cells = pd.Series(["00042", " 42.0 ", "42.00", "42.", "-7.0", "3.5", "4.05", "1e3", "abc", " x y ", "0.0", "10"])
    expected = ["00042", "42", "42", "42", "-7", "3.5", "4.05", "1e3", "abc", "x y", "0", "10"]
    assert written_id_text(cells).tolist() == expected


def test_numbers_read_as_numbers_give_the_same_text():
    assert written_id_text(pd.Series([42, 7])).tolist() == ["42", "7"]
    assert written_id_text(pd.Series([42.0, 3.5])).tolist() == ["42", "3.5"]


def test_each_key_column_is_recorded_with_how_it_was_read():
    import numpy as np

    from retraining.data.keys import key_kinds

    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "n": [1, 2, 3],
            "x": [0.5, np.nan, 2.0],
            "when": pd.to_datetime(["2026-01-01", "2026-01-02", None]),
            "word": ["a", "b", None],
            "obj_bool": pd.Series([True, None, np.False_], dtype=object),  # booleans with a gap, held as objects
            "mixed": pd.Series([True, "x", None], dtype=object),
            "empty": pd.Series([None, None, None], dtype=object),
        }
    )
    kinds = key_kinds(frame, list(frame.columns))
    assert kinds == {"flag": "bool", "n": "number", "x": "number", "when": "datetime", "word": "text", "obj_bool": "bool", "mixed": "text", "empty": "text"}
    assert key_kinds(frame, ["n"]) == {"n": "number"}


def test_whole_floats_read_as_integers_only_below_2_to_the_63():
    from retraining.data.keys import integral_floats_as_int

    assert str(integral_floats_as_int(pd.Series([42.0, -3.0])).dtype) == "Int64"
    assert integral_floats_as_int(pd.Series([2.0**63, 1.0])).dtype == "float64"  # no int64 holds 2**63
    assert integral_floats_as_int(pd.Series([-(2.0**63), 1.0])).dtype == "float64"
    below = 9_223_372_036_854_774_784.0  # the largest float under 2**63
    assert integral_floats_as_int(pd.Series([below])).tolist() == [9_223_372_036_854_774_784]
    assert integral_floats_as_int(pd.Series([1.5])).dtype == "float64"
