"""End to end through the library: ModelRetrainer.retrain with real CatBoost on small data."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, sha, write_csv
from scipy.stats import norm

from retrain_model import ModelRetrainer, compare_auc
from retraining.errors import DataError, StateError, TrainingError, UsageError


def test_first_run_deploys_and_records_everything(project):
    r = retrainer(project)
    result = r.retrain()
    assert result.status == "deployed" and result.version == "v1.0.0" and result.production == "v1.0.0"
    prod = project / "catboost_model.cbm"
    version_file = project / "models" / "catboost_model_v1.0.0.cbm"
    assert sha(prod) == sha(version_file)
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["format"] == 1 and log["production"] == "v1.0.0"
    e = log["versions"][0]
    assert e["sha256"] == sha(version_file) and e["created_at"].endswith("Z")
    assert set(e["metrics"]["candidate"]) == {"roc_auc", "pr_auc", "log_loss", "brier"}
    assert e["metrics"]["candidate"]["roc_auc"] > 0.7  # the synthetic problem is learnable
    assert e["dataset"]["sha256"] == sha(project / "data.csv") and e["dataset"]["rows"] == 600
    assert e["categorical_features"] == ["c1", "c2"]
    assert e["params"]["iterations"] == 30 and e["environment"]["catboost"]
    assert e["decision"] == "deployed" and "first model" in e["reason"]
    assert log["events"][0]["event"] == "deploy" and log["events"][0]["backup"] is None
    assert not list(project.glob("catboost_info"))  # CatBoost writes nothing in the folder


def test_unchanged_data_does_nothing_unless_forced(project):
    r = retrainer(project)
    r.retrain()
    again = r.retrain()
    assert again.status == "unchanged" and "--force" in again.reason
    assert len(r.version_history()["versions"]) == 1
    forced = r.retrain(force=True)
    # the same data, seed and settings give the same model: a tie, and ties deploy
    assert forced.version == "v1.1.0" and forced.status == "deployed"
    assert forced.delong["delta"] == 0 and forced.candidate_auc == forced.champion_auc
    assert len(list((project / "models").glob("production_backup_*.cbm"))) == 1


def test_worse_candidate_is_kept_for_review(project):
    retrainer(project, iterations=200).retrain()
    prod_before = sha(project / "catboost_model.cbm")
    result = retrainer(project, iterations=1, depth=1).retrain()
    assert result.status == "kept for review" and result.version == "v1.1.0"
    assert result.candidate_auc < result.champion_auc and "worse" in result.reason
    assert sha(project / "catboost_model.cbm") == prod_before
    assert (project / "models" / "catboost_model_v1.1.0.cbm").is_file()
    log = retrainer(project).version_history()
    assert log["production"] == "v1.0.0" and len(log["events"]) == 1
    d = log["versions"][1]["delong"]
    assert d["delta"] == pytest.approx(result.candidate_auc - result.champion_auc, abs=1e-6) and d["delta"] < 0
    # a worse candidate: the two-sided p and the one-sided p ("candidate better") follow from z by the normal tail
    assert d["p_value"] == pytest.approx(2 * norm.sf(abs(d["z"])), abs=1e-6) and d["p_value_one_sided"] == pytest.approx(norm.sf(d["z"]), abs=1e-6)
    assert d["p_value_one_sided"] > 0.5 and d["ci_low"] <= d["delta"] <= d["ci_high"]


def test_champion_is_scored_on_rows_it_never_saw(tmp_path):
    """A champion trained on pure-noise labels must look like chance on the next holdout.

    If the split were redrawn each run, the champion would be scored on rows it memorised
    and look far better than 0.5.
    """
    noise = make_frame(2000, seed=3, noise=True)
    write_csv(tmp_path / "data.csv", noise)
    retrainer(tmp_path, iterations=300, depth=8).retrain()
    more = pd.concat([noise, make_frame(500, seed=4, noise=True, start_id=2000)], ignore_index=True)
    write_csv(tmp_path / "data.csv", more)
    result = retrainer(tmp_path, iterations=300, depth=8).retrain()
    assert result.champion_auc == pytest.approx(0.5, abs=0.06)
    # the champion memorised its training rows: on them it looks far better than chance
    from catboost import CatBoostClassifier

    from retraining.data.dataset import load_dataset

    ds = load_dataset(tmp_path / "data.csv")
    champ = CatBoostClassifier().load_model(str(tmp_path / "models" / "catboost_model_v1.0.0.cbm"))
    seen = ~ds.holdout[:2000]
    from retraining.evaluation import roc_auc
    from retraining.training import predict

    assert roc_auc(ds.y[:2000][seen], predict(champ, ds.X[:2000][seen], ds.cat_features)) > 0.8


def test_schema_change_bumps_major_and_falls_back_to_recorded_auc(project):
    retrainer(project).retrain()
    df = make_frame().drop(columns=["x3"])
    df["x4"] = np.arange(600) % 7
    write_csv(project / "data.csv", df)
    result = retrainer(project).retrain()
    assert result.version == "v2.0.0"
    assert "cannot score the new data (columns x3 are gone)" in result.reason
    assert "recorded ROC-AUC" in result.reason and "major version" in result.reason
    entry = retrainer(project).version_history()["versions"][-1]
    assert entry["champion"]["scored_on_holdout"] is False and entry["delong"] is None


def test_gpu_without_a_gpu_is_a_clear_training_error(project):
    with pytest.raises(TrainingError, match="--task-type GPU needs an NVIDIA GPU"):
        retrainer(project, task_type="GPU").retrain()
    assert not (project / "catboost_model.cbm").exists()
    assert not list((project / "models").glob("*.cbm"))


def test_corrupted_production_model_stops_before_training(project):
    r = retrainer(project)
    r.retrain()
    (project / "catboost_model.cbm").write_bytes(b"not a model")
    log_before = (project / "models" / "version_log.json").read_bytes()
    with pytest.raises(StateError, match="cannot be loaded by CatBoost"):
        r.retrain(force=True)
    assert (project / "models" / "version_log.json").read_bytes() == log_before
    assert (project / "catboost_model.cbm").read_bytes() == b"not a model"
    r.promote_to_production("v1.0.0")  # the advice in the message works
    assert r.retrain(force=True).status == "deployed"


def test_external_production_model_is_the_champion(project):
    """A team adopting the tool with a model already in production: it is compared and backed up."""
    retrainer(project, models_dir=project / "other").retrain()
    (project / "other" / "catboost_model_v1.0.0.cbm").replace(project / "catboost_model.cbm")
    result = retrainer(project, iterations=1, depth=1).retrain()
    assert result.champion_auc is not None and "not in the version log" in result.reason


def test_print_version_history_table_and_json(project):
    r = retrainer(project)
    r.retrain()
    r.retrain(force=True)
    out = io.StringIO()
    r.print_version_history(file=out)
    text = out.getvalue()
    assert "v1.0.0" in text and "*  v1.1.0" in text and "production (v1.1.0)" in text
    out = io.StringIO()
    r.print_version_history(as_json=True, file=out)
    assert json.loads(out.getvalue())["production"] == "v1.1.0"


def test_positive_class_and_constructor_validation(tmp_path):
    df = make_frame()
    df["diagnosis"] = np.where(df.pop("target") == 1, "M", "B")
    write_csv(tmp_path / "data.csv", df)
    with pytest.raises(DataError, match="--positive-class"):
        retrainer(tmp_path, target="diagnosis").retrain()
    assert retrainer(tmp_path, target="diagnosis", positive_class="M").retrain().deployed
    with pytest.raises(Exception, match="iterations must be at least 1"):
        ModelRetrainer(iterations=0)


def test_compare_auc_is_reexported():
    res = compare_auc([0, 0, 1, 1, 0, 1], [0.1, 0.2, 0.8, 0.9, 0.3, 0.7], [0.2, 0.1, 0.7, 0.6, 0.4, 0.5])
    assert res.auc_new == 1.0


def _broken_label_night(project):
    """v1.0.0 on 600 rows, then 300 new rows whose labels all say 1 (a broken feed)."""
    retrainer(project).retrain()
    broken = make_frame(300, seed=7, start_id=600).assign(target=1)
    write_csv(project / "data.csv", pd.concat([pd.read_csv(project / "data.csv"), broken], ignore_index=True))


def test_a_broken_label_feed_is_blocked_and_the_typed_records_say_why(project):
    _broken_label_night(project)
    result = retrainer(project).retrain()
    assert result.status == "kept for review" and result.production == "v1.0.0" and result.blocked
    assert result.reason.startswith("blocked by data check labels_one_class")
    assert result.rows == {**result.rows, "total": 900, "new": 300, "seen": 600, "gone": 0}
    assert {c["name"] for c in result.checks if c["severity"] == "block"} == {"labels_one_class"}
    assert set(result.timings) >= {"read", "plan", "checks", "training", "evaluate", "decide", "record", "publish"}
    entry = ModelRetrainer(models_dir=project / "models").version_history()["versions"][-1]
    assert entry["checks"] and entry["rows"]["new"] == 300 and "labels_one_class" in entry["reason"]
    assert (project / "models" / "ledgers" / "v1.1.0.npz").is_file()
    assert "Data checks" in (project / "models" / "reports" / "v1.1.0.html").read_text()


def test_check_settings_can_turn_a_check_into_a_warning_and_bad_settings_fail_early(project, tmp_path):
    _broken_label_night(project)
    settings = {"severity": {"labels_one_class": "warn"}}
    result = retrainer(project, check_settings=settings).retrain()
    assert not result.blocked and "blocked by" not in result.reason
    assert any(c["name"] == "labels_one_class" and c["severity"] == "warn" for c in result.checks)
    bad = tmp_path / "settings.json"
    bad.write_text('{"label_efect": 0.3}')
    with pytest.raises(UsageError, match=r"unknown setting.*label_efect"):
        retrainer(project, check_settings=bad)
