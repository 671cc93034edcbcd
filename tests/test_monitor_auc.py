"""The monitor's one-sort DeLong (monitoring.stats.auc_with_ci_one_sort) gives auc_with_ci's numbers bit for bit.

A rerun recomputes the realized AUC with its CI over every labelled row; the one-sort form
must not change a digit: checked against ``retraining.ab.stats.auc_with_ci`` (three sorts)
with exact equality, and the AUC against scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from retraining.ab.stats import auc_with_ci
from retraining.monitoring.stats import auc_with_ci_one_sort, realized


@pytest.mark.parametrize("seed", range(40))
def test_equal_bit_for_bit_with_ties_zeros_and_nans(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 500))
    y = rng.random(n) < rng.uniform(0.05, 0.95)
    s = np.round(rng.random(n), int(rng.integers(1, 4)))  # few decimals: many ties
    if seed % 3 == 0:
        s[rng.random(n) < 0.2] = -0.0  # -0.0 and 0.0 tie
        s[rng.random(n) < 0.2] = 0.0
    if seed % 5 == 0:
        s[rng.random(n) < 0.05] = np.nan  # NaNs tie with each other, as np.unique groups them
    assert repr(auc_with_ci_one_sort(y, s)) == repr(auc_with_ci(y, s))


def test_auc_matches_sklearn_and_too_few_of_a_class_gives_none() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.3
    s = np.clip(0.3 * y + rng.random(5000), 0, 1).round(3)
    assert realized(y, s)["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    one = auc_with_ci_one_sort(np.array([1, 0, 0]), np.array([0.2, 0.1, 0.3]))
    assert one["roc_auc"] is None and one["n"] == 3 and one["positives"] == 1
