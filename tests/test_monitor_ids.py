"""The monitor's fast roads for outcome ids (retraining/monitoring/ids.py) give what the plain pandas expressions give.

Each expected value comes from the plain expression the function's docstring names
(pandas' ``duplicated`` on the stripped text, ``entity_hashes``, ``Index.get_indexer``),
over ids of every kind: integers, canonical and zero-padded decimal text, letters, long
ids, ids with spaces or a fraction, non-ASCII text, mixed objects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining.ab.predlog import entity_hashes
from retraining.monitoring import ids
from retraining.monitoring.analysis import hashes_of_ids, labels_of

RNG = np.random.default_rng(0)
KINDS = {
    "int": pd.Series(RNG.integers(0, 500, 2000)),
    "negative int": pd.Series(RNG.integers(-50, 50, 400)),
    "decimal text": pd.Series(RNG.integers(0, 500, 2000).astype(str), dtype="str"),
    "decimal text, objects": pd.Series(RNG.integers(0, 500, 2000).astype(str).astype(object)),
    "zero-padded and letters": pd.Series(["00042", "42", "a7", "A7", "42", "00042"] * 50, dtype="str"),
    "long": pd.Series([f"customer{i % 97:020d}" for i in range(2000)], dtype="str"),
    "spaces, fractions, non-ASCII": pd.Series([" 42", "42", "42.0", "x", "é", "42 "] * 30, dtype="str"),
    "mixed objects": pd.Series([42, "42", 42.0, "a", 7] * 30, dtype=object),
    "float": pd.Series(RNG.integers(0, 300, 1000).astype(float)),
}


@pytest.mark.parametrize("kind", KINDS)
def test_duplicates_and_hashes_are_those_of_the_plain_expressions(kind: str) -> None:
    values = KINDS[kind]
    expected = pd.Series(values.to_numpy()).astype(str).str.strip().duplicated(keep="last").to_numpy()
    assert np.array_equal(ids.duplicated(values), expected)
    assert expected.any()  # the cases do repeat ids
    for salt in ("production", "exp1"):
        assert np.array_equal(hashes_of_ids(values, salt), entity_hashes(values, salt))


def test_the_fast_road_is_taken_only_for_ascii_letters_and_digits() -> None:
    assert ids.text_matrix(KINDS["decimal text"]) is not None and ids.text_matrix(KINDS["long"]) is not None
    assert all(ids.text_matrix(KINDS[k]) is None for k in ("int", "spaces, fractions, non-ASCII", "mixed objects", "float"))
    text, lengths = ids.text_matrix(pd.Series(["7", "12345678", "123456789"], dtype="str"))
    assert text.shape == (3, 16) and list(lengths) == [1, 8, 9]
    assert bytes(text[2]) == b"123456789" + b"\0" * 7


def test_labels_of_keeps_the_last_row_of_an_id_and_encodes_integer_labels_by_their_text() -> None:
    frame = pd.DataFrame({"id": pd.Series(["5", "6", "5", "7"], dtype="str"), "label": [2, 7, 7, 2]})
    labels, counts, notes = labels_of(frame, "id", "label", "7", "outcomes.csv")
    assert list(labels["id"]) == ["6", "5", "7"] and list(labels["y"]) == [1, 1, 0]
    assert counts["duplicate_ids"] == 1 and counts["positive_class"] == "7" and "first: '5'" in notes[0]


@pytest.mark.parametrize(("keys", "probes"), [(10, 100), (1000, 10_000), (100_000, 1_000_000), (100_000, 2000), (1000, 500), (100_000, 0)])
def test_lookup_is_the_index_lookup(keys: int, probes: int) -> None:
    """Many probes (the bitmap), few (the keys looked up among them), as many (the index itself): the index's answer."""
    known = RNG.integers(0, 2**64 - 1, keys, dtype=np.uint64)
    asked = np.concatenate([known[RNG.integers(0, keys, probes // 2)], RNG.integers(0, 2**64 - 1, probes - probes // 2, dtype=np.uint64)])
    expected = pd.Index(known).get_indexer(asked)
    assert np.array_equal(ids.lookup(known, asked), expected) and (expected >= 0).sum() >= probes // 2
