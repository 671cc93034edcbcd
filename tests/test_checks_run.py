"""run_checks as a whole, in-process on small files: every check in its place, drift on the new
rows, the learned checks (leak, multivariate drift) and their switches, tonight's arrivals.

Written for the mutants mutmut left alive in ``retraining/guard/checks.py`` (bench/MUTATION.md).
Each night is built so that the findings it must give follow from how it was built (said
beside each); the classifiers are CatBoost's, 40 iterations on at most 1,400 rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, write_csv

from retraining.data.dataset import load_dataset
from retraining.guard.checks import arrival_checks, duplicate_checks, run_checks
from retraining.guard.drift import profile
from retraining.guard.findings import CheckSettings
from retraining.guard.ledger import make_ledger, split_rows

OLD = 1000


def _night(tmp_path, new: pd.DataFrame, old: pd.DataFrame | None = None, **load):
    """Yesterday ``old`` (1,000 rows of make_frame), today those plus ``new``: the dataset, the profile of yesterday, the row split."""
    old = make_frame(OLD, seed=1).drop(columns="customer_id") if old is None else old
    before = load_dataset(write_csv(tmp_path / "old.csv", old), **load)
    ds = load_dataset(write_csv(tmp_path / "today.csv", pd.concat([old, new], ignore_index=True)), **load)
    return ds, profile(before.X, before.cat_features, before.y), split_rows(ds, make_ledger("v1.0.0", before))


def test_every_check_adds_its_findings_to_the_others(tmp_path):
    """400 new rows: 300 fresh ones, all negative, with text ids in c1, x3 a thousand times larger and x2 shifted by 1 (within its range);
    100 copies of yesterday's rows (25 %, a re-sent batch); x1 infinite in every 3rd fresh row; a trained-on column gone."""
    old = make_frame(OLD, seed=1).drop(columns="customer_id")
    fresh = make_frame(300, seed=2).drop(columns="customer_id")
    fresh = fresh.assign(target=0, c1=[f"id{i}" for i in range(300)], x3=fresh.x3 * 1000 + 100_000, x2=fresh.x2 + 1)
    new = pd.concat([fresh, old.iloc[:100]], ignore_index=True)
    new["x1"] = np.where((np.arange(400) % 3 == 0) & (np.arange(400) < 300), np.inf, new.x1)
    ds, reference, rows = _night(tmp_path, new, old)
    reference["features"]["gone"] = {"kind": "numeric", "missing": 0.0}
    assert (rows.counts["new"], rows.counts["resent"]) == (400, 100)
    report = run_checks(ds, reference, rows, settings=CheckSettings(unique_share=0.7, severity={"multivariate_drift": "off"}))
    assert (report.basis, report.rows_judged) == ("new rows", 400)
    assert [(f.name, f.columns) for f in report.findings] == [
        ("label_rate", []),  # the 100 copies' positives among 400 rows: far below yesterday's rate
        ("infinite_values", ["x1"]),
        ("id_like", ["c1"]),  # 300 ids + 3 colours in 400 rows: 75.75 % distinct, over the 70 % set here
        ("out_of_range", ["x3"]),
        ("column_gone", ["gone"]),
        ("resent_batch", []),
        ("drift", ["x2"]),  # x1 (infinite), c1 and x3 (blocked) drifted too: a blocking finding already names them
    ]
    assert report.findings[1].numbers["infinite_rows"] == {"x1": 100}  # every 3rd of 300 fresh rows; not "missing" (no missing_rate)
    assert report.drift["new_rows"] == 400 and report.drift["features"]["x2"]["psi_new"] > 0.25


def test_the_whole_file_is_judged_without_a_row_split_and_its_drift_has_no_new_rows(tmp_path):
    new = make_frame(300, seed=2).drop(columns="customer_id")
    ds, reference, _ = _night(tmp_path, new)
    report = run_checks(ds, reference, None)
    assert (report.basis, report.rows_judged, report.drift["new_rows"]) == ("whole file", 1300, None)
    assert "psi_new" not in report.drift["features"]["x1"] and "multivariate" not in report.drift  # the classifier needs new rows


