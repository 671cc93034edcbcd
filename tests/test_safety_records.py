"""The small records and helpers of the guard, pinned exactly: what a finding, a check report,
a ledger and a row split say and store, the holdout kept for the comparison at its bounds,
and the deploy rule's reasons. Written to kill the mutants that survived (bench/MUTATION.md).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from retraining.errors import UsageError
from retraining.guard.findings import BLOCK, WARN, CheckReport, CheckSettings, Finding, apply_severity
from retraining.guard.ledger import Ledger, RowSplit, _contains, comparison_rows, held_back, in_training, last_accepted, load_ledger, save_ledger
from retraining.rules import DeployRule, decide


# -- findings and reports ----------------------------------------------------------------------
def test_a_finding_from_json_fills_what_an_older_file_left_out():
    f = Finding.from_json({"name": "drift", "severity": "warn"})
    assert (f.columns, f.numbers, f.message) == ([], {}, "")
    g = Finding.from_json({"name": "drift", "severity": "warn", "columns": ("a",), "numbers": {"psi": 1}, "message": "m"})
    assert (g.columns, g.numbers, g.message) == (["a"], {"psi": 1}, "m") and g.line() == "WARN drift: m"


def _f(name: str, severity: str = BLOCK) -> Finding:
    return Finding(name, severity, ["c"], {"n": 1}, f"{name} went wrong")


def test_block_reason_names_the_first_blocking_finding_and_counts_the_rest():
    assert CheckReport([_f("drift", WARN)], "new rows", 10).block_reason() is None
    one = CheckReport([_f("drift", WARN), _f("label_rate")], "new rows", 10)
    assert one.block_reason() == "data check label_rate failed: label_rate went wrong; kept for review (overrule with --promote)"
    three = CheckReport([_f("label_rate"), _f("out_of_range"), _f("column_gone")], "whole file", 10)
    assert three.block_reason() == (
        "data check label_rate failed: label_rate went wrong (and 2 more blocking finding(s)); kept for review (overrule with --promote)"
    )
    assert three.to_json() == {"basis": "whole file", "rows_judged": 10, "findings": [f.to_json() for f in three.findings]}
    assert three.to_json()["findings"][0] == {
        "name": "label_rate",
        "severity": "block",
        "columns": ["c"],
        "numbers": {"n": 1},
        "message": "label_rate went wrong",
    }


def test_two_blocking_findings_say_one_more():
    two = CheckReport([_f("label_rate"), _f("out_of_range")], "new rows", 10)
    assert "(and 1 more blocking finding(s))" in two.block_reason()


def test_severities_and_modes_apply_to_each_finding():
    found = [_f("label_rate"), _f("drift", WARN), _f("missing_rate", WARN)]
    settings = CheckSettings.from_json({"severity": {"drift": "block", "missing_rate": "off"}})  # the last one off
    assert [(f.name, f.severity) for f in apply_severity(found, settings, BLOCK)] == [("label_rate", "block"), ("drift", "block")]
    assert [(f.name, f.severity) for f in apply_severity(found, settings, WARN)] == [("label_rate", "warn"), ("drift", "warn")]
    kept = apply_severity(found, CheckSettings(), BLOCK)
    assert [(f.name, f.severity, f.columns, f.numbers, f.message) for f in kept] == [(f.name, f.severity, f.columns, f.numbers, f.message) for f in found]
    odd = apply_severity([_f("not_a_check", WARN)], CheckSettings(), BLOCK)  # a name the settings do not know keeps its own severity
    assert [f.severity for f in odd] == [WARN]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], 'expected a JSON object of settings, e.g. {"label_effect": 0.3}, not list.'),
        ({"nope": 1, "also": 2}, "unknown setting(s) also, nope; valid: "),
        ({"label_effect": -1, "drift_psi": "x"}, "drift_psi, label_effect must be a finite number >= 0."),
        ({"label_effect": True}, "label_effect must be a finite number >= 0."),
        ({"label_effect": float("inf")}, "label_effect must be a finite number >= 0."),
        ({"resent_rows": 10**400}, "resent_rows must be a finite number >= 0."),
        ({"severity": ["drift"]}, "severity must be an object of check names"),
        ({"severity": {"drift": "loud"}}, "bad severity {'drift': 'loud'}; checks are label_rate, labels_one_class, "),
        ({"severity": {"nope": "warn"}}, "bad severity {'nope': 'warn'}"),
    ],
)
def test_bad_check_settings_say_what_is_wrong(data, message):
    with pytest.raises(UsageError) as err:
        CheckSettings.from_json(data, "my.json")
    assert str(err.value).startswith("my.json: ") and message in str(err.value)


def test_zero_is_a_valid_threshold_and_a_settings_file_is_read_as_utf8(tmp_path):
    assert CheckSettings.from_json({"label_effect": 0, "drift_psi": 0.5}).label_effect == 0
    path = tmp_path / "s.json"
    path.write_bytes(json.dumps({"drift_psi": 0.5, "severity": {"drift": "block"}}, ensure_ascii=False).encode("utf-8") + b" ")
    s = CheckSettings.load(path)
    assert s.drift_psi == 0.5 and s.severity["drift"] == "block" and s.severity["label_rate"] == "block"
    path.write_text('{"drift_psi": 0.5} // é', encoding="utf-8")
    with pytest.raises(UsageError, match=r"s.json: cannot read the check settings \(.*\); give a JSON object of settings."):
        CheckSettings.load(path)


# -- ledgers and row splits -----------------------------------------------------------------
def test_a_ledgers_meta_and_file_keep_every_field(tmp_path):
    ledger = Ledger("v1.2.0", np.array([1, 5, 9], np.uint64), np.array([3], np.uint64), {"method": "id", "column": "id"}, 1234, "datetime")
    assert ledger.meta() == {
        "format": 1,
        "version": "v1.2.0",
        "key": {"method": "id", "column": "id"},
        "max_time": 1234,
        "time_kind": "datetime",
        "train_rows": 3,
        "holdout_rows": 1,
        "key_kinds": {},
        "ids": None,
    }
    save_ledger(ledger, tmp_path / "sub" / "v1.2.0.npz")
    back = load_ledger(tmp_path / "sub" / "v1.2.0.npz")
    assert back.meta() == ledger.meta() and back.train.tolist() == [1, 5, 9] and back.holdout.tolist() == [3]
    ledger.kinds, ledger.ids = {"age": "number", "job": "text"}, "text"  # how training read the key columns; ids as written
    save_ledger(ledger, tmp_path / "v1.2.0.npz")
    back = load_ledger(tmp_path / "v1.2.0.npz")
    assert back.kinds == {"age": "number", "job": "text"} and back.ids == "text"


def test_a_row_split_says_what_it_counted():
    counts = {"total": 10, "new": 4, "seen": 6, "gone": 1, "resent": 2}
    split = RowSplit(np.zeros(10, bool), np.zeros(10, bool), "keys", counts, "v1.0.0")
    assert split.to_json() == {"basis": "keys", "previous": "v1.0.0", "total": 10, "new": 4, "seen": 6, "gone": 1, "resent": 2}
    assert split.line() == "rows: 10 total, 4 new, 6 seen before, 1 gone, 2 repeat rows seen before (vs v1.0.0)"
    for basis in ("no ledger", "key changed"):
        none = RowSplit(np.ones(3, bool), np.zeros(3, bool), basis, {"total": 3, "new": 3, "seen": 0, "gone": 0, "resent": 0})
        assert none.line() == f"rows: 3 total, 3 new, 0 seen before, 0 gone ({basis}: every row counts as new)"
    timed = RowSplit(np.ones(3, bool), np.zeros(3, bool), "time", {"total": 3, "new": 3, "seen": 0, "gone": 0, "resent": 0}, "v2.0.0")
    assert timed.line() == "rows: 3 total, 3 new, 0 seen before, 0 gone (vs v2.0.0)"


def test_membership_at_the_edges():
    one = np.array([7], np.uint64)
    assert _contains(one, np.array([7, 8, 6], np.uint64)).tolist() == [True, False, False]  # a one-row ledger
    assert _contains(np.array([], np.uint64), np.array([1, 2], np.uint64)).tolist() == [False, False]
    assert _contains(one, np.array([], np.uint64)).tolist() == []
    keys = np.array([2**64 - 1, 0, 5], np.uint64)
    assert _contains(np.array([0, 5, 2**64 - 1], np.uint64), keys).tolist() == [True, True, True]
    assert _contains(np.array([1, 3], np.uint64), np.array([4, 0, 3, 2], np.uint64)).tolist() == [False, False, True, False]


def _ds(keys, key=None, holdout=None, y=None):
    keys = np.asarray(keys, np.uint64)
    split = {} if key is None else {"key": key}
    return SimpleNamespace(keys=keys, split=split, holdout=holdout, y=y)


def test_in_training_needs_the_same_key():
    key = {"method": "id", "column": "id"}
    ledger = Ledger("v1", np.array([2, 4], np.uint64), np.array([9], np.uint64), key)
    assert in_training(_ds([1, 2, 9, 4], key), ledger).tolist() == [False, True, False, True]  # holdout rows are not training rows
    for other in (_ds([2, 4]), _ds([2, 4], {"method": "features", "columns": ["a"]})):
        out = in_training(other, ledger)
        assert out.dtype == bool and out.tolist() == [False, False]
    assert in_training(_ds([2]), None).tolist() == [False]


def _holdout(positives: int, negatives: int, trained_pos: int = 0, trained_neg: int = 0):
    """A holdout of positives+negatives rows (and 3 training-side rows); the first trained_* of each class are the champion's."""
    y = np.r_[np.ones(positives, int), np.zeros(negatives, int), np.zeros(3, int)]
    holdout = np.r_[np.ones(positives + negatives, bool), np.zeros(3, bool)]
    trained = np.zeros(len(y), bool)
    trained[:trained_pos] = True
    trained[positives : positives + trained_neg] = True
    return SimpleNamespace(y=y, holdout=holdout), trained


