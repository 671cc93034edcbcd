"""The rules that guard a user's data and decisions, each at its threshold and in both directions.

Every expected value here is computed in the test (by hand, by a formula written out, by
scikit-learn or scipy), never by the function under test. Each test names the rule it
guards; docs/contributing.md says how to check that a test bites (mutation testing).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, write_csv
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from retraining.data.dataset import load_dataset
from retraining.guard.checks import drift_findings, duplicate_checks, label_checks, value_checks
from retraining.guard.findings import CheckSettings
from retraining.guard.ledger import load_ledger, make_ledger, split_rows
from retraining.rules import DeployRule, decide

DEFAULTS = CheckSettings()


def cohens_h(p1: float, p0: float) -> float:
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))


def two_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float:
    """Two-sided p-value of the pooled two-proportion z test, with scipy's normal tail."""
    pooled = (x0 + x1) / (n0 + n1)
    z = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    return 2 * norm.sf(abs(z))


def labels(n: int, positives: int) -> np.ndarray:
    y = np.zeros(n, int)
    y[:positives] = 1
    return y


TRAINING = {"rows": 10_000, "positives": 2_600}  # 26 % positive in training


# -- label rate: falls as well as rises ------------------------------------------------------
@pytest.mark.parametrize(("positives", "direction"), [(60, "fall"), (252, "rise")])
def test_the_label_rate_is_flagged_when_it_falls_as_well_as_when_it_rises(positives, direction):
    """600 new rows at 10 % positive against 26 % in training must block, as 42 % does (issue #25, bug 2)."""
    n = 600
    h = cohens_h(positives / n, 0.26)
    assert abs(h) > 0.2 and two_proportion_p(positives, n, 2600, 10_000) < 0.001  # both gates pass, by the formulas
    found = label_checks(labels(n, positives), TRAINING, DEFAULTS)
    assert [f.name for f in found] == ["label_rate"] and found[0].severity == "block"
    assert (found[0].numbers["cohens_h"] < 0) == (direction == "fall")


def _rate_at_h(h: float, p0: float) -> float:
    """The rate whose Cohen's h against p0 is h (the formula inverted)."""
    return math.sin(math.asin(math.sqrt(p0)) + h / 2) ** 2


@pytest.mark.parametrize("sign", [-1, 1])
@pytest.mark.parametrize(("h", "flagged"), [(0.19, False), (0.21, True)])
def test_the_label_rate_effect_threshold_just_under_and_just_over(sign, h, flagged):
    """Cohen's h 0.19 passes, 0.21 blocks (threshold 0.2), either way; n is large so p is tiny."""
    n = 40_000
    positives = round(n * _rate_at_h(sign * h, 0.26))
    assert abs(abs(cohens_h(positives / n, 0.26)) - h) < 0.001
    assert two_proportion_p(positives, n, 2600, 10_000) < 1e-6
    assert bool(label_checks(labels(n, positives), TRAINING, DEFAULTS)) == flagged


@pytest.mark.parametrize(("positives", "flagged"), [(10, True), (14, False)])
def test_the_label_rate_needs_significance_as_well(positives, flagged):
    """100 rows at 10 % (p < 0.001) blocks; at 14 % the effect is large (h = -0.30) but p = 0.006: no finding."""
    p = two_proportion_p(positives, 100, 2600, 10_000)
    assert abs(cohens_h(positives / 100, 0.26)) > 0.3
    assert (p < 0.001) == flagged
    assert bool(label_checks(labels(100, positives), TRAINING, DEFAULTS)) == flagged


def test_fewer_rows_than_min_column_rows_are_not_judged_on_their_label_rate():
    assert label_checks(labels(99, 0), TRAINING, DEFAULTS) == []  # 99 < 100 rows
    assert [f.name for f in label_checks(labels(100, 0), TRAINING, DEFAULTS)] == ["labels_one_class"]