def test_a_reference_without_labels_skips_only_the_label_checks(tmp_path):
    new = make_frame(300, seed=2).drop(columns="customer_id").assign(target=0)  # all negative: blocks with labels
    ds, reference, rows = _night(tmp_path, new)
    quiet = CheckSettings(severity={"multivariate_drift": "off"})
    assert [f.name for f in run_checks(ds, reference, rows, settings=quiet).findings] == ["labels_one_class"]
    del reference["labels"]
    assert run_checks(ds, reference, rows, settings=quiet).findings == []


# -- the learned checks: a leaked label, and the classifier that tells the new rows apart ------------------
def _leak_night(tmp_path):
    """Column z is noise yesterday and equals the label in the 300 new rows (not in the profile: no drift or range check sees it)."""
    rng = np.random.default_rng(5)
    old = make_frame(OLD, seed=1).drop(columns="customer_id").assign(z=rng.normal(size=OLD).round(4))
    new = make_frame(300, seed=2).drop(columns="customer_id")
    new["z"] = new.target.astype(float)
    ds, reference, rows = _night(tmp_path, new, old)
    del reference["features"]["z"]
    return ds, reference, rows


def test_a_leaked_column_blocks_and_explains_the_classifiers_signal(tmp_path):
    ds, reference, rows = _leak_night(tmp_path)
    report = run_checks(ds, reference, rows, threads=1)
    assert [(f.name, f.severity, f.columns) for f in report.findings] == [("leak", "block", ["z"])]
    summary = report.drift["multivariate"]
    assert summary["rows"] == [300, OLD] and summary["auc"] > 0.9 and summary["explained_by"] == ["z"]


def test_with_the_leak_check_off_the_classifier_names_the_column(tmp_path):
    ds, reference, rows = _leak_night(tmp_path)
    report = run_checks(ds, reference, rows, settings=CheckSettings(severity={"leak": "off"}), threads=1)
    assert [(f.name, f.severity, f.columns) for f in report.findings] == [("multivariate_drift", "block", ["z"])]
    assert "explained_by" not in report.drift["multivariate"]


def test_the_classifier_compares_with_the_reference_rows_given_and_can_be_turned_off(tmp_path):
    ds, reference, rows = _leak_night(tmp_path)
    first = np.zeros(ds.rows, bool)
    first[:300] = True  # the first 300 of yesterday's rows
    report = run_checks(ds, reference, rows, reference_rows=first, threads=1)
    assert report.drift["multivariate"]["rows"] == [300, 300]
    off = run_checks(ds, reference, rows, settings=CheckSettings(severity={"multivariate_drift": "off"}))
    assert [f.name for f in off.findings] == ["leak"] and "multivariate" not in off.drift


def test_drift_of_a_column_on_the_new_rows_explains_the_classifiers_signal(tmp_path):
    """x2 shifted by 1 in the new rows: PSI over 0.25 on them, so the classifier's signal is that drift."""
    new = make_frame(300, seed=2).drop(columns="customer_id")
    ds, reference, rows = _night(tmp_path, new.assign(x2=new.x2 + 1))
    report = run_checks(ds, reference, rows, threads=1)
    assert [(f.name, f.columns) for f in report.findings] == [("drift", ["x2"])]
    assert report.drift["features"]["x2"]["psi_new"] > 0.25 and report.drift["multivariate"]["explained_by"] == ["x2"]
    at = CheckSettings(drift_psi=report.drift["features"]["x2"]["psi_new"])  # PSI exactly at the threshold: not drifted
    assert "explained_by" not in run_checks(ds, reference, rows, settings=at, threads=1).drift["multivariate"]