@pytest.mark.parametrize(("left_pos", "left_neg", "dropped"), [(5, 5, True), (4, 50, False), (50, 4, False)])
def test_the_champions_rows_are_dropped_only_while_5_of_each_class_remain(left_pos, left_neg, dropped):
    ds, trained = _holdout(left_pos + 10, left_neg + 10, 10, 10)
    mask, finding = comparison_rows(ds, trained)
    if dropped:
        assert finding is None and mask.tolist() == (ds.holdout & ~trained).tolist()
        return
    assert mask.tolist() == ds.holdout.tolist()
    holdout = left_pos + left_neg + 20
    assert (finding.name, finding.severity, finding.columns) == ("holdout_overlap", WARN, [])
    assert finding.numbers == {"holdout_rows": holdout, "trained_on": 20, "positives_left": left_pos, "negatives_left": left_neg}
    assert finding.message == (
        f"20 of {holdout} holdout rows are rows the champion trained on; without them {left_pos} positive and {left_neg} "
        "negative rows would remain (at least 5 of each are needed), so they stay in: its ROC-AUC may be optimistic"
    )


def test_when_the_champions_rows_are_unknown_the_holdout_stays_whole_with_a_warning():
    ds, trained = _holdout(20, 20)
    mask, finding = comparison_rows(ds, trained, unknown="v1.0.0 has no row ledger")
    assert mask.tolist() == ds.holdout.tolist()
    assert finding.to_json() == {
        "name": "holdout_overlap",
        "severity": "warn",
        "columns": [],
        "numbers": {"holdout_rows": 40},
        "message": "the champion's training rows cannot be left out of the holdout: v1.0.0 has no row ledger; its ROC-AUC may be optimistic",
    }
    mask, finding = comparison_rows(ds, None)
    assert finding is None and mask.tolist() == ds.holdout.tolist()


