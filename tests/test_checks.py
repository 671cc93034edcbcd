"""Data checks before the deploy decision (retraining.guard.checks), on growing nightly files of the shipped bank data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from bank_nights import bank, flip_labels, with_ids, write

from retraining.data.dataset import load_dataset
from retraining.errors import UsageError
from retraining.guard.checks import champion_drop, label_checks, run_checks
from retraining.guard.drift import profile
from retraining.guard.findings import CheckSettings, Finding
from retraining.guard.ledger import make_ledger, split_rows

FIRST = 12000  # the production model's file
NIGHT = 600  # new rows a night


class Nights:
    """The production model's profile (first night) and the previous version's ledger, night after night."""

    def __init__(self, folder, id_column=None):
        self.folder, self.id_column, self.n = folder, id_column, 0
        self.reference = None
        self.previous = None

    def run(self, frame: pd.DataFrame, deploy: bool = True, **kw):
        self.n += 1
        ds = load_dataset(write(self.folder, f"night{self.n}.csv", frame), id_column=self.id_column)
        rows = split_rows(ds, self.previous)
        report = run_checks(ds, self.reference, rows, reference_version="v1.0.0", **kw) if self.reference else None
        self.previous = make_ledger(f"v1.{self.n}.0", ds)
        if self.reference is None or (deploy and not report.blocking):
            self.reference = profile(ds.X[~ds.holdout], ds.cat_features, ds.y[~ds.holdout])
        return report


def _names(report) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in report.findings:
        out.setdefault(f.name, []).extend(f.columns)
    return out


@pytest.fixture(scope="module")
def data():
    return bank(seed=3, rows=FIRST + 6 * NIGHT)


def test_a_40_percent_label_flip_blocks_and_the_next_clean_night_does_not(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    clean = nights.run(data.iloc[: FIRST + NIGHT])
    assert clean.basis == "new rows" and clean.rows_judged == NIGHT and not clean.blocking
    poisoned = flip_labels(data.iloc[: FIRST + 2 * NIGHT], slice(FIRST + NIGHT, FIRST + 2 * NIGHT), 0.4)
    report = nights.run(poisoned)
    assert [f.name for f in report.blocking] == ["label_rate"]
    numbers = report.blocking[0].numbers
    assert numbers["rows"] == NIGHT and numbers["rate"] > 0.3 and numbers["training_rate"] < 0.15 and numbers["p_value"] < 1e-6
    assert "label rate" in report.block_reason() or "label_rate" in report.block_reason()
    following = pd.concat([poisoned, data.iloc[FIRST + 2 * NIGHT : FIRST + 3 * NIGHT]])  # the bad rows stay in the file
    after = nights.run(following)
    assert after.rows_judged == NIGHT and not after.blocking, [f.line() for f in after.findings]


def test_clean_nights_of_the_shipped_data_raise_nothing(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    for k in range(1, 7):
        report = nights.run(data.iloc[: FIRST + k * NIGHT])
        assert report.findings == [], [f.line() for f in report.findings]


def test_a_scaled_feature_and_a_renamed_category_are_named_on_the_night_they_arrive(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    frame = data.iloc[: FIRST + NIGHT].astype({"age": float})
    new = frame.index[FIRST:]
    frame.loc[new, "age"] = frame.loc[new, "age"] * 1.5
    frame.loc[new, "job"] = frame.loc[new, "job"].replace({"blue-collar": "blue collar"})
    report = nights.run(frame)
    names = _names(report)
    assert "age" in names.get("out_of_range", []) and "job" in names.get("new_categories", [])
    drift = report.drift["features"]
    assert drift["age"]["psi_new"] > 1.0 and drift["age"]["psi_new"] > 5 * drift["age"]["psi"]
    assert drift["job"]["psi_new"] > 0.25 and drift["job"]["new_categories"] == ["blue collar"]
    untouched = {n: r["psi_new"] for n, r in drift.items() if n not in ("age", "job")}
    assert max(untouched.values()) < 0.1, untouched
    flagged = {c for f in report.findings for c in f.columns}
    assert flagged == {"age", "job"}


def test_a_resent_batch_and_repeated_ids_are_flagged(tmp_path, data):
    frame = with_ids(data)
    nights = Nights(tmp_path, id_column="customer_id")
    nights.run(frame.iloc[:FIRST])
    nights.run(frame.iloc[: FIRST + NIGHT])
    resent = pd.concat([frame.iloc[: FIRST + NIGHT], frame.iloc[FIRST : FIRST + NIGHT], frame.iloc[FIRST + NIGHT : FIRST + 2 * NIGHT]])
    report = nights.run(resent, deploy=False)
    assert [(f.name, f.columns) for f in report.blocking] == [("resent_batch", ["customer_id"])]
    assert report.blocking[0].numbers["resent_rows"] == NIGHT
    few = pd.concat([frame.iloc[: FIRST + 2 * NIGHT], frame.iloc[FIRST + 2 * NIGHT : FIRST + 3 * NIGHT], frame.iloc[:5]])
    report = nights.run(few)
    assert [(f.name, f.severity, f.columns) for f in report.findings] == [("repeated_ids", "warn", ["customer_id"])]


def test_swapped_columns_empty_columns_and_text_in_a_number_column(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    frame = data.iloc[: FIRST + NIGHT].copy()
    new = frame.index[FIRST:]
    frame.loc[new, ["age", "day"]] = frame.loc[new, ["day", "age"]].to_numpy()
    frame.loc[new, "education"] = np.nan
    report = nights.run(frame, deploy=False)
    names = _names(report)
    assert set(names["out_of_range"]) == {"age", "day"} and names["all_missing"] == ["education"]
    nights.previous = make_ledger("v1.0.0", load_dataset(write(tmp_path, "first.csv", data.iloc[:FIRST])))
    frame = data.iloc[: FIRST + NIGHT].astype({"balance": object})
    frame.loc[frame.index[-NIGHT:], "balance"] = frame.balance.iloc[-NIGHT:].astype(str) + " EUR"  # the feed now writes units
    report = nights.run(frame, deploy=False)  # the reader takes those for missing numbers
    assert ("all_missing", ["balance"]) in [(f.name, f.columns) for f in report.blocking]
    frame = data.iloc[: FIRST + NIGHT].assign(day="day " + data.day.iloc[: FIRST + NIGHT].astype(str))
    report = nights.run(frame, deploy=False)
    assert ("kind_changed", ["day"]) in [(f.name, f.columns) for f in report.blocking]


def test_few_new_rows_are_judged_with_the_whole_file(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    report = nights.run(data.iloc[: FIRST + 50])
    assert report.basis == "whole file" and report.rows_judged == FIRST + 50 and not report.findings


def test_modes_settings_and_old_profiles(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    poisoned = flip_labels(data.iloc[: FIRST + NIGHT], slice(FIRST, FIRST + NIGHT), 0.4)
    ds = load_dataset(write(tmp_path, "p.csv", poisoned))
    rows = split_rows(ds, nights.previous)
    assert [f.severity for f in run_checks(ds, nights.reference, rows, mode="warn").findings] == ["warn"]
    assert run_checks(ds, nights.reference, rows, mode="off").findings == []
    lenient = CheckSettings(label_effect=0.9)
    assert run_checks(ds, nights.reference, rows, settings=lenient).findings == []
    muted = CheckSettings.from_json({"severity": {"label_rate": "off"}})
    assert run_checks(ds, nights.reference, rows, settings=muted).findings == []
    old = {"format": 1, "rows": nights.reference["rows"], "features": {}}  # a profile from before the checks: drift only
    for name, ref in nights.reference["features"].items():
        keep = ("kind", "edges", "shares") if ref["kind"] == "numeric" else ("kind", "categories", "other", "complete")
        old["features"][name] = {k: ref[k] for k in keep}
    report = run_checks(ds, old, rows)
    assert report.findings == [] and report.drift["features"]["age"]["psi_new"] < 0.1
    with pytest.raises(UsageError, match="unknown setting"):
        CheckSettings.from_json({"label_efect": 0.1})
    with pytest.raises(UsageError, match="label_effect must be a finite number"):
        CheckSettings.from_json({"label_effect": "big"})
    settings_file = tmp_path / "checks.json"
    settings_file.write_text('{"range_share": 0.3, "severity": {"drift": "off"}}')
    loaded = CheckSettings.load(settings_file)
    assert loaded.range_share == 0.3 and loaded.severity["drift"] == "off" and loaded.severity["label_rate"] == "block"
    with pytest.raises(UsageError, match="bad severity"):
        CheckSettings.from_json({"severity": {"label_rate": "maybe"}})
    with pytest.raises(UsageError, match="--data-checks"):
        run_checks(ds, nights.reference, rows, mode="strict")


def test_findings_round_trip_through_json():
    f = Finding("label_rate", "block", [], {"rate": 0.42, "rows": 600}, "positive rate 42.0% in 600 rows vs 26.0% in training")
    back = Finding.from_json(json.loads(json.dumps(f.to_json())))
    assert back == f and back.line().startswith("BLOCK label_rate: positive rate")


def test_the_champion_falling_below_its_deployed_auc_is_a_warning(data):
    import catboost

    from retraining.evaluation import roc_auc

    train, today = data.iloc[:FIRST], data.iloc[FIRST : FIRST + 3000]
    cats = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
    model = catboost.CatBoostClassifier(iterations=40, thread_count=2, verbose=0, random_seed=0, cat_features=cats, allow_writing_files=False)
    model.fit(train.drop(columns="target"), train.target)
    scores = model.predict_proba(today.drop(columns="target"))[:, 1]
    auc = roc_auc(today.target.to_numpy(), scores)
    deployed = {"candidate": {"roc_auc": auc}, "holdout_rows": 2400, "holdout_positives": 280}
    assert champion_drop(today.target.to_numpy(), scores, deployed) is None
    flipped = flip_labels(today.reset_index(drop=True), slice(0, 3000), 0.3).target.to_numpy()
    finding = champion_drop(flipped, scores, deployed, version="v1.0.0")
    assert finding.name == "champion_drop" and finding.severity == "warn" and "the data or the labels changed" in finding.message
    assert finding.numbers["drop"] > 0.1


def test_labels_missing_at_a_low_base_rate_block_by_an_exact_test():
    """300 all-negative rows at a 3 % base rate (p = 0.97**300 = 1e-4): the z test alone missed it."""
    three_percent = {"rows": 10000, "positives": 300}
    found = label_checks(np.zeros(300), three_percent, CheckSettings())
    assert [f.name for f in found] == ["labels_one_class"] and found[0].numbers["p_value"] < 0.001
    assert label_checks(np.zeros(200), three_percent, CheckSettings()) == []  # p = 0.002: 200 clean rows can all be negative
    clean = np.zeros(300)
    clean[:9] = 1
    assert label_checks(clean, three_percent, CheckSettings()) == []
    assert [f.name for f in label_checks(np.ones(150), three_percent, CheckSettings())] == ["labels_one_class"]


@pytest.mark.parametrize("text", ["[]", "null", '"strict"', '{"severity": "warn"}', '{"label_effect": NaN}', '{"range_share": Infinity}', "{"])
def test_a_bad_check_settings_file_is_one_clear_line(tmp_path, text):
    path = tmp_path / "checks.json"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        CheckSettings.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_rate_has_its_own_p_value_setting():
    assert CheckSettings.from_json({"label_p_value": 0.5}).missing_p_value == CheckSettings().missing_p_value == 0.001


def test_a_column_gone_from_the_feed_blocks_unless_the_user_dropped_it(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    report = nights.run(data.iloc[: FIRST + NIGHT].drop(columns="balance"), deploy=False)
    assert [(f.name, f.columns) for f in report.blocking] == [("column_gone", ["balance"])]
    assert "not in the data" in report.blocking[0].message
    emptied = data.iloc[FIRST : FIRST + NIGHT].assign(pdays=np.nan)  # a file of only the new rows; the feed lost a column
    report = nights.run(emptied, deploy=False)
    assert ("column_gone", ["pdays"]) in [(f.name, f.columns) for f in report.blocking]
    one_month = data.iloc[FIRST : FIRST + NIGHT].assign(month="may")  # a day's rows: one month, left out as constant
    assert "column_gone" not in [f.name for f in nights.run(one_month, deploy=False).findings]
    ds = load_dataset(write(tmp_path, "dropped.csv", data.iloc[: FIRST + NIGHT]), drop_columns=["balance"])
    assert "column_gone" not in [f.name for f in run_checks(ds, nights.reference, split_rows(ds, nights.previous)).findings]


def test_a_customer_id_that_repeats_is_not_a_resent_batch_but_an_exact_copy_is(tmp_path, data):
    """An id per customer (a row per contact): returning customers' new rows are not copies; a batch sent twice is."""
    frame = data.iloc[: FIRST + 2 * NIGHT].copy()
    rng = np.random.default_rng(0)
    frame["customer_id"] = np.r_[np.arange(FIRST) // 3, rng.integers(0, FIRST // 3, size=2 * NIGHT)]
    nights = Nights(tmp_path, id_column="customer_id")
    nights.run(frame.iloc[:FIRST])
    report = nights.run(frame.iloc[: FIRST + NIGHT])
    assert "resent_batch" not in [f.name for f in report.findings]
    assert [f.name for f in report.findings if f.name == "repeated_ids"] == ["repeated_ids"]  # said, as a warning
    again = pd.concat([frame.iloc[: FIRST + NIGHT], frame.iloc[FIRST : FIRST + NIGHT], frame.iloc[FIRST + NIGHT :]])
    report = nights.run(again, deploy=False)
    assert [f.name for f in report.blocking] == ["resent_batch"] and report.blocking[0].numbers["resent_rows"] == NIGHT


def test_infinities_in_half_a_column_block_as_their_own_finding_not_as_missing(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    frame = data.iloc[: FIRST + NIGHT].astype({"balance": float})
    poisoned = frame.index[FIRST::2]  # half of the new rows: 300 of 600
    frame.loc[poisoned, "balance"] = np.where(np.arange(len(poisoned)) % 2, np.inf, -np.inf)
    before = nights.previous
    report = nights.run(frame, deploy=False)
    blocking = {f.name: f for f in report.blocking}
    assert "infinite_values" in blocking, [f.line() for f in report.findings]
    assert blocking["infinite_values"].columns == ["balance"]
    assert blocking["infinite_values"].numbers == {"rows": NIGHT, "infinite_rows": {"balance": NIGHT // 2}}
    assert "balance" not in _names(report).get("missing_rate", [])  # an infinity is not a missing value
    assert "infinite_values" in report.block_reason()
    # the same night under a setting that tolerates up to 60 % infinities, or with the check off: no such finding
    for settings in (CheckSettings(infinite_share=0.6), CheckSettings.from_json({"severity": {"infinite_values": "off"}})):
        nights.previous = before  # the same night again: its rows are new again
        report = nights.run(frame, deploy=False, settings=settings)
        assert report.basis == "new rows" and "infinite_values" not in _names(report)
    nights.previous = before
    report = nights.run(frame, deploy=False, mode="warn")
    assert [f.severity for f in report.findings if f.name == "infinite_values"] == ["warn"]


def test_a_categorical_column_that_became_unique_per_row_blocks_and_is_named(tmp_path, data):
    nights = Nights(tmp_path)
    nights.run(data.iloc[:FIRST])
    frame = data.iloc[: FIRST + NIGHT].copy()
    new = frame.index[FIRST:]
    frame.loc[new, "job"] = [f"customer-{i:06d}" for i in range(NIGHT - 30)] + list(frame.loc[new[-30:], "job"])  # 95 % distinct
    before = nights.previous
    report = nights.run(frame, deploy=False)
    found = [f for f in report.blocking if f.name == "id_like"]
    assert [f.columns for f in found] == [["job"]], [f.line() for f in report.findings]
    distinct = len(set(frame.loc[new, "job"]))  # 570 ids + the few jobs among the last 30 rows
    assert found[0].numbers == {"distinct": distinct, "rows": NIGHT, "distinct_share": round(distinct / NIGHT, 4)}
    assert "'job'" in found[0].message and "--drop-columns" in found[0].message
    nights.previous = before  # the same night again: its rows are new again
    report = nights.run(frame, deploy=False, settings=CheckSettings(unique_share=0.99))
    assert report.basis == "new rows" and "id_like" not in _names(report)
    nights.previous = before
    report = nights.run(frame, deploy=False, settings=CheckSettings.from_json({"severity": {"id_like": "warn"}}))
    assert [f.severity for f in report.findings if f.name == "id_like"] == ["warn"]


def test_no_column_of_the_shipped_data_looks_like_an_id(tmp_path, data):
    ds = load_dataset(write(tmp_path, "all.csv", data))
    report = run_checks(ds, None, None)
    assert [f for f in report.findings if f.name in ("id_like", "infinite_values")] == []
