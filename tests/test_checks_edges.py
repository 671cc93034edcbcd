"""The data checks at their edges: the guards before each judgement, each number's rounding,
the long lists in a message, the severity of each finding.

Written for the mutants mutmut left alive in ``retraining/guard/checks.py`` (bench/MUTATION.md).
Every expected value is written by hand or computed here by a formula, never by the function
under test; where a case only bites with a number of enough digits, the test asserts that too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from retraining.data.dataset import MISSING_CATEGORY, Dataset
from retraining.guard.checks import champion_drop, duplicate_checks, gone_columns, id_like_columns, infinite_values, label_checks
from retraining.guard.findings import CheckSettings
from retraining.guard.ledger import RowSplit

DEFAULTS = CheckSettings()


def labels(n: int, positives: int) -> np.ndarray:
    y = np.zeros(n, int)
    y[:positives] = 1
    return y


# -- label_checks: what is not judged, and each number to its digits ------------------------------
def test_a_label_profile_without_usable_counts_is_not_judged():
    assert label_checks(labels(600, 60), {"positives": 5}, DEFAULTS) == []  # no training row count
    assert label_checks(labels(600, 300), {"rows": 10_000}, DEFAULTS) == []  # no positives recorded: one class
    assert label_checks(labels(600, 60), {"rows": 0, "positives": 5}, DEFAULTS) == []  # a damaged profile: 0 rows
    assert label_checks(labels(600, 60), {"rows": 10_000, "positives": 0}, DEFAULTS) == []  # training had one class
    assert label_checks(labels(0, 0), {"rows": 10_000, "positives": 2_600}, CheckSettings(min_column_rows=0)) == []  # nothing to judge


def test_one_positive_in_training_is_two_classes():
    """1 positive of 10,000 in training; 300 rows all positive today: P = (1e-4)**300, far below 0.001."""
    found = label_checks(labels(300, 300), {"rows": 10_000, "positives": 1}, DEFAULTS)
    assert [(f.name, f.severity) for f in found] == [("labels_one_class", "block")]
    assert found[0].numbers == {"rate": 1.0, "rows": 300, "positives": 300, "training_rate": 0.0001, "p_value": 0.0}  # 1e-1200 is 0.0 in a float
    assert found[0].message == "all 300 rows are positive (training: 0.0% positive; p = 0): are labels missing or defaulted?"


def test_label_rate_numbers_keep_their_digits():
    """61 of 600 (0.101667) against 2,600 of 9,999 (0.260026): rates to 4 digits, z to 2, h to 3."""
    x1, n1, x0, n0 = 61, 600, 2_600, 9_999
    p1, p0 = x1 / n1, x0 / n0
    pooled = (x0 + x1) / (n0 + n1)
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))
    p = 2 * norm.sf(abs(z))
    assert round(p1, 4) != round(p1, 5) and round(p0, 4) != round(p0, 5) and round(z, 2) != round(z, 3) and round(h, 3) != round(h, 4)
    f = label_checks(labels(n1, x1), {"rows": n0, "positives": x0}, DEFAULTS)[0]
    expected = {"rate": 0.1017, "rows": 600, "positives": 61, "training_rate": 0.26, "z": round(z, 2), "p_value": float(f"{p:.3g}")}
    assert f.numbers == {**expected, "cohens_h": round(h, 3)}
    assert f.numbers["training_rate"] == round(p0, 4) == 0.26
    assert f.message == f"positive rate 10.2% in 600 rows vs 26.0% in training (p = {p:.2g}, Cohen's h {h:+.2f}): check the label feed"


def test_one_class_numbers_keep_their_digits():
    """All 300 negative at a 3.013 % training rate: chance 0.96987**300."""
    chance = (1 - 0.03013) ** 300
    f = label_checks(labels(300, 0), {"rows": 100_000, "positives": 3_013}, DEFAULTS)[0]
    assert f.numbers == {"rate": 0.0, "rows": 300, "positives": 0, "training_rate": 0.0301, "p_value": float(f"{chance:.3g}")}
    assert f.message == f"all 300 rows are negative (training: 3.0% positive; p = {chance:.2g}): are labels missing or defaulted?"


def test_the_one_class_chance_must_be_below_the_threshold():
    """One negative row at a 50 % training rate: chance exp(log1p(-0.5)) = 0.5 exactly; a threshold of 0.5 is not passed."""
    assert math.exp(math.log1p(-0.5)) == 0.5
    one_row = CheckSettings(min_column_rows=0, label_p_value=0.5)
    half = {"rows": 10, "positives": 5}
    assert label_checks(labels(1, 0), half, one_row) == []
    assert [f.name for f in label_checks(labels(1, 0), half, CheckSettings(min_column_rows=0, label_p_value=0.51))] == ["labels_one_class"]


def test_the_label_rate_gates_are_strict_at_p_and_at_h():
    """26 of 100 against 2,600 of 10,000: the same rate, so z = 0, p = 1 and h = 0 exactly."""
    same, training = labels(100, 26), {"rows": 10_000, "positives": 2_600}
    assert label_checks(same, training, CheckSettings(label_p_value=1.0, label_effect=0.0)) == []  # p = 1 is not below 1
    found = label_checks(same, training, CheckSettings(label_p_value=1.5, label_effect=0.0))  # h = 0 reaches an effect of 0
    assert [(f.name, f.numbers["z"], f.numbers["p_value"], f.numbers["cohens_h"]) for f in found] == [("label_rate", 0.0, 1.0, 0.0)]


# -- champion_drop: the counts it was deployed with, a zero standard error, its numbers -----------------
def _today(pos: int, neg: int, shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(pos, int), np.zeros(neg, int)]
    scores = np.r_[rng.normal(shift, 1, pos), rng.normal(0, 1, neg)]
    return y, scores, float(roc_auc_score(y, scores))


def _hanley_mcneil(auc: float, pos: int, neg: int) -> float:
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return (auc * (1 - auc) + (pos - 1) * (q1 - auc**2) + (neg - 1) * (q2 - auc**2)) / (pos * neg)


@pytest.mark.parametrize(
    ("counts", "then_counts"),
    [
        ({"holdout_rows": 400}, None),  # no positives recorded: today's variance alone
        ({"holdout_rows": 400, "holdout_positives": 0}, None),
        ({"holdout_rows": 200, "holdout_positives": 200}, None),  # no negatives then
        ({"holdout_rows": 201, "holdout_positives": 200}, (200, 1)),  # one negative then: its variance counts
        ({"holdout_rows": 400, "holdout_positives": 150}, (150, 250)),
    ],
)
def test_the_deployed_auc_counts_its_own_variance_only_with_both_classes(counts, then_counts):
    y, scores, now = _today(100, 100, shift=0.8)
    then = 0.9
    variance = _hanley_mcneil(now, 100, 100) + (_hanley_mcneil(then, *then_counts) if then_counts else 0.0)
    p = norm.sf((then - now) / math.sqrt(variance))
    assert 0 < p < 0.5
    found = champion_drop(y, scores, {"candidate": {"roc_auc": then}, **counts}, settings=CheckSettings(champion_drop_p_value=0.5))
    assert found.numbers["p_value"] == float(f"{p:.3g}")


def _perfect(pos: int = 50, neg: int = 50, inverted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores that order the rows perfectly (AUC 1) or perfectly wrong (AUC 0): Hanley-McNeil's variance is 0."""
    y = np.r_[np.ones(pos, int), np.zeros(neg, int)]
    return y, (-y if inverted else y).astype(float)