def test_held_back_and_last_accepted():
    block = [{"name": "label_rate", "severity": "block"}]
    assert held_back({"decision": "kept for review", "checks": block})
    assert not held_back({"decision": "deployed", "checks": block})  # promoted past its finding
    assert not held_back({"decision": "kept for review", "checks": [{"severity": "warn"}]})
    assert not held_back({"decision": "kept for review"})
    versions = [{"version": "v1", "decision": "deployed"}, {"version": "v2", "decision": "kept for review", "checks": block}]
    assert last_accepted({"production": "v1", "versions": versions}, None)["version"] == "v1"
    assert last_accepted({"production": "v2", "versions": versions}, None)["version"] == "v2"
    champ = {"version": "v0"}
    assert last_accepted({}, champ) is champ and last_accepted({"versions": versions[1:]}, champ) is champ


# -- the deploy rule's reasons, word for word ---------------------------------------------
def test_the_deploy_rules_reasons_word_for_word():
    """Without a paired comparison the noise rule falls back to the strict one, and says so (docs/deploy-rule.md)."""
    rule = DeployRule()
    fallback = "no paired test on the same rows, so the strict rule decides"
    assert decide(rule, 0.8, 0.8, None) == (True, f"ROC-AUC 0.8000 vs 0.8000: equal ({fallback}): deployed")
    assert decide(rule, 0.81, 0.8, None, "scored on 40 rows") == (True, f"ROC-AUC 0.8100 vs 0.8000 (scored on 40 rows): better ({fallback}): deployed")
    assert decide(rule, 0.79, 0.8, None) == (False, f"ROC-AUC 0.7900 vs 0.8000: worse on the raw numbers ({fallback}): kept for review")
    assert decide(rule, 0.79, 0.8, None, "n") == (False, f"ROC-AUC 0.7900 vs 0.8000 (n): worse on the raw numbers ({fallback}): kept for review")
    assert decide(rule, 0.7, None, None) == (True, "first model: nothing in production to compare with: deployed")
    assert decide(rule, 0.7, None, None, "not in the log") == (True, "not in the log: deployed")
    tie_short = decide(DeployRule(min_improvement=0.01), 0.75, 0.75, None)
    assert tie_short == (False, f"ROC-AUC 0.7500 vs 0.7500: improvement +0.0000 is below --min-improvement 0.0100 ({fallback}): kept for review")
    assert decide(DeployRule(min_auc=0.9), 0.85, 0.5, None) == (False, "ROC-AUC 0.8500 is below the floor --min-auc 0.9000: kept for review")
    sig = DeployRule(require_significance=True)
    assert decide(sig, 0.85, 0.8, SimpleNamespace(p_value_one_sided=0.2, z=0.8416)) == (
        False,
        "ROC-AUC 0.8500 vs 0.8000: not significantly better (one-sided DeLong p = 0.2 >= 0.05; --require-significance): kept for review",
    )
    unscored = "ROC-AUC 0.8500 vs 0.8000 (n): --require-significance, but the champion could not be scored on the same holdout: kept for review"
    assert decide(sig, 0.85, 0.8, None, "n") == (False, unscored)
    expected = {
        "min_improvement": 0.1,
        "require_significance": False,
        "alpha": 0.05,
        "min_auc": None,
        "rule": "noise",
        "margin": 0.005,
        "recent_versions": 5,
        "loss_tolerance": 0.1,
    }
    assert DeployRule(min_improvement=0.1).to_dict() == expected


