"""The row key, the per-version ledger and the new-row split (retraining.guard.ledger), on the shipped bank data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bank_nights import bank, flip_labels, with_ids, write

from retraining.data.dataset import SPLIT_VERSION, load_dataset
from retraining.data.keys import row_keys
from retraining.errors import StateError
from retraining.guard.ledger import (
    LEDGER_FORMAT,
    comparison_rows,
    in_training,
    last_accepted,
    load_ledger,
    make_ledger,
    rows_in_training,
    save_ledger,
    split_rows,
)

FEATURES = ["age", "job", "balance", "month"]


def test_the_key_ignores_the_label_and_column_order_but_not_feature_values():
    frame = bank(rows=2000)
    keys = row_keys(frame, None, FEATURES)
    assert keys.dtype == np.uint64
    assert (row_keys(frame.assign(target=1 - frame.target), None, FEATURES) == keys).all()
    assert (row_keys(frame[frame.columns[::-1]], None, FEATURES) == keys).all()
    assert (row_keys(frame.assign(age=frame.age.astype(float)), None, FEATURES) == keys).all()  # 42 and 42.0 agree
    changed = row_keys(frame.assign(balance=frame.balance + 1), None, FEATURES)
    assert (changed != keys).all()
    with_gaps = frame.assign(job=frame.job.where(frame.index % 7 != 0), flag=frame.balance > 0)
    first = row_keys(with_gaps, None, [*FEATURES, "flag"])
    assert len(set(first[with_gaps.job.isna()].tolist())) > 100  # a missing category is a value like any other
    assert (row_keys(with_gaps.assign(flag=with_gaps.flag.map({True: "True", False: "False"})), None, [*FEATURES, "flag"]) == first).all()
    ids = with_ids(frame)
    assert (row_keys(ids, "customer_id", FEATURES) == row_keys(ids.assign(customer_id=ids.customer_id.astype(float)), "customer_id", [])).all()


def test_a_label_correction_moves_no_row_between_training_and_holdout(tmp_path):
    frame = bank(rows=6000)
    before = load_dataset(write(tmp_path, "a.csv", frame))
    corrected = flip_labels(frame, slice(0, 6000), 0.05)  # 300 labels corrected, no id column
    after = load_dataset(write(tmp_path, "b.csv", corrected))
    assert (after.y != before.y).sum() == 300
    assert (after.holdout == before.holdout).all()
    assert (after.keys == before.keys).all()
    assert after.split["version"] == SPLIT_VERSION == 2 and after.split["key"]["method"] == "features"
    assert "target" not in after.split["key"]["columns"]
    assert 0.18 < before.holdout.mean() < 0.22


def test_a_ledger_round_trips_at_8_bytes_a_row(tmp_path):
    ds = load_dataset(write(tmp_path, "d.csv", bank(rows=20000)))
    ledger = make_ledger("v1.0.0", ds)
    path = tmp_path / "models" / "ledgers" / "v1.0.0.npz"
    save_ledger(ledger, path)
    back = load_ledger(path)
    assert back.version == "v1.0.0" and back.format == LEDGER_FORMAT and back.key == ds.split["key"]
    assert (back.train == np.sort(ds.keys[~ds.holdout])).all() and (back.holdout == np.sort(ds.keys[ds.holdout])).all()
    assert path.stat().st_size <= 8 * ds.rows + 2048
    assert load_ledger(tmp_path / "models" / "ledgers" / "v0.9.0.npz") is None  # made before ledgers
    assert not list(path.parent.glob("*.partial"))


@pytest.mark.parametrize("content", [b"not a ledger", b"", b"PK\x03\x04 cut short"])
def test_a_damaged_ledger_is_a_clear_state_error(tmp_path, content):
    path = tmp_path / "v1.0.0.npz"
    path.write_bytes(content)
    with pytest.raises(StateError, match="ledger is damaged") as err:
        load_ledger(path)
    assert "\n" not in str(err.value)
    good = tmp_path / "good.npz"
    save_ledger(make_ledger("v1.0.0", load_dataset(write(tmp_path, "a.csv", bank(rows=500)))), good)
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # torn by a full disk
    with pytest.raises(StateError, match="ledger is damaged"):
        load_ledger(path)


def _ledger_of(tmp_path, name, frame, **kw):
    ds = load_dataset(write(tmp_path, name, frame), **kw)
    return ds, make_ledger("v1.0.0", ds)


def test_new_rows_of_a_growing_file_are_exactly_the_appended_ones(tmp_path):
    frame = bank(rows=8000)
    _, previous = _ledger_of(tmp_path, "n1.csv", frame.iloc[:6500])
    ds = load_dataset(write(tmp_path, "n2.csv", frame))
    rows = split_rows(ds, previous)
    appended = np.arange(8000) >= 6500
    # bank rows can repeat (16 exact repeats in 45,211): the appended copy of an earlier row counts as a repeat
    assert rows.counts["total"] == 8000 and rows.counts["gone"] == 0 and rows.basis == "keys"
    assert (rows.new[~appended]).sum() == 0
    assert rows.new[appended].sum() == 1500 and rows.counts["new"] == 1500 and rows.counts["seen"] == 6500
    assert rows.counts["resent"] <= 3
    assert "1500 new" in rows.line()


def test_a_file_that_is_not_cumulative_has_only_new_rows_and_the_rest_gone(tmp_path):
    frame = bank(rows=8000)
    _, previous = _ledger_of(tmp_path, "n1.csv", frame.iloc[:6500])
    rows = split_rows(load_dataset(write(tmp_path, "today.csv", frame.iloc[6500:])), previous)
    assert rows.counts["new"] == 1500 - rows.counts["seen"] and rows.counts["seen"] <= 3
    assert rows.counts["gone"] == 6500 - rows.counts["seen"]


def test_a_resent_batch_shows_as_repeats_of_rows_seen_before(tmp_path):
    frame = with_ids(bank(rows=8000))
    _, previous = _ledger_of(tmp_path, "n1.csv", frame.iloc[:6500], id_column="customer_id")
    resent = pd.concat([frame.iloc[:6500], frame.iloc[5000:6500], frame.iloc[6500:]], ignore_index=True)
    rows = split_rows(load_dataset(write(tmp_path, "n2.csv", resent), id_column="customer_id"), previous)
    assert rows.counts == {"total": 9500, "new": 3000, "seen": 6500, "gone": 0, "resent": 1500}
    assert rows.resent[6500:8000].all() and not rows.resent[8000:].any()


def test_with_a_time_column_new_means_newer_than_the_previous_latest_time(tmp_path):
    frame = bank(rows=3000).assign(when=pd.date_range("2024-01-01", periods=3000, freq="h").astype(str))
    _, previous = _ledger_of(tmp_path, "n1.csv", frame.iloc[:2500], time_column="when")
    assert previous.time_kind == "datetime" and previous.max_time is not None
    copy = frame.copy()
    features = [c for c in frame.columns if c not in ("target", "when")]
    copy.loc[2500:2509, features] = frame.loc[0:9, features].to_numpy()  # ten new rows whose features repeat old rows: new by time all the same
    rows = split_rows(load_dataset(write(tmp_path, "n2.csv", copy), time_column="when"), previous)
    assert rows.basis == "time" and rows.counts["new"] == 500 and rows.new[2500:].all()


def test_in_training_marks_the_champions_training_rows_only(tmp_path):
    frame = bank(rows=5000)
    ds, ledger = _ledger_of(tmp_path, "a.csv", frame)
    assert (in_training(ds, ledger) == ~ds.holdout).all()  # same key, same side: the holdout stays clean
    # a champion trained on everything (e.g. before ledgers fixed the key): every holdout row is one of its rows
    everything = make_ledger("v0.1.0", ds)
    everything.train = np.sort(ds.keys)
    assert in_training(ds, everything)[ds.holdout].all()
    assert not in_training(ds, None).any()
    other = load_dataset(write(tmp_path, "b.csv", with_ids(frame)), id_column="customer_id")
    assert not in_training(other, ledger).any()  # a different key cannot be matched


def test_rows_of_a_replay_file_are_matched_to_a_ledger_by_its_own_key(tmp_path):
    frame = with_ids(bank(rows=4000))
    by_id = _ledger_of(tmp_path, "i.csv", frame, id_column="customer_id")
    by_content = _ledger_of(tmp_path, "c.csv", frame.drop(columns="customer_id"))
    replay = frame.drop(columns="target").iloc[::-1]  # a prediction log: no label, any order
    for ds, ledger in (by_id, by_content):
        trained = rows_in_training(replay, ledger)
        assert (trained == ~ds.holdout[::-1]).all()
    assert rows_in_training(replay.drop(columns=["customer_id"]), by_id[1]) is None  # the key column is missing
    assert rows_in_training(replay.drop(columns=["age"]), by_content[1]) is None
    assert rows_in_training(replay, None) is None


def test_the_comparison_keeps_the_champions_rows_only_when_too_few_would_remain(tmp_path):
    ds = load_dataset(write(tmp_path, "a.csv", bank(rows=5000)))
    trained = np.zeros(ds.rows, bool)
    trained[np.flatnonzero(ds.holdout)[:50]] = True
    rows, finding = comparison_rows(ds, trained)
    assert (rows == (ds.holdout & ~trained)).all() and finding is None
    everything = ds.holdout.copy()
    everything[np.flatnonzero(ds.holdout & (ds.y == 1))[:3]] = False  # 3 positives left: too few to score an AUC
    rows, finding = comparison_rows(ds, everything)
    assert (rows == ds.holdout).all() and finding.name == "holdout_overlap" and finding.numbers["positives_left"] == 3
    rows, finding = comparison_rows(ds, None, unknown="v1.0.0 has no row ledger")
    assert (rows == ds.holdout).all() and "v1.0.0 has no row ledger" in finding.message
    rows, finding = comparison_rows(ds, None)
    assert (rows == ds.holdout).all() and finding is None


def test_new_rows_are_counted_against_the_newest_version_whose_data_was_accepted():
    blocked = {"decision": "kept for review", "checks": [{"name": "label_rate", "severity": "block"}]}
    log = {
        "production": "v1.0.0",
        "versions": [
            {"version": "v1.0.0", "decision": "deployed", "checks": []},
            {"version": "v1.1.0", "decision": "kept for review", "checks": [{"name": "drift", "severity": "warn"}]},
            {"version": "v1.2.0", **blocked},
            {"version": "v1.3.0", **blocked},
        ],
    }
    assert last_accepted(log, log["versions"][0])["version"] == "v1.1.0"  # kept by the AUC rule: its rows were fine
    log["production"] = "v1.3.0"  # promoted by a person: its rows are accepted
    assert last_accepted(log, log["versions"][3])["version"] == "v1.3.0"
    only_blocked = {"production": "v0.9.0", "versions": [{"version": "v1.0.0", **blocked}]}
    assert last_accepted(only_blocked, {"version": "v0.9.0"})["version"] == "v0.9.0"  # production archived
