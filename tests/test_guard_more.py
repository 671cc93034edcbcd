"""Issue #21: the leak check, multivariate drift, tonight's arrivals, the slice gate, calibration, the AUC jump.

Expected values come from scikit-learn or from counting by hand, never from the function under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bank_nights import bank, write
from helpers import retrainer, run_main
from sklearn.metrics import brier_score_loss, roc_auc_score

from retraining.cli.retrain import main
from retraining.errors import ExitCode, UsageError
from retraining.guard.findings import BLOCK, WARN, CheckSettings, Finding, apply_severity
from retraining.guard.learned import adversarial_check, leak_check, single_feature_auc
from retraining.guard.outcome import auc_jump, calibration_check, slice_gate


# -- leak -------------------------------------------------------------------------------------
def _labels(n: int = 1000) -> np.ndarray:
    return np.r_[np.ones(n // 2, int), np.zeros(n // 2, int)]


@pytest.mark.parametrize(("flipped", "fires"), [(10, True), (20, True), (21, False)])
def test_a_column_that_is_the_label_blocks_at_the_threshold_and_not_below(flipped, fires):
    y = _labels()
    col = y.astype(float)
    col[:flipped] = 0.0  # positives reported as 0: ROC-AUC = (1 + (500 - flipped) / 500) / 2, by hand
    expected = (1 + (500 - flipped) / 500) / 2
    assert single_feature_auc(pd.Series(col), y, False) == pytest.approx(roc_auc_score(y, col)) == pytest.approx(expected)
    X = pd.DataFrame({"outcome_code": col, "noise": np.random.default_rng(0).normal(size=len(y))})
    found = leak_check(X, y, [], CheckSettings())
    assert [f.columns for f in found] == ([["outcome_code"]] if fires else [])
    if fires:
        assert found[0].severity == BLOCK and found[0].numbers["single_feature_auc"]["outcome_code"] == pytest.approx(expected, abs=1e-4)


def test_a_column_filled_only_after_the_outcome_counts_and_a_unique_id_does_not():
    y = _labels()
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {
            "days_to_close": np.where(y == 1, rng.integers(1, 30, len(y)), np.nan),  # empty for every negative
            "ticket": [f"T{i}" for i in range(len(y))],  # unique text: a per-category rate would be perfect in-sample
            "reason": np.where(y == 1, "closed", "open"),
        }
    )
    found = leak_check(X, y, ["ticket", "reason"], CheckSettings())
    assert found[0].columns == ["days_to_close", "reason"]


# -- multivariate drift -------------------------------------------------------------------------
def _related(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 10, n), rng.uniform(0, 10, n)  # same range, independent
    return pd.DataFrame({"a": a, "b": b, "twice_a": 2 * a + rng.normal(0, 0.5, n), "other": rng.normal(size=n)})


def test_two_swapped_columns_of_the_same_range_are_found_and_named_and_a_clean_sample_is_not():
    X = _related(4000, 2)
    new = np.zeros(len(X), bool)
    new[3000:] = True
    s = CheckSettings()
    clean, summary = adversarial_check(X, new, ~new, [], s, threads=1)
    assert clean == [] and summary["auc"] < s.multivariate_auc
    swapped = X.copy()
    swapped.loc[new, ["a", "b"]] = swapped.loc[new, ["b", "a"]].to_numpy()
    assert swapped["a"].between(0, 10).all()  # every value in range: a range check cannot see it
    found, summary = adversarial_check(swapped, new, ~new, [], s, threads=1)
    assert len(found) == 1 and {"a", "twice_a"} <= set(found[0].columns)
    assert found[0].severity == BLOCK and summary["auc"] > s.multivariate_block_auc  # not explained by a column's own drift


def test_multivariate_drift_carried_by_a_column_that_drifted_on_its_own_is_left_to_the_drift_check():
    X = _related(4000, 3)
    new = np.zeros(len(X), bool)
    new[3000:] = True
    X.loc[new, "other"] += 5  # a plain shift of one column: the drift check's job
    found, summary = adversarial_check(X, new, ~new, [], CheckSettings(), explained={"other"}, threads=1)
    assert found == [] and summary["explained_by"] == ["other"] and summary["auc"] > 0.9
    found, _ = adversarial_check(X, new, ~new, [], CheckSettings(), threads=1)  # nothing else named it: the classifier does
    assert [(f.severity, f.columns[0]) for f in found] == [(BLOCK, "other")]
    never_block = CheckSettings(multivariate_block_auc=1.0)
    assert [f.severity for f in adversarial_check(X, new, ~new, [], never_block, threads=1)[0]] == [WARN]


def test_a_graded_check_keeps_its_own_severity_unless_the_user_sets_another():
    f = Finding("multivariate_drift", BLOCK, ["a"], {}, "m")
    assert [x.severity for x in apply_severity([f], CheckSettings(), "block")] == [BLOCK]
    assert apply_severity([f], CheckSettings.from_json({"severity": {"multivariate_drift": "off"}}), "block") == []
    assert [x.severity for x in apply_severity([f], CheckSettings(), "warn")] == [WARN]
    soft = Finding("multivariate_drift", WARN, ["a"], {}, "m")
    assert [x.severity for x in apply_severity([soft], CheckSettings.from_json({"severity": {"multivariate_drift": "block"}}), "block")] == [BLOCK]


def test_slice_columns_in_the_settings_file_must_be_names():
    assert CheckSettings.from_json({"slice_columns": ["job"]}).slice_columns == ["job"]
    with pytest.raises(UsageError, match="slice_columns must be a list of column names"):
        CheckSettings.from_json({"slice_columns": "job"})


# -- slice gate ---------------------------------------------------------------------------------
def _scores(seed: int = 4, n: int = 3000):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    region = np.array(list("abcde"))[rng.integers(0, 5, n)]
    champ = y + rng.normal(0, 0.9, n)  # decent everywhere
    cand = y + rng.normal(0, 0.5, n)  # better everywhere ...
    cand[region == "e"] = rng.normal(0, 1, int((region == "e").sum()))  # ... except on region e: no signal
    return pd.DataFrame({"region": region}), y, cand, champ


def test_a_slice_where_the_winning_candidate_collapses_is_named_with_its_numbers():
    X, y, cand, champ = _scores()
    assert roc_auc_score(y, cand) > roc_auc_score(y, champ)  # it wins overall
    found, table = slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings())
    e = X.region.to_numpy() == "e"
    assert [f.columns for f in found] == [["region"]]
    worst = found[0].numbers["slices"]
    assert [w["value"] for w in worst] == ["e"]
    assert worst[0]["candidate"] == pytest.approx(roc_auc_score(y[e], cand[e]), abs=1e-4)
    assert worst[0]["champion"] == pytest.approx(roc_auc_score(y[e], champ[e]), abs=1e-4)
    assert worst[0]["rows"] == int(e.sum()) and len(table) == 5


def test_no_slice_finding_when_the_candidate_loses_overall_or_the_slice_is_too_small():
    X, y, cand, champ = _scores()
    assert slice_gate(X, y, champ, cand, ["region"], ["region"], CheckSettings())[0] == []  # roles swapped: it loses overall
    e_rows = int((X.region == "e").sum())
    found, table = slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings(slice_min_rows=e_rows + 1))
    assert found == [] and "e" not in {row["value"] for row in table}  # region e has fewer rows than that: not judged


# -- calibration ---------------------------------------------------------------------------------
def test_an_overconfident_candidate_is_warned_at_the_ratio_and_not_above_it():
    rng = np.random.default_rng(5)
    champ = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < champ).astype(int)  # the champion is calibrated by construction
    logit = np.log(champ / (1 - champ))
    cand = 1 / (1 + np.exp(-4 * logit))  # same ranking, far too sure
    ratio = brier_score_loss(y, cand) / brier_score_loss(y, champ)
    log_ratio = (-np.mean(y * np.log(cand) + (1 - y) * np.log(1 - cand))) / (-np.mean(y * np.log(champ) + (1 - y) * np.log(1 - champ)))
    worst = max(ratio, log_ratio)
    assert worst > 1.25
    found = calibration_check(y, cand, champ, CheckSettings(calibration_ratio=worst - 1e-9))
    assert [f.name for f in found] == ["calibration"] and found[0].numbers["ratios"]["brier"] == pytest.approx(ratio, abs=1e-3)
    assert calibration_check(y, cand, champ, CheckSettings(calibration_ratio=worst + 1e-6)) == []
    assert calibration_check(y, champ, champ, CheckSettings()) == []


# -- AUC jump --------------------------------------------------------------------------------------
def test_an_auc_jump_carried_by_a_new_column_blocks_and_an_ordinary_one_does_not():
    history = [0.80, 0.81, 0.80]
    importance = {"closed_flag": 80.0, "age": 20.0}
    found = auc_jump(0.95, history, importance, {"closed_flag"}, CheckSettings())
    assert [(f.name, f.severity, f.columns) for f in found] == [("auc_jump", BLOCK, ["closed_flag"])]
    assert found[0].numbers["jump"] == pytest.approx(0.95 - np.mean(history), abs=1e-4)
    assert auc_jump(0.95, history, importance, set(), CheckSettings()) == []  # no new or changed column carries it
    assert auc_jump(0.95, history[:2], importance, {"closed_flag"}, CheckSettings()) == []  # too little history
    assert auc_jump(0.84, history, importance, {"closed_flag"}, CheckSettings()) == []  # 0.0367 above: less than auc_jump_min


# -- in real runs ------------------------------------------------------------------------------------
def _night(project, frame, **kw):
    write(project, "data.csv", frame)
    return retrainer(project, iterations=20, report=False, **kw).retrain(force=True)


def test_a_label_failure_right_after_a_blocked_night_is_judged_on_tonights_rows(tmp_path):
    first, blocked, tonight = 8000, 2000, 500
    data = bank(seed=11, rows=first + blocked + tonight)
    assert _night(tmp_path, data.iloc[:first]).deployed
    missing = data.iloc[: first + blocked].copy()
    missing.loc[first:, "target"] = 0  # the label feed sends only negatives: blocked
    held = _night(tmp_path, missing)
    assert not held.deployed and any(c["severity"] == "block" for c in held.checks)
    fixed = data.copy()  # labels of the blocked night fixed upstream; tonight's rows arrive with 40 % of labels flipped
    chosen = np.random.default_rng(3).choice(np.arange(first + blocked, len(data)), size=round(0.4 * tonight), replace=False)
    fixed.loc[chosen, "target"] = 1 - fixed.loc[chosen, "target"]
    night = _night(tmp_path, fixed)
    labels = [c for c in night.checks if c["name"] == "label_rate"]
    assert len(labels) == 1 and "tonight's 500 arrivals" in labels[0]["message"], night.checks
    assert labels[0]["numbers"]["rate"] == pytest.approx(fixed.target.iloc[first + blocked :].mean(), abs=1e-4)
    assert not night.deployed and "label_rate" in night.reason


def test_slice_columns_reach_the_run_and_an_unknown_one_is_one_line(tmp_path):
    write(tmp_path, "data.csv", bank(seed=12, rows=3000))
    ran = run_main(main, "--data", "data.csv", "--slice-columns", "nope", "--iterations", "5", "--no-report", cwd=tmp_path)
    assert ran.returncode == ExitCode.BAD_INPUT and "--slice-columns" in ran.stderr and "Traceback" not in ran.stderr
    assert not (tmp_path / "models" / "versions").exists() or not any((tmp_path / "models" / "versions").iterdir())
    assert retrainer(tmp_path, slice_columns=["job"]).slice_columns == ("job",)


def test_the_report_shows_the_slice_table_and_both_models_calibration():
    from retraining.report.html import _metrics

    entry = {
        "version": "v1.2.0",
        "champion": {"version": "v1.1.0"},
        "metrics": {
            "candidate": {"roc_auc": 0.82, "brier": 0.3125},
            "champion": {"roc_auc": 0.73, "brier": 0.1875},
            "slices": [{"column": "region", "value": "north", "rows": 412, "positives": 97, "candidate": 0.63, "champion": 0.92, "p_worse": 0.0001}],
        },
    }
    page = _metrics(entry)
    assert "<h3>Slices</h3>" in page and "<td>north</td><td>412</td><td>97</td><td>0.6300</td><td>0.9200</td>" in page
    assert "<td>brier</td><td>0.3125</td><td>0.1875</td>" in page


def test_the_classifiers_p_value_is_mann_whitneys_and_its_auc_threshold_is_inclusive():
    from scipy.stats import mannwhitneyu

    from retraining.guard.learned import auc_above_chance

    rng = np.random.default_rng(6)
    y = (rng.random(800) < 0.3).astype(int)
    scores = rng.normal(size=800) + 0.3 * y
    auc, p = auc_above_chance(y, scores)
    assert auc == pytest.approx(roc_auc_score(y, scores))
    expected = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater", method="asymptotic", use_continuity=False).pvalue
    assert p == pytest.approx(expected, rel=1e-6)
    X = _related(4000, 7)
    new = np.zeros(len(X), bool)
    new[3000:] = True
    X.loc[new, ["a", "b"]] = X.loc[new, ["b", "a"]].to_numpy()
    _, summary = adversarial_check(X, new, ~new, [], CheckSettings(), threads=1)
    at = CheckSettings(multivariate_auc=summary["auc"] - 5e-5, multivariate_block_auc=1.0)  # the summary rounds to 4 places
    above = CheckSettings(multivariate_auc=summary["auc"] + 5e-5, multivariate_block_auc=1.0)
    assert len(adversarial_check(X, new, ~new, [], at, threads=1)[0]) == 1
    assert adversarial_check(X, new, ~new, [], above, threads=1)[0] == []


def test_the_slice_drop_threshold_is_inclusive():
    X, y, cand, champ = _scores()
    e = X.region.to_numpy() == "e"
    drop = roc_auc_score(y[e], champ[e]) - roc_auc_score(y[e], cand[e])
    assert slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings(slice_min_drop=drop - 1e-9))[0] != []
    assert slice_gate(X, y, cand, champ, ["region"], ["region"], CheckSettings(slice_min_drop=drop + 1e-6))[0] == []


def test_a_classifier_that_cannot_train_skips_the_check_instead_of_failing_the_run():
    X = pd.DataFrame({"a": np.ones(1000), "b": np.zeros(1000)})  # CatBoost refuses constant features
    new = np.zeros(1000, bool)
    new[700:] = True
    found, summary = adversarial_check(X, new, ~new, [], CheckSettings(), threads=1)
    assert found == [] and "classifier failed" in summary["note"]