def _raw_ledger(path, meta: dict, train=(1, 2)) -> None:
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with path.open("wb") as fh:
        np.savez(fh, train=np.array(train, np.uint64), holdout=np.array([3], np.uint64), meta=blob)


def test_ledger_formats_old_and_new(tmp_path):
    from retraining.errors import StateError

    _raw_ledger(tmp_path / "old.npz", {"version": "v0.9.0"})  # written before the format number and the key
    old = load_ledger(tmp_path / "old.npz")
    assert (old.version, old.key, old.max_time, old.time_kind, old.format) == ("v0.9.0", {}, None, None, 1)
    assert old.train.dtype == np.uint64 and old.train.tolist() == [1, 2]
    _raw_ledger(tmp_path / "new.npz", {"version": "v9.0.0", "format": 2})
    with pytest.raises(StateError) as err:
        load_ledger(tmp_path / "new.npz")
    assert str(err.value) == f"{tmp_path / 'new.npz'}: ledger format 2 is newer than this program reads (1); upgrade the tool."
    _raw_ledger(tmp_path / "nover.npz", {"format": 1})
    with pytest.raises(StateError, match=r"nover.npz: the row ledger is damaged \('version'\); delete it"):
        load_ledger(tmp_path / "nover.npz")
    (tmp_path / "junk.npz").write_bytes(b"")
    with pytest.raises(StateError, match=r"junk.npz: the row ledger is damaged \(\w+.*\); delete it \(that version's rows then count as unknown\)"):
        load_ledger(tmp_path / "junk.npz")
    assert load_ledger(tmp_path / "missing.npz") is None


def test_settings_errors_name_where_they_come_from(tmp_path):
    with pytest.raises(UsageError, match=r"^check settings: unknown setting\(s\) nope; valid: adversarial_iterations, adversarial_rows, "):  # sorted by name
        CheckSettings.from_json({"nope": 1})
    path = tmp_path / "s.json"
    path.write_text('{"nope": 1}', encoding="utf-8")
    with pytest.raises(UsageError) as err:
        CheckSettings.load(path)
    assert str(err.value).startswith(f"{path}: unknown setting(s) nope; valid: ")