@pytest.mark.parametrize(("rows", "flagged"), [(200, False), (300, True)])
def test_all_labels_negative_blocks_only_when_unlikely_at_the_training_rate(rows, flagged):
    """At a 3 % training rate, 300 negative rows happen with chance 0.97**300 = 1.1e-4 (< 0.001): blocks; 200: 2.3e-3."""
    training = {"rows": 10_000, "positives": 300}
    chance = 0.97**rows
    assert (chance < 0.001) == flagged
    found = label_checks(labels(rows, 0), training, DEFAULTS)
    assert [f.name for f in found] == (["labels_one_class"] if flagged else [])
    if flagged:
        assert found[0].numbers["p_value"] == pytest.approx(chance, rel=1e-2) and "negative" in found[0].message


def test_all_labels_positive_blocks_too():
    found = label_checks(labels(300, 300), {"rows": 10_000, "positives": 9_700}, DEFAULTS)  # 97 % positive in training
    assert [f.name for f in found] == ["labels_one_class"] and "positive" in found[0].message


# -- drift --------------------------------------------------------------------------------
@pytest.mark.parametrize(("psi", "flagged"), [(0.24, False), (0.25, False), (0.26, True), (3.0, True)])
def test_drift_warns_above_a_psi_of_025(psi, flagged):
    """The drift threshold is PSI > 0.25 (the standard 'significant' band); raised tenfold, 0.26 would pass."""
    drift = {"new_rows": None, "features": {"x": {"psi": psi}}}
    found = drift_findings(drift, DEFAULTS)
    assert [f.name for f in found] == (["drift"] if flagged else [])


def test_drift_on_new_rows_judges_their_psi_not_the_whole_files():
    drift = {"new_rows": 600, "features": {"a": {"psi": 0.05, "psi_new": 0.3}, "b": {"psi": 0.4, "psi_new": 0.1}}}
    found = drift_findings(drift, DEFAULTS)
    assert [f.columns for f in found] == [["a"]] and "on the 600 new rows" in found[0].message
    assert drift_findings(drift, DEFAULTS, skip={"a"}) == []


# -- a re-sent batch: at 20 % --------------------------------------------------------------
def _resent_night(tmp_path, copies: int, new: int = 500, old: int = 1000):
    """Yesterday: ``old`` rows. Today: those plus ``new`` rows, ``copies`` of them repeats of yesterday's rows."""
    before = make_frame(old, seed=1)
    fresh = make_frame(new - copies, seed=2, start_id=old)
    today = pd.concat([before, fresh, before.iloc[:copies]], ignore_index=True)
    previous = make_ledger("v1.0.0", load_dataset(write_csv(tmp_path / "before.csv", before.drop(columns="customer_id"))))
    ds = load_dataset(write_csv(tmp_path / "today.csv", today.drop(columns="customer_id")))
    rows = split_rows(ds, previous)
    assert rows.counts["new"] == new and rows.counts["resent"] == copies  # the set-up itself, counted by hand
    return duplicate_checks(ds, rows, DEFAULTS)


@pytest.mark.parametrize(("copies", "flagged"), [(95, False), (100, True), (105, True)])
def test_a_resent_batch_blocks_from_20_percent_of_the_new_rows(tmp_path, copies, flagged):
    """95 of 500 new rows re-sent (19 %) passes; 100 (20 %) and 105 (21 %) block."""
    found = _resent_night(tmp_path, copies)
    assert [f.name for f in found] == (["resent_batch"] if flagged else [])
    if flagged:
        assert found[0].severity == "block" and found[0].numbers["share"] == pytest.approx(copies / 500)


@pytest.mark.parametrize(("copies", "flagged"), [(19, False), (20, True)])
def test_a_resent_batch_needs_at_least_20_rows(tmp_path, copies, flagged):
    """Of 50 new rows, 19 re-sent (38 %) is too few rows to call a batch; 20 is one."""
    found = _resent_night(tmp_path, copies, new=50)
    assert [f.name for f in found] == (["resent_batch"] if flagged else [])