def test_a_champion_whose_auc_is_known_exactly_has_p_0_when_it_fell():
    """AUC 0 today, 0.9 deployed (no counts): the standard error is 0 and the drop certain: p = 0."""
    assert _hanley_mcneil(0.0, 50, 50) == 0.0 and _hanley_mcneil(1.0, 50, 50) == 0.0
    y, scores = _perfect(inverted=True)
    found = champion_drop(y, scores, {"candidate": {"roc_auc": 0.9}}, version="v2.0.0")
    assert (found.name, found.severity, found.columns) == ("champion_drop", "warn", [])
    assert found.numbers == {"auc_deployed": 0.9, "auc_today": 0.0, "drop": 0.9, "p_value": 0.0, "holdout_rows": 100}
    assert found.message == "v2.0.0's ROC-AUC fell from 0.9000 (when deployed) to 0.0000 on today's holdout (p = 0): the data or the labels changed"
    assert champion_drop(y, scores, {"candidate": {"roc_auc": 0.9}}, settings=CheckSettings(champion_drop_p_value=0.0)) is None  # p 0 is not < 0


def test_a_champion_whose_auc_is_known_exactly_has_p_1_when_it_did_not_fall():
    """AUC 1 today and 1 deployed (both variances 0): no drop, p = 1; seen only with settings that let any p and any drop through."""
    y, scores = _perfect()
    lax = CheckSettings(champion_drop_min=0.0, champion_drop_p_value=1.5)
    found = champion_drop(y, scores, {"candidate": {"roc_auc": 1.0}, "holdout_rows": 100, "holdout_positives": 50}, settings=lax)
    assert found.numbers == {"auc_deployed": 1.0, "auc_today": 1.0, "drop": 0.0, "p_value": 1.0, "holdout_rows": 100}
    assert champion_drop(y, scores, {"candidate": {"roc_auc": 1.0}}, settings=CheckSettings(champion_drop_min=0.0, champion_drop_p_value=1.0)) is None