def test_an_off_check_is_skipped_not_the_rest():
    found = [_f("missing_rate", WARN), _f("label_rate"), _f("drift", WARN)]
    settings = CheckSettings.from_json({"severity": {"missing_rate": "off"}})
    assert [f.name for f in apply_severity(found, settings, BLOCK)] == ["label_rate", "drift"]


def test_membership_of_a_single_key_and_the_empty_answers_are_booleans():
    assert _contains(np.array([7], np.uint64), np.array([7], np.uint64)).tolist() == [True]
    empty = _contains(np.array([], np.uint64), np.array([1], np.uint64))
    assert empty.dtype == bool and empty.tolist() == [False]


def test_split_rows_without_a_comparable_ledger_counts_every_row_new(tmp_path):
    from helpers import make_frame, write_csv

    from retraining.data.dataset import load_dataset
    from retraining.guard.ledger import make_ledger, split_rows

    frame = make_frame(300)
    ds = load_dataset(write_csv(tmp_path / "a.csv", frame))
    rows = split_rows(ds, None)
    assert (rows.basis, rows.previous, rows.counts) == ("no ledger", None, {"total": 300, "new": 300, "seen": 0, "gone": 0, "resent": 0})
    assert rows.new.all() and not rows.resent.any()
    by_id = make_ledger("v1.0.0", load_dataset(write_csv(tmp_path / "b.csv", frame), id_column="customer_id"))
    rows = split_rows(ds, by_id)
    assert (rows.basis, rows.previous, rows.counts["new"], rows.counts["gone"]) == ("key changed", "v1.0.0", 300, 300)


def test_split_rows_matches_keys_as_a_multiset_and_measures_how_often_the_old_rows_repeat():
    from retraining.guard.ledger import split_rows

    key = {"method": "features", "columns": ["a"]}
    previous = Ledger("v1.0.0", np.array([1, 1, 2, 3], np.uint64), np.array([4], np.uint64), key)  # key 1 twice: 1 of 5 repeats
    ds = SimpleNamespace(keys=np.array([1, 1, 1, 2, 9], np.uint64), split={"key": key}, times=None)
    rows = split_rows(ds, previous)
    assert rows.new.tolist() == [False, False, True, False, True] and rows.resent.tolist() == [False, False, True, False, False]
    assert rows.counts == {"total": 5, "new": 2, "seen": 3, "gone": 2, "resent": 1}
    assert (rows.basis, rows.previous, rows.usual_repeats) == ("keys", "v1.0.0", 0.2)


def test_split_rows_when_every_row_is_newer_than_the_ledger_matches_no_key():
    """Every row after the previous version's last time: nothing is left to match by key (an empty match)."""
    from retraining.guard.ledger import _multiset_match, split_rows

    key = {"method": "features", "columns": ["a"]}
    previous = Ledger("v1.0.0", np.array([1, 2], np.uint64), np.array([3], np.uint64), key, max_time=10)
    ds = SimpleNamespace(keys=np.array([1, 2, 9], np.uint64), split={"key": key}, times=np.array([11, 12, 13]))
    rows = split_rows(ds, previous)
    assert rows.new.tolist() == [True, True, True] and rows.resent.tolist() == [False, False, False]
    assert (rows.basis, rows.counts) == ("time", {"total": 3, "new": 3, "seen": 0, "gone": 3, "resent": 0})
    matched, known = _multiset_match(np.array([], np.uint64), np.array([1, 2, 3], np.uint64))
    assert (matched.dtype, known.dtype, matched.shape, known.shape) == (np.dtype(bool), np.dtype(bool), (0,), (0,))


# -- the row key is fixed forever ------------------------------------------------------------
def test_the_row_key_of_a_known_frame_never_changes():
    """Pinned values: a changed key re-draws every holdout split and orphans every ledger on disk
    (retraining/data/keys.py), so these numbers may never change, whatever the code becomes."""
    import pandas as pd

    from retraining.data.keys import content_hashes, id_hashes, integral_floats_as_int

    frame = pd.DataFrame({"b": [1.0, -0.0, np.nan, 2.5], "a": ["x", None, "y", "x"], "n": [1, 0, 3, 2]})
    expected = [4059981301521456943, 11138975956908968458, 16133002834432449494, 8342877321829854793]
    assert content_hashes(frame).tolist() == expected
    same = frame.assign(b=[1, 0.0, np.nan, 2.5])[["n", "a", "b"]]  # -0.0 is 0.0; column order does not count
    assert content_hashes(same).tolist() == expected
    assert id_hashes(pd.Series([42, 7, 1000000])).tolist() == [13868540147178108907, 7235077061665164374, 14578122317709770287]
    assert id_hashes(pd.Series([42.0, 7.0, 1e6])).tolist() == id_hashes(pd.Series(["42", " 7 ", "1000000"])).tolist()
    with_gap = integral_floats_as_int(pd.Series([1.0, np.nan, 3.0]))
    assert str(with_gap.dtype) == "Int64" and with_gap.isna().tolist() == [False, True, False]