# -- tonight's arrivals after a night held back ---------------------------------------------------
def test_tonights_arrivals_are_judged_alone_and_only_their_own_findings_reported(tmp_path):
    """v1.0.0 accepted 1,000 rows; v1.1.0 (held back) brought 300; tonight 300 more, x2 missing in 35 % of them:
    17.5 % over the 600 rows new since v1.0.0 (under the +0.2 jump: no missing_rate finding, only drift), 35 % tonight.
    """
    old = make_frame(OLD, seed=1).drop(columns="customer_id")
    held = make_frame(300, seed=2).drop(columns="customer_id")
    tonight = make_frame(300, seed=3).drop(columns="customer_id")
    tonight.loc[: 105 - 1, "x2"] = np.nan  # 105 of 300 = 35 %
    accepted = load_dataset(write_csv(tmp_path / "v1.csv", old))
    previous_run = load_dataset(write_csv(tmp_path / "v11.csv", pd.concat([old, held], ignore_index=True)))
    ds = load_dataset(write_csv(tmp_path / "today.csv", pd.concat([old, held, tonight], ignore_index=True)))
    reference = profile(accepted.X, accepted.cat_features, accepted.y)
    rows = split_rows(ds, make_ledger("v1.0.0", accepted))
    arrivals = split_rows(ds, make_ledger("v1.1.0", previous_run))
    assert (rows.counts["new"], arrivals.counts["new"]) == (600, 300)
    quiet = CheckSettings(severity={"multivariate_drift": "off"})
    already = run_checks(ds, reference, rows, settings=quiet).findings
    assert [(f.name, f.columns) for f in already] == [("drift", ["x2"])]  # the missing values are a bin of their own
    found = arrival_checks(ds, reference, arrivals, already, settings=quiet)
    assert [(f.name, f.severity, f.columns) for f in found] == [("missing_rate", "warn", ["x2"])]
    assert found[0].numbers == {"missing_share": 0.35, "training_missing_share": 0.0, "rows": 300, "judged_on": "tonight's 300 arrivals since v1.1.0"}
    assert found[0].message == "on tonight's 300 arrivals (since v1.1.0, held back): column 'x2' is missing in 35% of rows (training: 0%)"
    assert arrival_checks(ds, reference, arrivals, found, settings=quiet) == []  # already reported: not again
    assert arrival_checks(ds, reference, arrivals, already) == found  # default settings: the same (the classifier does not run)


def test_arrivals_need_200_rows_and_must_not_be_the_whole_file(tmp_path):
    old = make_frame(OLD, seed=1).drop(columns="customer_id")
    tonight = make_frame(200, seed=3).drop(columns="customer_id").assign(target=0)  # all negative: labels_one_class
    accepted = load_dataset(write_csv(tmp_path / "v1.csv", old))
    reference = profile(accepted.X, accepted.cat_features, accepted.y)
    reference["features"]["gone"] = {"kind": "numeric", "missing": 0.0}  # so the whole file, if judged, has a finding
    for n, expected in ((199, []), (200, ["labels_one_class", "column_gone"])):
        ds = load_dataset(write_csv(tmp_path / "today.csv", pd.concat([old, tonight.iloc[:n]], ignore_index=True)))
        arrivals = split_rows(ds, make_ledger("v1.0.0", accepted))
        assert [f.name for f in arrival_checks(ds, reference, arrivals, [])] == expected
    everything = split_rows(ds, None)  # no ledger: every row is new, the checks already judged them all
    assert arrival_checks(ds, reference, everything, []) == []


def test_drift_on_tonights_arrivals_is_left_to_the_nights_drift_check(tmp_path):
    old = make_frame(OLD, seed=1).drop(columns="customer_id")
    tonight = make_frame(300, seed=3).drop(columns="customer_id")
    accepted = load_dataset(write_csv(tmp_path / "v1.csv", old))
    ds = load_dataset(write_csv(tmp_path / "today.csv", pd.concat([old, tonight.assign(x2=tonight.x2 + 1)], ignore_index=True)))
    reference = profile(accepted.X, accepted.cat_features, accepted.y)
    arrivals = split_rows(ds, make_ledger("v1.0.0", accepted))
    assert [f.name for f in run_checks(ds, reference, arrivals, threads=1).findings] == ["drift"]
    assert arrival_checks(ds, reference, arrivals, []) == []