def test_a_champion_drop_of_exactly_the_minimum_counts():
    """0.25 deployed, 0 today, minimum 0.25 (both exact in binary): the drop reaches the minimum."""
    y, scores = _perfect(inverted=True)
    at = CheckSettings(champion_drop_min=0.25)
    assert champion_drop(y, scores, {"candidate": {"roc_auc": 0.25}}, settings=at).numbers["drop"] == 0.25
    assert champion_drop(y, scores, {"candidate": {"roc_auc": 0.25}}, settings=CheckSettings(champion_drop_min=0.2500001)) is None


def test_champion_drop_numbers_keep_4_digits_and_a_severity_left_out_is_a_warning():
    y, scores, now = _today(30, 70, shift=0.3, seed=4)
    then = 0.912367
    assert round(now, 4) != round(now, 5) and round(then - now, 4) != round(then - now, 5)
    found = champion_drop(y, scores, {"candidate": {"roc_auc": then}}, settings=CheckSettings(severity={}, champion_drop_p_value=0.5))
    assert found.severity == "warn"
    assert (found.numbers["auc_deployed"], found.numbers["auc_today"], found.numbers["drop"]) == (0.9124, round(now, 4), round(then - now, 4))


# -- gone_columns: the user's id and time columns, empty columns, the list of many ---------------------
def _ds(columns: list[str], n: int = 10, *, dropped=None, split=None, missing=None) -> Dataset:
    X = pd.DataFrame({c: np.arange(n, dtype=float) for c in columns})
    return Dataset("memory", "0" * 64, X, labels(n, n // 2), [], np.zeros(n, bool), "1", dropped or {}, split or {}, missing or {})


def test_the_id_and_time_columns_the_user_chose_are_not_gone():
    ref = {"x": {}, "cid": {}, "t": {}}
    assert gone_columns(_ds(["x"], split={"key": {"method": "id", "column": "cid"}, "column": "t"}), ref) == []
    only_id = gone_columns(_ds(["x"], split={"key": {"method": "id", "column": "cid"}}), ref)
    assert [(f.name, f.severity, f.columns) for f in only_id] == [("column_gone", "block", ["t"])]
    only_time = gone_columns(_ds(["x"], split={"column": "t"}), ref)  # no key recorded at all
    assert [f.columns for f in only_time] == [["cid"]]


def test_a_column_left_out_is_gone_only_when_empty_in_every_row():
    ref = {"x": {}, "e": {}, "k": {}}
    ds = _ds(["x"], dropped={"e": "constant", "k": "constant"}, missing={"e": 10, "k": 9})  # e: 10 of 10 rows missing
    found = gone_columns(ds, ref)
    assert [(f.name, f.severity, f.columns, f.numbers) for f in found] == [("column_gone", "block", ["e"], {"columns": {"e": "empty in every row"}})]
    assert found[0].message == "1 column(s) the production model trained on are gone ('e': empty in every row): renamed or broken upstream?"
    assert gone_columns(_ds(["x"], n=1, dropped={"e": "constant"}), {"e": {}}) == []  # one row, no missing count: not empty


@pytest.mark.parametrize(("gone", "more"), [(5, ""), (6, "; and 1 more"), (7, "; and 2 more")])
def test_more_than_five_gone_columns_are_counted_not_listed(gone, more):
    names = [f"g{i}" for i in range(gone)]
    found = gone_columns(_ds(["x"]), {"x": {}, **{n: {} for n in names}})[0]
    shown = "; ".join(f"'g{i}': not in the data" for i in range(5))
    assert found.columns == names
    assert found.message == f"{gone} column(s) the production model trained on are gone ({shown}{more}): renamed or broken upstream?"


def test_a_dataset_without_a_recorded_key_is_judged_by_its_feature_values():
    """30 of 100 new rows re-sent, no key in the split record: a content-key batch (no id column named)."""
    rows = RowSplit(np.ones(100, bool), np.r_[np.ones(30, bool), np.zeros(70, bool)], "keys", {}, "v1.0.0")
    found = duplicate_checks(_ds(["x"], n=100), rows, DEFAULTS)
    assert [(f.name, f.columns, f.numbers) for f in found] == [("resent_batch", [], {"resent_rows": 30, "new_rows": 100, "share": 0.3, "usual_share": 0.0})]
    assert found[0].message == "30 of the 100 new rows repeat rows the previous version already had (feature values): was a batch sent again?"


# -- infinite_values: the share that counts, the list of many --------------------------------------
def _mask(n: int, hits: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[:hits] = True
    return m


def test_infinite_values_word_for_word_and_a_column_without_any_is_not_named():
    found = infinite_values({"a": _mask(10, 1), "b": _mask(10, 0), "c": _mask(10, 3)}, DEFAULTS)
    assert [f.to_json() for f in found] == [
        {
            "name": "infinite_values",
            "severity": "block",
            "columns": ["a", "c"],
            "numbers": {"rows": 10, "infinite_rows": {"a": 1, "c": 3}},
            "message": "infinite values in 'a' (1 of 10 rows), 'c' (3 of 10 rows): a division by zero or overflow upstream? "
            "(raise infinite_share to tolerate some)",
        }
    ]
    assert infinite_values({"b": _mask(10, 0)}, DEFAULTS) == [] and infinite_values({}, DEFAULTS) == []
    assert infinite_values({"e": _mask(0, 0)}, DEFAULTS) == []  # no judged rows


def test_infinite_share_is_a_share_of_the_rows_and_must_be_passed():
    """1 of 10 rows is a share of 0.1: at infinite_share 0.1 it is tolerated, at 0.09 it blocks."""
    assert infinite_values({"a": _mask(10, 1)}, CheckSettings(infinite_share=0.1)) == []
    assert [f.columns for f in infinite_values({"a": _mask(10, 1)}, CheckSettings(infinite_share=0.09))] == [["a"]]
    assert infinite_values({"a": _mask(10, 2)}, CheckSettings(infinite_share=0.5)) == []  # 0.2 of the rows


@pytest.mark.parametrize(("columns", "more"), [(5, ""), (6, " and more"), (7, " and more")])
def test_more_than_five_infinite_columns_are_not_all_listed(columns, more):
    found = infinite_values({f"v{i}": _mask(4, 1) for i in range(columns)}, DEFAULTS)[0]
    shown = ", ".join(f"'v{i}' (1 of 4 rows)" for i in range(5))
    assert found.columns == [f"v{i}" for i in range(columns)]
    assert found.message == f"infinite values in {shown}{more}: a division by zero or overflow upstream? (raise infinite_share to tolerate some)"


# -- id_like_columns: missing values do not count, the 90 % threshold, the numbers ------------------
def _cat(distinct: int, rows: int, missing: int = 0) -> pd.Series:
    values = [f"v{i % distinct}" for i in range(rows)] + [MISSING_CATEGORY] * missing
    return pd.Series(values)


def test_an_id_like_column_word_for_word():
    X = pd.DataFrame({"c": _cat(100, 100, missing=50), "n": np.arange(150.0)})  # n is numeric: never id-like
    found = id_like_columns(X, ["c"], DEFAULTS)
    assert [f.to_json() for f in found] == [
        {
            "name": "id_like",
            "severity": "block",
            "columns": ["c"],
            "numbers": {"distinct": 100, "rows": 100, "distinct_share": 1.0},
            "message": "categorical column 'c' has 100 distinct values in 100 rows (100%): an id or free text leaking into a feature? "
            "Leave it out with --drop-columns, or name it with --id-column",
        }
    ]


@pytest.mark.parametrize(("distinct", "rows", "flagged"), [(90, 100, True), (89, 100, False), (99, 99, False), (900, 997, True)])
def test_id_like_from_90_percent_distinct_of_at_least_100_rows(distinct, rows, flagged):
    X = pd.DataFrame({"c": _cat(distinct, rows, missing=30)})
    found = id_like_columns(X, ["c"], DEFAULTS)
    assert bool(found) == flagged
    if flagged:
        assert found[0].numbers == {"distinct": distinct, "rows": rows, "distinct_share": round(distinct / rows, 4)}
        assert found[0].message.startswith(f"categorical column 'c' has {distinct} distinct values in {rows} rows ({distinct / rows:.0%})")


def test_a_column_with_too_few_values_does_not_stop_the_next():
    X = pd.DataFrame({"a": _cat(50, 50, missing=100), "c": _cat(150, 150)})  # a: 50 values (under 100), c: all distinct
    assert [f.columns for f in id_like_columns(X, ["a", "c"], DEFAULTS)] == [["c"]]