# -- per-column checks: missing share, range, new categories ---------------------------------
NUMERIC_REF = {"kind": "numeric", "missing": 0.05, "q01": 0.0, "q99": 1.0, "min": -0.1, "max": 1.1, "outside": 0.02}


def _numeric(n_inside: int, below: int = 0, above: int = 0, missing: int = 0) -> pd.DataFrame:
    values = np.r_[np.linspace(0.05, 0.95, n_inside), np.full(below, -5.0), np.full(above, 5.0), np.full(missing, np.nan)]
    return pd.DataFrame({"x": values})


@pytest.mark.parametrize(("missing", "flagged"), [(240, False), (260, True)])
def test_a_missing_share_rising_by_02_warns(missing, flagged):
    """Training 5 % missing; today 24 % (+0.19) passes, 26 % (+0.21) warns."""
    found = value_checks(_numeric(1000 - missing, missing=missing), [], {"x": NUMERIC_REF}, DEFAULTS)
    assert [f.name for f in found] == (["missing_rate"] if flagged else [])


def test_a_missing_share_that_falls_is_no_finding():
    assert value_checks(_numeric(1000), [], {"x": {**NUMERIC_REF, "missing": 0.6}}, DEFAULTS) == []


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize(("outside", "flagged"), [(119, False), (121, True)])
def test_values_outside_the_training_range_block_from_10_points_over_training(side, outside, flagged):
    """Training had 2 % outside its 1st-99th percentiles; 11.9 % today (+9.9 points) passes, 12.1 % blocks, on either side."""
    frame = _numeric(1000 - outside, **{side: outside})
    found = value_checks(frame, [], {"x": NUMERIC_REF}, DEFAULTS)
    assert [f.name for f in found] == (["out_of_range"] if flagged else [])


def _categories(n: int, unseen: dict[str, int]) -> pd.DataFrame:
    values = [v for v, k in unseen.items() for _ in range(k)]
    return pd.DataFrame({"c": ["red"] * (n - len(values)) + values})


CAT_REF = {"kind": "categorical", "missing": 0.0, "known": ["red", "green"], "shares": {"red": 0.5, "green": 0.5}}


@pytest.mark.parametrize(
    ("unseen", "flagged"),
    [
        ({"teal": 19}, False),  # 1.9 % of 1000 rows
        ({"teal": 20}, True),  # 2 %
        ({f"c{i}": 1 for i in range(30)}, False),  # 3 %, but no never-seen category has 10 rows
        ({"teal": 10, **{f"c{i}": 1 for i in range(15)}}, True),  # 2.5 %, the largest has 10 rows
    ],
)
def test_never_seen_categories_warn_from_2_percent_with_one_of_10_rows(unseen, flagged):
    found = value_checks(_categories(1000, unseen), ["c"], {"c": CAT_REF}, DEFAULTS)
    assert [f.name for f in found] == (["new_categories"] if flagged else [])


# -- the deploy rule and its tie ---------------------------------------------------------
class Comparison:
    """What decide() reads from a DeLong comparison: the one-sided p-value and its z (p = 1 - Phi(z), by scipy)."""

    def __init__(self, p: float) -> None:
        self.p_value_one_sided = p
        self.z = float(norm.isf(p))


@pytest.mark.parametrize(
    ("candidate", "champion", "deploy"),
    [(0.80, 0.80, True), (0.8001, 0.80, True), (0.7999, 0.80, False), (0.5, None, True)],
)
def test_the_deploy_rule_is_auc_new_at_least_auc_old_and_a_tie_deploys(candidate, champion, deploy):
    ok, reason = decide(DeployRule(), candidate, champion, None)
    assert ok is deploy
    if champion is not None and candidate == champion:
        assert ": equal" in reason
    elif champion is not None:
        assert (": better" if deploy else ": worse") in reason


