"""Reading, validating and splitting the training CSV (retraining.data.dataset)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, write_csv

from retraining.data.dataset import MISSING_CATEGORY, load_dataset, row_hashes
from retraining.errors import DataError


def test_detects_categoricals_and_fills_missing_category(tmp_path):
    df = make_frame(300)
    df["flag"] = df["x1"] > 0  # bool -> categorical
    df.loc[3, "c1"] = None
    ds = load_dataset(write_csv(tmp_path / "d.csv", df), id_column="customer_id")
    assert set(ds.cat_features) == {"c1", "c2", "flag"}
    assert ds.X.loc[3, "c1"] == MISSING_CATEGORY
    assert "customer_id" not in ds.features and "target" not in ds.features
    assert dict(ds.schema())["x1"] == "numeric"
    assert ds.rows == 300 and ds.positives == int(df.target.sum())


def test_leaves_out_constant_and_id_like_columns(tmp_path, caplog):
    df = make_frame(300)
    df["const"] = 7
    df["uuid"] = [f"u{i}" for i in range(300)]
    df["row"] = range(300)
    caplog.set_level("INFO")
    ds = load_dataset(write_csv(tmp_path / "d.csv", df), drop_columns=["customer_id"])
    assert {"const", "uuid", "row"}.isdisjoint(ds.features)
    assert "constant" in ds.dropped["const"] and "ID" in ds.dropped["uuid"] and "row number" in ds.dropped["row"]
    assert ds.dropped["customer_id"] == "dropped with --drop-columns"
    assert "Leaving out column 'uuid'" in caplog.text
    assert "x1" in ds.features  # a continuous feature unique per row is kept


@pytest.mark.parametrize(
    ("values", "positive", "expected_positive"),
    [
        (["yes", "no"], None, "yes"),
        (["True", "False"], None, "True"),
        (["M", "B"], "M", "M"),
        (["1", "0"], None, "1"),
        (["spam", "ham"], "spam", "spam"),
    ],
)
def test_target_encodings(tmp_path, values, positive, expected_positive):
    df = make_frame(300)
    df["label"] = np.where(df.target == 1, values[0], values[1])
    ds = load_dataset(write_csv(tmp_path / "d.csv", df.drop(columns="target")), target="label", positive_class=positive)
    assert ds.positive_class == expected_positive
    assert (ds.y == df.target.to_numpy()).all()


def test_infinities_are_kept_apart_from_missing_values(tmp_path):
    """CatBoost gets NaN for them, but the dataset remembers which rows held them (the infinite_values check)."""
    df = make_frame(300)
    df["x1"] = df["x1"].astype(object)
    df.loc[0, "x1"] = "inf"
    df.loc[1, "x1"] = "-inf"
    df.loc[2, "x1"] = None
    ds = load_dataset(write_csv(tmp_path / "d.csv", df))
    assert "x1" not in ds.cat_features
    assert np.isnan(ds.X.loc[0, "x1"]) and np.isnan(ds.X.loc[1, "x1"])
    assert list(np.flatnonzero(ds.infinite["x1"])) == [0, 1] and list(ds.infinite) == ["x1"]
    assert ds.missing == {"x1": 1} and ds.describe()["infinite_values"] == {"x1": 2}


def test_semicolon_separated_file_is_read(tmp_path):
    df = make_frame(300)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, sep=";")
    assert load_dataset(path).rows == 300


BAD_INPUTS = [
    ("missing", None, "file not found"),
    ("empty", b"", "file is empty"),
    ("header only", b"a,b,target\n", "no data rows"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text CSV"),
    ("one column", b"hello\nworld\n", "single column"),
    ("duplicate header", b"a,a,target\n1,2,0\n", "duplicate column names"),
    ("no target", b"a,b\n1,2\n", "no target column 'target'"),
    ("ragged", b'a,b,target\n1,2,0\n"unclosed,2,1\n', "cannot be parsed"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_files_get_clear_errors(tmp_path, name, content, message):
    path = tmp_path / "d.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        load_dataset(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.assign(target=1), "only one class"),
        (lambda df: df.assign(target=df.index % 3), "3 distinct values"),
        (lambda df: df.assign(target=df.target.astype(float).where(df.index != 10)), "empty in 1 rows .first at line 12"),
        (lambda df: df.assign(target=np.where(df.target == 1, "M", "B")), "--positive-class"),
        (lambda df: df.head(20), "too few rows for a fair holdout"),
    ],
)
def test_bad_targets(tmp_path, mutate, message):
    with pytest.raises(DataError, match=message):
        load_dataset(write_csv(tmp_path / "d.csv", mutate(make_frame(300))))


def test_unknown_columns_in_flags(tmp_path):
    path = write_csv(tmp_path / "d.csv", make_frame(300))
    with pytest.raises(DataError, match="--id-column 'nope' is not a column"):
        load_dataset(path, id_column="nope")
    with pytest.raises(DataError, match="--drop-columns names 'nope'"):
        load_dataset(path, drop_columns=["nope"])
    with pytest.raises(DataError, match="--positive-class 'maybe'"):
        load_dataset(path, positive_class="maybe")


def test_split_is_stable_when_rows_are_appended(tmp_path):
    old = make_frame(1000, seed=1)
    new = pd.concat([old, make_frame(500, seed=2, start_id=1000)], ignore_index=True)
    for kwargs in ({}, {"id_column": "customer_id"}):
        a = load_dataset(write_csv(tmp_path / "a.csv", old), **kwargs)
        b = load_dataset(write_csv(tmp_path / "b.csv", new), **kwargs)
        assert (b.holdout[:1000] == a.holdout).all(), kwargs
        assert 0.15 < b.holdout.mean() < 0.25


def test_row_hash_ignores_dtype_and_column_order():
    df = make_frame(50)
    as_float = df.assign(x3=df.x3.astype(float))
    assert (row_hashes(df) == row_hashes(as_float)).all()
    assert (row_hashes(df) == row_hashes(df[df.columns[::-1]])).all()
    assert (row_hashes(df) != row_hashes(df.assign(x1=df.x1 + 1))).all()


def test_time_split_takes_newest_fifth(tmp_path):
    df = make_frame(500)
    df["when"] = pd.date_range("2024-01-01", periods=500, freq="h").astype(str)
    ds = load_dataset(write_csv(tmp_path / "d.csv", df), time_column="when")
    assert ds.holdout[-100:].all() and not ds.holdout[:-100].any()
    assert "when" not in ds.features and ds.split["method"] == "time"