# -- an id column: a row sent again with its label corrected is not a copy --------------------------
def test_a_known_id_with_only_its_label_changed_is_a_repeated_id_not_a_resent_batch(tmp_path):
    old = make_frame(OLD, seed=1)
    corrected = old.iloc[:100].assign(target=1 - old.target.iloc[:100])
    ds, _, rows = _night(tmp_path, pd.concat([make_frame(200, seed=2, start_id=5000), corrected], ignore_index=True), old, id_column="customer_id")
    found = duplicate_checks(ds, rows, CheckSettings())
    assert [(f.name, f.numbers) for f in found] == [("repeated_ids", {"repeated_rows": 100, "new_rows": 300})]


# -- a re-sent batch without an id column: beyond the share the old rows repeat ------------------------
def _resent(tmp_path, copies: int, old_rows: int = 1000, repeats: int = 50):
    """Yesterday ``old_rows`` rows, ``repeats`` of them copies of others; today 500 new rows, ``copies`` of them yesterday's rows again."""
    base = make_frame(old_rows - repeats, seed=1).drop(columns="customer_id")
    old = pd.concat([base, base.iloc[:repeats]], ignore_index=True)
    new = pd.concat([make_frame(500 - copies, seed=2).drop(columns="customer_id"), base.iloc[100 : 100 + copies]], ignore_index=True)
    ds, _, rows = _night(tmp_path, new, old)
    assert (rows.counts["new"], rows.counts["resent"], rows.usual_repeats) == (500, copies, repeats / old_rows)
    return duplicate_checks(ds, rows, CheckSettings())


@pytest.mark.parametrize(("copies", "flagged"), [(110, False), (130, True)])
def test_a_resent_batch_counts_beyond_the_old_rows_own_repeats(tmp_path, copies, flagged):
    """Old rows repeat 5 % of the time: of 500 new rows 25 repeat as usual; 110 - 25 = 85 < 100 (20 %) passes, 130 - 25 blocks."""
    found = _resent(tmp_path, copies)
    assert [(f.name, f.columns) for f in found] == ([("resent_batch", [])] if flagged else [])
    if flagged:
        assert found[0].numbers == {"resent_rows": 130, "new_rows": 500, "share": 0.26, "usual_share": 0.05}
        assert found[0].message == (
            "130 of the 500 new rows repeat rows the previous version already had (feature values): was a batch sent again? "
            "(its own rows repeat a key 5% of the time)"
        )


def test_the_usual_repeat_share_is_shown_from_1_percent_to_4_digits(tmp_path):
    at_one = _resent(tmp_path, 130, repeats=10)[0]  # 10 of 1,000: exactly 0.01
    assert at_one.message.endswith("was a batch sent again? (its own rows repeat a key 1% of the time)")
    (tmp_path / "two").mkdir()
    odd = _resent(tmp_path / "two", 130, old_rows=1013, repeats=27)[0]  # 27 of 1,013 = 0.026654
    assert odd.numbers["usual_share"] == 0.0267 and round(27 / 1013, 4) != round(27 / 1013, 5)


def test_tonights_arrivals_are_judged_with_the_users_settings(tmp_path):
    """Tonight's 300 rows: z equals the label (a leak), x2 shifted by 1 (drift, left to the night's check)."""
    rng = np.random.default_rng(5)
    old = make_frame(OLD, seed=1).drop(columns="customer_id").assign(z=rng.normal(size=OLD).round(4))
    tonight = make_frame(300, seed=3).drop(columns="customer_id")
    tonight = tonight.assign(z=tonight.target.astype(float), x2=tonight.x2 + 1)
    ds, reference, arrivals = _night(tmp_path, tonight, old)
    del reference["features"]["z"]
    found = arrival_checks(ds, reference, arrivals, [], threads=1)
    assert [(f.name, f.columns) for f in found] == [("leak", ["z"])]  # after the drift finding it leaves out
    assert arrival_checks(ds, reference, arrivals, [], settings=CheckSettings(severity={"leak": "off"}), threads=1) == []  # nor a classifier's
    assert arrival_checks(ds, reference, arrivals, [], settings=CheckSettings(min_new_rows=301)) == []