@pytest.mark.parametrize(("delta", "deploy"), [(0.0099, False), (0.01, True), (0.0101, True)])
def test_min_improvement_is_reached_at_exactly_the_margin(delta, deploy):
    champion = 0.75
    ok, reason = decide(DeployRule(min_improvement=0.01), round(champion + delta, 6), champion, None)
    assert ok is deploy and (deploy or "below --min-improvement" in reason)


def test_min_improvement_on_a_worse_candidate_says_worse():
    ok, reason = decide(DeployRule(min_improvement=0.01), 0.70, 0.75, None)
    assert not ok and "0.7000 vs 0.7500: worse" in reason


@pytest.mark.parametrize(("auc", "deploy"), [(0.6999, False), (0.70, True)])
def test_min_auc_is_a_floor_even_without_a_champion(auc, deploy):
    ok, reason = decide(DeployRule(min_auc=0.70), auc, None, None)
    assert ok is deploy and (deploy or "below the floor" in reason)


@pytest.mark.parametrize(("p", "deploy"), [(0.049, True), (0.05, False), (0.2, False)])
def test_require_significance_needs_p_below_alpha(p, deploy):
    ok, reason = decide(DeployRule(require_significance=True), 0.82, 0.80, Comparison(p))
    assert ok is deploy and (deploy or "not significantly better" in reason)


def test_require_significance_without_a_comparison_keeps_the_champion():
    ok, reason = decide(DeployRule(require_significance=True), 0.9, 0.8, None)
    assert not ok and "could not be scored" in reason


# -- the champion is never scored on its own training rows --------------------------------
def _id_keys(ids) -> np.ndarray:
    """The row key with --id-column, as retraining/data/keys.py documents it: a keyed hash of the id's text."""
    return pd.util.hash_array(np.array([str(i) for i in ids], dtype=object), hash_key="catboost-retrain", categorize=False)


def test_holdout_rows_the_champion_trained_on_are_left_out_and_its_auc_is_scored_on_the_rest(tmp_path):
    """Bug 3 of issue #25. Night 1 splits by time (the newest 20 % held out); night 2 by id hash, with the same row key.

    So about 80 % of night 2's holdout are rows the champion trained on: they must be dropped,
    and the champion's AUC must be the one scikit-learn computes on the rest.
    """
    from catboost import CatBoostClassifier

    frame = make_frame(1000, seed=3)
    frame["t"] = np.arange(1000)  # the newest 200 rows (t >= 800) are night 1's holdout
    write_csv(tmp_path / "data.csv", frame)
    first = retrainer(tmp_path, id_column="customer_id", time_column="t", report=False).retrain()
    trained_ids = set(frame.customer_id[frame.t < 800])
    second = retrainer(tmp_path, id_column="customer_id", drop_columns=["t"], report=False).retrain(force=True)
    holdout_keys = set(load_ledger(tmp_path / "models" / "ledgers" / f"{second.version}.npz").holdout.tolist())
    in_holdout = np.array([k in holdout_keys for k in _id_keys(frame.customer_id).tolist()])
    overlap = in_holdout & frame.customer_id.isin(trained_ids).to_numpy()
    remaining = in_holdout & ~overlap
    assert overlap.sum() > 100 and (frame.target[remaining] == 1).sum() >= 5 and (frame.target[remaining] == 0).sum() >= 5
    assert second.holdout_dropped_trained_on == int(overlap.sum())
    champion = CatBoostClassifier()
    champion.load_model(first.model_path)
    rest = frame[remaining]
    expected = roc_auc_score(rest.target, champion.predict_proba(rest[list(champion.feature_names_)])[:, 1])
    assert second.champion_auc == pytest.approx(expected, abs=1e-6)