_HASH_KEY = "catboost-retrain"  # the documented key of every row key, written out here


def _text_hash(text: str) -> int:
    import pandas as pd

    return int(pd.util.hash_array(np.array([text], dtype=object), hash_key=_HASH_KEY, categorize=False)[0])


def _rule_keys(rows: list[dict], numbers: set[str]) -> list[int]:
    """The content key by its documented rule (retraining/data/keys.py), one row and one value at
    a time (the module hashes a column at once, each distinct text once): a number by its float64
    value (-0.0 as 0.0, missing as -1.2345e308), anything else by its text (missing as "\\x00NA");
    each value's hash xor its column name's hash, combined in name order as key * 1_000_003 ^ that
    (mod 2**64)."""
    import pandas as pd

    out = []
    for row in rows:
        key = 0
        for name in sorted(row):
            value = row[name]
            if name in numbers:
                x = -1.2345e308 if value is None else (0.0 if value == 0 else float(value))
                h = int(pd.util.hash_array(np.array([x], dtype=np.float64))[0])
            else:
                h = _text_hash("\x00NA" if value is None else value)
            key = (key * 1_000_003 ^ h ^ _text_hash(name)) % 2**64
        out.append(key)
    return out


def test_the_content_key_follows_its_documented_rule_whatever_the_column_types():
    """A float32 column keys as its float64 values (0.5 is 0.5), a nullable Int64 column with a gap
    as the floats with a missing value, and a text is hashed exactly as written: missing, empty and
    a NUL-padded "a\\x00" (a C-padded export's cell) are three values, not one."""
    import pandas as pd

    from retraining.data.keys import content_hashes

    frame = pd.DataFrame(
        {
            "t": pd.Series(["a", None, "", "a\x00"], dtype=object),
            "n": [1, 0, 3, 2],
            "f32": np.array([0.5, -0.0, np.nan, 2.25], dtype=np.float32),
            "i": pd.array([7, None, 0, 7], dtype="Int64"),
        }
    )
    rows = [  # the same rows, by hand
        {"t": "a", "n": 1, "f32": 0.5, "i": 7},
        {"t": None, "n": 0, "f32": 0.0, "i": None},
        {"t": "", "n": 3, "f32": None, "i": 0},
        {"t": "a\x00", "n": 2, "f32": 2.25, "i": 7},
    ]
    assert content_hashes(frame).tolist() == _rule_keys(rows, {"n", "f32", "i"})
    as_floats = frame.assign(f32=[0.5, 0.0, np.nan, 2.25], i=[7.0, np.nan, 0.0, 7.0])
    assert content_hashes(as_floats).tolist() == content_hashes(frame).tolist()
    assert len(set(content_hashes(frame[["t"]]).tolist())) == 4
    # a column's name counts as written too, like a value
    assert content_hashes(pd.DataFrame({"x\x00": [1.5]})).tolist() == _rule_keys([{"x\x00": 1.5}], {"x\x00"})
    assert content_hashes(pd.DataFrame({"x\x00": [1.5]})).tolist() != content_hashes(pd.DataFrame({"x": [1.5]})).tolist()


def test_the_id_key_is_the_hash_of_the_ids_text():
    import pandas as pd

    from retraining.data.keys import id_hashes

    expected = [_text_hash(t) for t in ["7", "7", "7\x00", "00042", "42.0", "x y"]]
    assert id_hashes(pd.Series(["7", " 7 ", "7\x00", "00042", "42.0", " x y "], dtype=object)).tolist() == expected
    assert id_hashes(pd.Series([7, 42], dtype="Int64")).tolist() == [_text_hash("7"), _text_hash("42")]
    assert id_hashes(pd.Series([7.0, 42.0])).tolist() == [_text_hash("7"), _text_hash("42")]
