"""The data guard inside real runs (ModelRetrainer), on growing nightly files of the shipped bank data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from bank_nights import bank, flip_labels, write
from helpers import retrainer

from retraining.guard.ledger import load_ledger

FIRST, NIGHT = 8000, 600


def _night(project, frame, **kw):
    write(project, "data.csv", frame)
    return retrainer(project, iterations=20, report=False, **kw).retrain(force=True)


def test_a_broken_label_feed_is_kept_for_review_and_the_next_clean_night_deploys_normally(tmp_path):
    data = bank(seed=5, rows=FIRST + 3 * NIGHT)
    first = _night(tmp_path, data.iloc[:FIRST])
    assert first.deployed and first.rows["new"] == FIRST
    assert load_ledger(tmp_path / "models" / "ledgers" / f"{first.version}.npz").rows == FIRST
    clean = _night(tmp_path, data.iloc[: FIRST + NIGHT])
    assert clean.rows["new"] == NIGHT and not [c for c in clean.checks if c["severity"] == "block"]
    poisoned = flip_labels(data.iloc[: FIRST + 2 * NIGHT], slice(FIRST + NIGHT, FIRST + 2 * NIGHT), 0.4)
    bad = _night(tmp_path, poisoned)
    assert not bad.deployed and "label_rate" in bad.reason
    assert [c["name"] for c in bad.checks if c["severity"] == "block"] == ["label_rate"]
    production = bad.production
    assert production != bad.version
    # the next night still carries the broken labels: its rows are new again (vs the last accepted version), so it blocks too
    still = _night(tmp_path, pd.concat([poisoned, data.iloc[FIRST + 2 * NIGHT :]]))
    assert still.rows["new"] == 2 * NIGHT and still.rows["previous"] == clean.version
    assert not still.deployed and [c["name"] for c in still.checks if c["severity"] == "block"] == ["label_rate"]
    # fixed upstream: the next clean night is not blocked and deploys by the AUC rule alone
    following = _night(tmp_path, data)
    assert following.rows["new"] == 2 * NIGHT and following.rows["previous"] == clean.version
    assert not [c for c in following.checks if c["severity"] == "block"], following.checks
    assert "blocked by data check" not in following.reason


def test_a_promoted_blocked_version_is_where_new_rows_are_counted_from(tmp_path):
    data = bank(seed=8, rows=FIRST + 2 * NIGHT)
    _night(tmp_path, data.iloc[:FIRST])
    poisoned = flip_labels(data.iloc[: FIRST + NIGHT], slice(FIRST, FIRST + NIGHT), 0.4)
    bad = _night(tmp_path, poisoned)
    assert not bad.deployed
    retrainer(tmp_path, iterations=20, report=False).promote_to_production(bad.version, reason="the rate really rose")
    after = _night(tmp_path, pd.concat([poisoned, data.iloc[FIRST + NIGHT :]]))
    assert after.rows["new"] == NIGHT and after.rows["previous"] == bad.version


def test_when_the_champions_rows_cannot_be_left_out_the_run_says_so(tmp_path):
    data = bank(seed=9, rows=FIRST + NIGHT)
    first = _night(tmp_path, data.iloc[:FIRST])
    (tmp_path / "models" / "ledgers" / f"{first.version}.npz").unlink()  # as for a version made before ledgers
    second = _night(tmp_path, data)
    overlap = [c for c in second.checks if c["name"] == "holdout_overlap"]
    assert [c["severity"] for c in overlap] == ["warn"] and "no row ledger" in overlap[0]["message"]
    assert second.holdout_dropped_trained_on == 0


def test_warn_mode_reports_the_same_finding_but_does_not_block(tmp_path):
    data = bank(seed=6, rows=FIRST + NIGHT)
    _night(tmp_path, data.iloc[:FIRST])
    poisoned = flip_labels(data, slice(FIRST, FIRST + NIGHT), 0.4)
    result = _night(tmp_path, poisoned, data_checks="warn")
    assert [(c["name"], c["severity"]) for c in result.checks if c["name"] == "label_rate"] == [("label_rate", "warn")]
    assert "blocked by data check" not in result.reason


def test_a_label_correction_moves_no_row_and_no_model_is_scored_on_its_training_rows(tmp_path):
    data = bank(seed=7, rows=FIRST)
    first = _night(tmp_path, data)
    corrected = flip_labels(data, slice(0, FIRST), 0.03)  # 240 labels corrected upstream, no id column
    second = _night(tmp_path, corrected)
    assert second.rows["new"] == 0 and second.rows["seen"] == FIRST
    assert second.holdout_dropped_trained_on == 0  # the same key puts every row on the same side as before
    ledgers = [load_ledger(tmp_path / "models" / "ledgers" / f"{r.version}.npz") for r in (first, second)]
    assert (ledgers[0].holdout == ledgers[1].holdout).all() and (ledgers[0].train == ledgers[1].train).all()


def test_the_report_of_a_run_without_checks_says_they_did_not_run(tmp_path):
    write(tmp_path, "data.csv", bank(seed=10, rows=FIRST))
    result = retrainer(tmp_path, iterations=20, data_checks="off").retrain()
    html = Path(result.report_path).read_text(encoding="utf-8")
    assert "Data checks: not run" in html and "Data checks: no findings" not in html