# -- the champion falling below its deployed AUC ------------------------------------------
def _hanley_mcneil(auc: float, pos: int, neg: int) -> float:
    """The variance of an AUC by Hanley & McNeil (1982), written out here."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return (auc * (1 - auc) + (pos - 1) * (q1 - auc**2) + (neg - 1) * (q2 - auc**2)) / (pos * neg)


def _today(n: int, shift: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    scores = np.r_[rng.normal(shift, 1, n), rng.normal(0, 1, n)]
    return y, scores, roc_auc_score(y, scores)


def test_a_champion_clearly_worse_than_when_deployed_is_a_warning_with_its_numbers():
    from retraining.guard.checks import champion_drop

    y, scores, now = _today(100)
    deployed = {"candidate": {"roc_auc": 0.9}, "holdout_rows": 400, "holdout_positives": 150}
    found = champion_drop(y, scores, deployed, version="v1.2.0")
    se = math.sqrt(_hanley_mcneil(now, 100, 100) + _hanley_mcneil(0.9, 150, 250))
    p = norm.sf((0.9 - now) / se)
    assert p < 0.01 and 0.9 - now >= 0.02
    assert (found.name, found.severity, found.columns) == ("champion_drop", "warn", [])
    assert found.numbers == {
        "auc_deployed": 0.9,
        "auc_today": round(now, 4),
        "drop": round(0.9 - now, 4),
        "p_value": float(f"{p:.3g}"),
        "holdout_rows": 200,
    }
    assert found.message == (f"v1.2.0's ROC-AUC fell from 0.9000 (when deployed) to {now:.4f} on today's holdout (p = {p:.2g}): the data or the labels changed")
    assert champion_drop(y, scores, deployed).message.startswith("the champion's ROC-AUC fell")
    no_counts = champion_drop(y, scores, {"candidate": {"roc_auc": 0.9}})  # an old entry: only today's variance
    assert no_counts.numbers["p_value"] == float(f"{norm.sf((0.9 - now) / math.sqrt(_hanley_mcneil(now, 100, 100))):.3g}")


@pytest.mark.parametrize(("drop", "flagged"), [(0.019, False), (0.021, True)])
def test_a_champion_drop_counts_from_002(drop, flagged):
    from retraining.guard.checks import champion_drop

    y, scores, now = _today(20_000, shift=0.8)  # so many rows that p is tiny for either drop
    deployed = {"candidate": {"roc_auc": now + drop}, "holdout_rows": 40_000, "holdout_positives": 20_000}
    se = math.sqrt(_hanley_mcneil(now, 20_000, 20_000) + _hanley_mcneil(now + drop, 20_000, 20_000))
    assert norm.sf(drop / se) < 0.01
    assert (champion_drop(y, scores, deployed) is not None) == flagged


def test_a_champion_drop_needs_significance_and_both_classes():
    from retraining.guard.checks import champion_drop

    y, scores, now = _today(15, shift=1.0, seed=2)
    deployed = {"candidate": {"roc_auc": now + 0.05}, "holdout_rows": 30, "holdout_positives": 15}
    assert norm.sf(0.05 / math.sqrt(_hanley_mcneil(now, 15, 15) + _hanley_mcneil(now + 0.05, 15, 15))) > 0.01
    assert champion_drop(y, scores, deployed) is None  # 0.05 lower on 30 rows: not significant
    big = {"candidate": {"roc_auc": 0.99}, "holdout_rows": 400, "holdout_positives": 200}
    y, scores, _ = _today(100)
    assert champion_drop(np.ones(200, int), scores, big) is None  # one class today: no AUC
    assert champion_drop(np.zeros(200, int), scores, big) is None
    assert champion_drop(y, scores, {"holdout_rows": 400}) is None  # no deployed AUC recorded
    off = CheckSettings.from_json({"severity": {"champion_drop": "off"}})
    assert champion_drop(y, scores, big) is not None and champion_drop(y, scores, big, settings=off) is None
    blocking = CheckSettings.from_json({"severity": {"champion_drop": "block"}})
    assert champion_drop(y, scores, big, settings=blocking).severity == "block"
    y, scores, now = _today(15, shift=1.0, seed=2)
    lax = CheckSettings.from_json({"champion_drop_p_value": 0.5})
    assert champion_drop(y, scores, deployed, settings=lax) is not None  # the p-value setting is the one used


# -- run_checks: what it judges, and columns gone -------------------------------------------
def _reference(tmp_path, frame: pd.DataFrame) -> dict:
    from retraining.guard.drift import profile

    ds = load_dataset(write_csv(tmp_path / "ref.csv", frame))
    return profile(ds.X, ds.cat_features, ds.y)


@pytest.mark.parametrize(("new", "basis", "judged"), [(199, "whole file", 1199), (200, "new rows", 200), (1000, "whole file", 1000)])
def test_the_checks_judge_the_new_rows_from_200_else_the_whole_file(tmp_path, new, basis, judged):
    from retraining.guard.checks import run_checks

    old = make_frame(1000, seed=1)
    today = pd.concat([old, make_frame(new, seed=2, start_id=1000)], ignore_index=True) if new < 1000 else make_frame(1000, seed=3)
    previous = make_ledger("v1.0.0", load_dataset(write_csv(tmp_path / "old.csv", old.drop(columns="customer_id"))))
    ds = load_dataset(write_csv(tmp_path / "today.csv", today.drop(columns="customer_id")))
    report = run_checks(ds, _reference(tmp_path, old.drop(columns="customer_id")), split_rows(ds, previous), reference_version="v1.0.0")
    assert (report.basis, report.rows_judged) == (basis, judged)
    assert [f.name for f in report.findings] == []  # the same process: nothing to report
    assert report.drift["reference"] == "v1.0.0"


def test_columns_gone_block_unless_the_user_dropped_them_and_the_mode_decides(tmp_path):
    from retraining.guard.checks import run_checks

    old = make_frame(600, seed=1).drop(columns="customer_id")
    reference = _reference(tmp_path, old)
    renamed = old.rename(columns={"x2": "x2_new", "c2": "c2_new"})
    ds = load_dataset(write_csv(tmp_path / "renamed.csv", renamed))
    found = run_checks(ds, reference, None).findings
    gone = [f for f in found if f.name == "column_gone"]
    assert len(gone) == 1 and gone[0].severity == "block" and gone[0].columns == ["x2", "c2"]
    assert gone[0].numbers == {"columns": {"x2": "not in the data", "c2": "not in the data"}}
    assert gone[0].message == "2 column(s) the production model trained on are gone ('x2': not in the data; 'c2': not in the data): renamed or broken upstream?"
    dropped = load_dataset(write_csv(tmp_path / "same.csv", old), drop_columns=["x2", "c2"])
    assert [f.name for f in run_checks(dropped, reference, None).findings if f.name == "column_gone"] == []
    assert {f.severity for f in run_checks(ds, reference, None, mode="warn").findings} == {"warn"}
    assert run_checks(ds, reference, None, mode="off").to_json() == {"basis": "off", "rows_judged": 0, "findings": []}
    with pytest.raises(Exception, match="--data-checks must be one of block, warn, off"):
        run_checks(ds, reference, None, mode="loud")


def test_text_in_a_number_column_and_an_empty_column_block(tmp_path):
    old = make_frame(600, seed=1).drop(columns="customer_id")
    reference = _reference(tmp_path, old)
    bad = old.assign(x1=np.where(old.x1 > 0, "high", "low"), x2=np.nan)
    ds = load_dataset(write_csv(tmp_path / "bad.csv", bad))
    found = {f.name: f for f in value_checks(ds.X, ds.cat_features, reference["features"], DEFAULTS)}
    assert found["kind_changed"].columns == ["x1"] and found["kind_changed"].numbers == {"was": "numeric", "now": "categorical"}
    assert found["kind_changed"].severity == "block"
    assert found["kind_changed"].message == "column 'x1' was numeric in training and is categorical now (text in a number column?)"
    empty = pd.DataFrame({"x2": np.full(150, np.nan)})
    assert [(f.name, f.columns, f.numbers) for f in value_checks(empty, [], reference["features"], DEFAULTS)] == [("all_missing", ["x2"], {"rows": 150})]
    assert value_checks(empty.iloc[:99], [], reference["features"], DEFAULTS) == []  # under 100 rows: not judged


def _id_night(tmp_path, extra: pd.DataFrame):
    old = make_frame(1000, seed=1)
    previous = make_ledger("v1.0.0", load_dataset(write_csv(tmp_path / "old.csv", old), id_column="customer_id"))
    today = pd.concat([old, make_frame(200, seed=2, start_id=5000), extra], ignore_index=True)
    ds = load_dataset(write_csv(tmp_path / "today.csv", today), id_column="customer_id")
    return old, duplicate_checks(ds, split_rows(ds, previous), DEFAULTS)


def test_with_an_id_column_exact_copies_are_a_resent_batch(tmp_path):
    old = make_frame(1000, seed=1)
    _, found = _id_night(tmp_path, old.iloc[:100])  # 100 exact copies among 300 new rows: 33 %
    assert [(f.name, f.severity, f.columns) for f in found] == [("resent_batch", "block", ["customer_id"])]
    assert found[0].numbers == {"resent_rows": 100, "new_rows": 300, "share": round(100 / 300, 4), "usual_share": 0.0}
    assert found[0].message == "100 of the 300 new rows repeat rows the previous version already had (ids of 'customer_id'): was a batch sent again?"


def test_with_an_id_column_a_customers_next_row_is_a_repeated_id_not_a_resent_batch(tmp_path):
    next_rows = make_frame(100, seed=9).assign(customer_id=np.arange(100))  # known ids, new values
    _, found = _id_night(tmp_path, next_rows)
    assert [(f.name, f.severity, f.columns) for f in found] == [("repeated_ids", "warn", ["customer_id"])]
    assert found[0].numbers == {"repeated_rows": 100, "new_rows": 300}
    assert found[0].message == "100 of the 300 new rows repeat an id of 'customer_id' (of each other or of earlier rows)"
    twice = make_frame(10, seed=11, start_id=9000)
    _, found = _id_night(tmp_path, pd.concat([twice, twice.assign(x1=twice.x1 + 1)]))  # ids repeated among the new rows only
    assert [(f.name, f.numbers) for f in found] == [("repeated_ids", {"repeated_rows": 10, "new_rows": 220})]
    _, found = _id_night(tmp_path, make_frame(10, seed=12, start_id=9500))
    assert found == []


# -- each finding word for word (the numbers a report and a notification show) --------------
def test_label_findings_word_for_word():
    p1, p0 = 0.1, 0.26
    pooled = (2600 + 60) / 10_600
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / 10_000 + 1 / 600))
    p, h = 2 * norm.sf(abs(z)), cohens_h(p1, p0)
    f = label_checks(labels(600, 60), TRAINING, DEFAULTS)[0]
    assert f.to_json() == {
        "name": "label_rate",
        "severity": "block",
        "columns": [],
        "numbers": {"rate": 0.1, "rows": 600, "positives": 60, "training_rate": 0.26, "z": round(z, 2), "p_value": float(f"{p:.3g}"), "cohens_h": round(h, 3)},
        "message": f"positive rate 10.0% in 600 rows vs 26.0% in training (p = {p:.2g}, Cohen's h {h:+.2f}): check the label feed",
    }
    chance = 0.97**300
    g = label_checks(labels(300, 0), {"rows": 10_000, "positives": 300}, DEFAULTS)[0]
    assert g.to_json() == {
        "name": "labels_one_class",
        "severity": "block",
        "columns": [],
        "numbers": {"rate": 0.0, "rows": 300, "positives": 0, "training_rate": 0.03, "p_value": float(f"{chance:.3g}")},
        "message": f"all 300 rows are negative (training: 3.0% positive; p = {chance:.2g}): are labels missing or defaulted?",
    }
    assert label_checks(labels(300, 0), {"rows": 0, "positives": 0}, DEFAULTS) == []  # no training counts: nothing to compare
    assert label_checks(labels(300, 0), {"rows": 10_000, "positives": 0}, DEFAULTS) == []  # training had one class
    assert label_checks(labels(300, 0), {"rows": 10_000, "positives": 10_000}, DEFAULTS) == []


def test_range_and_drift_findings_word_for_word():
    frame = _numeric(879, above=121)
    f = value_checks(frame, [], {"x": NUMERIC_REF}, DEFAULTS)[0]
    median = float(np.median(frame.x))
    assert f.to_json() == {
        "name": "out_of_range",
        "severity": "block",
        "columns": ["x"],
        "numbers": {"share_outside": 0.121, "training_share_outside": 0.02, "low": 0.0, "high": 1.0, "median": median},
        "message": "12% of values of 'x' lie outside its training range [0, 1] (1st-99th percentile; training: 2%): a unit change or swapped columns?",
    }
    flat = {**NUMERIC_REF, "q01": 0.5, "q99": 0.5, "min": 0.0, "max": 1.0}  # a column whose percentiles meet: the min-max range
    assert value_checks(_numeric(1000), [], {"x": flat}, DEFAULTS) == []
    old = {k: v for k, v in NUMERIC_REF.items() if k != "outside"}  # an older profile: 2 % outside is assumed
    assert [x.name for x in value_checks(_numeric(879, below=121), [], {"x": old}, DEFAULTS)] == ["out_of_range"]
    assert value_checks(_numeric(881, below=119), [], {"x": old}, DEFAULTS) == []
    drift = {"new_rows": None, "features": {"a": {"psi": 0.1}, "c": {"psi": 0.5, "new_categories": ["p", "q", "r", "s", "t", "u"]}}}
    assert [d.to_json() for d in drift_findings(drift, DEFAULTS)] == [
        {
            "name": "drift",
            "severity": "warn",
            "columns": ["c"],
            "numbers": {"psi": 0.5, "psi_whole_file": 0.5, "new_categories": ["p", "q", "r", "s", "t", "u"]},
            "message": "'c' shifted: PSI 0.50 on the whole file; never-seen: 'p', 'q', 'r', 's', 't'",
        }
    ]
    plain = drift_findings({"new_rows": None, "features": {"n": {"psi": 0.3}}}, DEFAULTS)[0]
    assert plain.message == "'n' shifted: PSI 0.30 on the whole file" and plain.numbers["new_categories"] == []
    assert drift_findings({"new_rows": None}, DEFAULTS) == []


def test_missing_and_category_findings_word_for_word():
    f = value_checks(_numeric(740, missing=260), [], {"x": NUMERIC_REF}, DEFAULTS)[0]
    assert f.to_json() == {
        "name": "missing_rate",
        "severity": "warn",
        "columns": ["x"],
        "numbers": {"missing_share": 0.26, "training_missing_share": 0.05, "rows": 1000},
        "message": "column 'x' is missing in 26% of rows (training: 5%)",
    }
    g = value_checks(_categories(1000, {"teal": 20, **{f"c{i}": 1 for i in range(6)}}), ["c"], {"c": CAT_REF}, DEFAULTS)[0]
    assert g.to_json() == {
        "name": "new_categories",
        "severity": "warn",
        "columns": ["c"],
        "numbers": {"share": 0.026, "rows": 26, "categories": {"teal": 20, **{f"c{i}": 1 for i in range(6)}}},
        "message": "3% of rows have never-seen categories in 'c': 'teal' (20), 'c0' (1), 'c1' (1), 'c2' (1), 'c3' (1) and 2 more (renamed?)",
    }
