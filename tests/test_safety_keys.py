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
