"""monitor.py: outcomes joined to the production log; realized AUC, decay, the bake comparison and rollback.

Real CatBoost versions from a real registry; the log is written in the contract's line
layout (retraining.ab.predlog LOG_FIELDS) with the production salt; outcomes as real CSV
files and a real SQLite table. Expected AUCs come from scikit-learn.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, run_main, sha, snapshot, write_csv
from sklearn.metrics import roc_auc_score

from retraining.ab.predlog import append_predictions, entity_hashes, lay_out_production
from retraining.monitoring.cli import main
from retraining.registry import Registry

FEATURES = ["x1", "x2", "x3", "c1", "c2"]


def scores_of(project: Path, version: str, frame: pd.DataFrame) -> np.ndarray:
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    model.load_model(str(project / "models" / f"catboost_model_{version}.cbm"))
    return model.predict_proba(frame[FEATURES])[:, 1]


def entry(project: Path, version: str) -> dict:
    reg = Registry(project / "models", project / "catboost_model.cbm")
    return reg.find(reg.read_log(), version)


def write_log(path: Path, project: Path, frame: pd.DataFrame, version: str, previous: str | None = None, day: str = "2026-12-01") -> np.ndarray:
    """Production lines of ``version`` for every row (and bake-shadow lines of ``previous``), by serve.py's writer."""
    scores = scores_of(project, version, frame)
    hashes = entity_hashes(frame["customer_id"], "production")
    prev = (previous, entry(project, previous)["sha256"]) if previous else None
    lines = lay_out_production(hashes, version=version, sha=entry(project, version)["sha256"], previous=prev, at=f"{day}T10:00:00.000Z")
    append_predictions(path, lines, scores, *([scores_of(project, previous, frame)] if previous else []))
    return scores


@pytest.fixture
def deployed(project: Path) -> Path:
    """A registry with v1.0.0 in production, trained on make_frame's learnable data."""
    result = retrainer(project).retrain()
    assert result.deployed
    return project


def traffic(n: int = 3000, seed: int = 7, start_id: int = 100_000, drifted: bool = False) -> pd.DataFrame:
    frame = make_frame(n=n, seed=seed, start_id=start_id)
    if drifted:  # concept drift: the same inputs now mean something else
        rng = np.random.default_rng(seed + 1)
        logit = -1.8 * frame["x1"] + 1.2 * frame["x2"] - 0.8
        frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def monitor(project: Path, *args: str):
    return run_main(
        main, "--log", "predictions.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", *args, cwd=project
    )


def test_realized_auc_per_version_matches_sklearn_and_a_clean_stream_raises_nothing(deployed: Path) -> None:
    live = traffic()
    scores = write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]].iloc[: len(live) // 2])
    ran = monitor(deployed, "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    (v,) = report["versions"]
    half = len(live) // 2
    assert v["version"] == "v1.0.0" and v["rows"] == len(live) and v["rows_with_outcome"] == half
    assert v["realized_auc"] == pytest.approx(roc_auc_score(live["target"][:half], np.round(scores[:half], 9)), abs=1e-6)
    assert v["holdout_auc"] == entry(deployed, "v1.0.0")["metrics"]["candidate"]["roc_auc"]
    assert v["ci_low"] < v["realized_auc"] < v["ci_high"]
    assert report["findings"] == [] and report["actions"] == [] and report["retrain_recommended"] is False
    assert report["counts"]["match_rate"] == 1.0


def test_decay_on_a_concept_drifted_stream(deployed: Path) -> None:
    live = traffic(drifted=True)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    report = json.loads(monitor(deployed, "--json").stdout)
    assert [f["name"] for f in report["findings"]] == ["decay"]
    decay = report["findings"][0]
    assert decay["numbers"]["realized_auc"] < decay["numbers"]["holdout_auc"] and decay["numbers"]["p_value"] < 0.01
    assert report["retrain_recommended"] is True and "below its holdout AUC" in report["reasons"][0]


def test_outcomes_from_an_sqlite_table(deployed: Path) -> None:
    live = traffic(n=1500)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    with sqlite3.connect(deployed / "outcomes.db") as con:
        live[["customer_id", "target"]].to_sql("outcomes", con, index=False)
    ran = run_main(
        main,
        "--log",
        "predictions.jsonl",
        "--outcomes",
        "sqlite:///outcomes.db",
        "--table",
        "outcomes",
        "--id-column",
        "customer_id",
        "--label-column",
        "target",
        "--json",
        cwd=deployed,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["versions"][0]["rows_with_outcome"] == 1500


def test_a_rerun_reads_only_what_was_appended_and_follows_rotation(deployed: Path) -> None:
    live = traffic(n=2000)
    log = deployed / "predictions.jsonl"
    write_log(log, deployed, live.iloc[:1000], "v1.0.0", day="2026-12-01")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    assert json.loads(monitor(deployed, "--json").stdout)["versions"][0]["rows"] == 1000
    log.rename(deployed / "predictions-20261201-235959.jsonl")  # the writer rotates
    write_log(log, deployed, live.iloc[1000:], "v1.0.0", day="2026-12-02")
    report = json.loads(monitor(deployed, "--json").stdout)
    assert report["versions"][0]["rows"] == 2000 and report["versions"][0]["rows_with_outcome"] == 2000
    assert [d["day"] for d in report["versions"][0]["days"]] == ["2026-12-01", "2026-12-02"]
    state = json.loads((deployed / "models" / "monitoring" / "state.json").read_text())
    assert state["format"] == 2 and len(state["parts"]) == 2
    again = json.loads(monitor(deployed, "--json").stdout)
    assert again["versions"][0]["rows"] == 2000 and len(json.loads((deployed / "models" / "monitoring" / "state.json").read_text())["parts"]) == 2


@pytest.fixture
def worse_promoted(deployed: Path) -> Path:
    """v1.1.0, trained on noise labels, put in production by --promote over v1.0.0."""
    write_csv(deployed / "noise.csv", make_frame(n=600, seed=3, noise=True, start_id=50_000))
    retrainer(deployed, data_path=deployed / "noise.csv").retrain(force=True)
    from retrain_model import main as retrain_main

    ran = run_main(retrain_main, "--promote", "v1.1.0", "--reason", "by hand", cwd=deployed)
    assert ran.returncode == 0, ran.stderr
    assert entry(deployed, "v1.1.0")["sha256"] == sha(deployed / "catboost_model.cbm")
    return deployed


def test_a_worse_promoted_version_is_rolled_back_once_with_the_numbers(worse_promoted: Path) -> None:
    project = worse_promoted
    live = traffic(n=1500)
    new = write_log(project / "predictions.jsonl", project, live, "v1.1.0", previous="v1.0.0")
    old = scores_of(project, "v1.0.0", live)
    write_csv(project / "outcomes.csv", live[["customer_id", "target"]])
    from test_notify import Receiver

    receiver = Receiver()
    try:
        ran = monitor(project, "--auto-rollback", "--json", "--notify", receiver.url())
    finally:
        receiver.close()
    assert ran.returncode == 0, ran.stderr
    (post,) = receiver.posts
    assert "rollback: production v1.1.0 -> v1.0.0" in post["body"]["title"] and "does worse live" in post["body"]["message"]
    report = json.loads(ran.stdout)
    (action,) = report["actions"]
    assert (action["action"], action["from"], action["to"]) == ("rollback", "v1.1.0", "v1.0.0")
    assert sha(project / "catboost_model.cbm") == entry(project, "v1.0.0")["sha256"]
    reg = Registry(project / "models", project / "catboost_model.cbm")
    data = reg.read_log()
    event = data["events"][-1]
    assert data["production"] == "v1.0.0" and event["event"] == "rollback" and "does worse live" in event["reason"]
    assert event["details"]["auc_new"] == pytest.approx(roc_auc_score(live["target"], np.round(new, 9)), abs=1e-6)
    assert event["details"]["auc_previous"] == pytest.approx(roc_auc_score(live["target"], np.round(old, 9)), abs=1e-6)
    assert event["details"]["p_worse"] < 0.05
    before = snapshot(project / "models", skip=("logs", "monitoring"))
    again = json.loads(monitor(project, "--auto-rollback", "--json").stdout)
    assert again["actions"] == [] and snapshot(project / "models", skip=("logs", "monitoring")) == before
    # the monitor's own rollback is never judged against the version it undid (no rolling back and forth),
    # even when the bake shadow after it makes the restored version look worse
    later = traffic(n=1500, seed=8, start_id=200_000)
    hashes = entity_hashes(later["customer_id"], "production")
    shas = {v: entry(project, v)["sha256"] for v in ("v1.0.0", "v1.1.0")}
    lines = lay_out_production(hashes, version="v1.0.0", sha=shas["v1.0.0"], previous=("v1.1.0", shas["v1.1.0"]))
    append_predictions(project / "predictions.jsonl", lines, scores_of(project, "v1.1.0", later), scores_of(project, "v1.0.0", later))
    write_csv(project / "outcomes.csv", pd.concat([live, later])[["customer_id", "target"]])
    third = json.loads(monitor(project, "--auto-rollback", "--json").stdout)
    assert third["actions"] == [] and third["bake"] is None and snapshot(project / "models", skip=("logs", "monitoring")) == before


def test_without_auto_rollback_a_blocking_finding_names_the_command(worse_promoted: Path) -> None:
    live = traffic(n=1500)
    write_log(worse_promoted / "predictions.jsonl", worse_promoted, live, "v1.1.0", previous="v1.0.0")
    write_csv(worse_promoted / "outcomes.csv", live[["customer_id", "target"]])
    report = json.loads(monitor(worse_promoted, "--json").stdout)
    (finding,) = [f for f in report["findings"] if f["name"] == "deploy_worse"]
    assert finding["severity"] == "block" and "--promote v1.0.0" in finding["message"]
    assert report["actions"] == [] and sha(worse_promoted / "catboost_model.cbm") == entry(worse_promoted, "v1.1.0")["sha256"]


def test_never_rolls_back_on_too_few_outcomes(worse_promoted: Path) -> None:
    live = traffic(n=1500)
    write_log(worse_promoted / "predictions.jsonl", worse_promoted, live, "v1.1.0", previous="v1.0.0")
    write_csv(worse_promoted / "outcomes.csv", live[["customer_id", "target"]].iloc[:60])  # fewer than 50 of a class
    report = json.loads(monitor(worse_promoted, "--auto-rollback", "--json").stdout)
    assert min(report["bake"]["positives"], report["bake"]["negatives"]) < 50
    assert report["actions"] == [] and Registry(worse_promoted / "models", worse_promoted / "catboost_model.cbm").read_log()["production"] == "v1.1.0"


def bad(project: Path, *args: str, outcomes: pd.DataFrame | None = None):
    before = snapshot(project)
    ran = monitor(project, *args)
    assert ran.returncode == 2, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and ran.stderr.startswith("error: ")
    assert snapshot(project) == before
    return ran.stderr


def test_bad_input_is_one_line_and_changes_nothing(deployed: Path) -> None:
    live = traffic(n=400)
    log = deployed / "predictions.jsonl"
    write_log(log, deployed, live, "v1.0.0")
    assert "pass the outcomes with --outcomes" in bad(deployed)  # no outcomes.csv yet
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]].assign(target=np.arange(400) % 3))
    assert "3 distinct values" in bad(deployed)
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]].assign(customer_id=live["customer_id"] + 10**7))
    assert "match rate 0 %" in bad(deployed)
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    text = log.read_text()
    log.write_text(text + text.splitlines()[0][:40])
    assert "last line is torn" in bad(deployed)
    log.write_text(text.replace("v1.0.0", "v9.0.0"))
    assert "v9.0.0" in bad(deployed) and "another registry" in bad(deployed)
    log.write_text(text.replace(entry(deployed, "v1.0.0")["sha256"], "0" * 64))
    assert "another registry" in bad(deployed)


def test_duplicate_outcome_ids_keep_the_last_row_and_say_so(deployed: Path) -> None:
    live = traffic(n=400)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    outcomes = pd.concat([live[["customer_id", "target"]].assign(target=1 - live["target"]).iloc[:10], live[["customer_id", "target"]]])
    write_csv(deployed / "outcomes.csv", outcomes)
    report = json.loads(monitor(deployed, "--json").stdout)
    assert report["counts"]["duplicate_ids"] == 10 and any("the last row of each id wins" in n for n in report["notes"])
    assert report["versions"][0]["positives"] == int(live["target"].sum())


def test_history_shows_realized_next_to_holdout(deployed: Path) -> None:
    live = traffic(n=800)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    report = json.loads(monitor(deployed, "--json").stdout)
    ran = run_main(main, "--history", cwd=deployed)
    assert ran.returncode == 0
    row = next(line for line in ran.stdout.splitlines() if line.startswith("v1.0.0"))
    assert f"{report['versions'][0]['realized_auc']:.4f}" in row and f"{entry(deployed, 'v1.0.0')['metrics']['candidate']['roc_auc']:.4f}" in row


def test_the_monitoring_page_draws_each_day_in_chromium(deployed: Path) -> None:
    import shutil

    from helpers import ROOT
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    live = traffic(n=2400, drifted=False)
    for k, day in enumerate(("2026-12-01", "2026-12-02", "2026-12-03")):
        write_log(deployed / "predictions.jsonl", deployed, live.iloc[k * 800 : (k + 1) * 800], "v1.0.0", day=day)
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    report = json.loads(monitor(deployed, "--json").stdout)
    page = deployed / report["page"]
    assert report["page"] == str(Path("models", "monitoring", "monitor.html")) and "http" not in page.read_text()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1000,1200"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(page.resolve().as_uri())
        drawn = driver.execute_script(
            "const s = document.querySelector('#v1\\\\.0\\\\.0 svg').getBoundingClientRect();"
            "return Array.from(document.querySelectorAll('#v1\\\\.0\\\\.0 circle.realized')).map(c => {"
            "const r = c.getBoundingClientRect(); return [r.width > 0, r.left >= s.left && r.right <= s.right && r.top >= s.top && r.bottom <= s.bottom]; })"
        )
        production = driver.find_element("id", "production").text
        day_rows = driver.execute_script("return Array.from(document.querySelectorAll('table.days tr')).slice(1).map(r => r.cells[3].textContent)")
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        driver.save_screenshot(str(ROOT / "test-artifacts" / "monitor_page.png"))
    finally:
        driver.quit()
    assert drawn == [[True, True]] * 3 and production == "v1.0.0"
    assert day_rows == ["1.000"] * 3  # coverage per day: every row has its outcome
    assert len(report["versions"][0]["days"]) == 3 and all(d["realized_auc"] is not None for d in report["versions"][0]["days"])


def test_cbpe_is_the_expected_auc_of_calibrated_scores() -> None:
    from retraining.monitoring.stats import expected_auc

    rng = np.random.default_rng(0)
    p = np.round(rng.beta(2, 5, size=400), 2)  # ties included
    pairs = p[:, None] * (1 - p[None, :])
    np.fill_diagonal(pairs, 0)
    by_hand = (pairs * ((p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :]))).sum() / pairs.sum()
    assert expected_auc(p) == pytest.approx(by_hand, abs=1e-12)
    drawn = np.mean([roc_auc_score(rng.random(len(p)) < p, p) for _ in range(300)])  # labels drawn from the scores
    assert expected_auc(p) == pytest.approx(drawn, abs=0.01)


def test_the_always_valid_test_keeps_false_alarms_under_alpha_over_many_looks() -> None:
    from retraining.monitoring.stats import always_valid_p, normal_sf

    rng = np.random.default_rng(1)
    looks = np.arange(1, 41)
    walks = np.cumsum(rng.normal(size=(2000, 40)), axis=1) / looks  # the mean of n draws: N(0, 1/n) under no difference
    se = 0.05 / np.sqrt(looks)
    sequential = np.mean([any(always_valid_p(d * 0.05, s, 0.02) < 0.05 for d, s in zip(w, se, strict=True)) for w in walks])
    fixed = np.mean([any(normal_sf(abs(d) / (1 / np.sqrt(n))) < 0.025 for d, n in zip(w, looks, strict=True)) for w in walks])
    assert sequential <= 0.05 < fixed  # a fixed 5 % test looked at 40 times alarms far more often


def test_scheduler_monitor_mode_recommends_a_retrain_on_decay_with_a_cooldown(deployed: Path) -> None:
    import datetime as dt

    from helpers import ROOT

    from retraining.scheduling.monitorjob import MonitorTrigger

    live = traffic(drifted=True)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    trigger = MonitorTrigger.from_flags(
        60, 6, "--log predictions.jsonl --outcomes outcomes.csv --id-column customer_id --label-column target", deployed / "models", 300, ROOT / "monitor.py"
    )
    now = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc)
    assert trigger.is_due(now)
    answer = trigger.check(now, deployed)
    assert answer.get("retrain_recommended") is True, answer
    assert trigger.due == now + dt.timedelta(minutes=60) and not trigger.is_due(now)
    assert trigger.should_retrain(answer, now, last_start=None, running=False)
    assert trigger.should_retrain(answer, now, last_start=now - dt.timedelta(hours=5), running=False) is None  # cooldown
    assert trigger.should_retrain(answer, now, last_start=now - dt.timedelta(hours=7), running=False)
    assert trigger.should_retrain(answer, now, last_start=None, running=True) is None


def test_decay_and_score_drift_are_notified(deployed: Path) -> None:
    from test_notify import Receiver

    live = traffic(drifted=True)
    live["x1"] = live["x1"] + 2.5  # the inputs move too: the served scores drift from the holdout's
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    receiver = Receiver()
    try:
        report = json.loads(monitor(deployed, "--json", "--notify", receiver.url()).stdout)
        deadline = time.monotonic() + 10
        while len(receiver.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        receiver.close()
    assert {f["name"] for f in report["findings"]} == {"decay", "drift"}
    drift = next(f for f in report["findings"] if f["name"] == "drift")
    assert drift["columns"] == ["score"] and drift["numbers"]["psi"] > 0.25
    titles = sorted(p["body"]["title"] for p in receiver.posts)
    assert len(titles) == 2 and "decay" in titles[0] and "drift" in titles[1], titles
    assert any("below its holdout AUC" in p["body"]["message"] for p in receiver.posts)


def test_drift_of_the_sampled_served_features_names_the_column(deployed: Path) -> None:
    live = traffic(n=1200)
    live["x1"] = live["x1"] + 3.0
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    hashes = entity_hashes(live["customer_id"], "production")
    with (deployed / "features.jsonl").open("w") as fh:  # serve.py --log-features 1's lines (docs/monitoring.md)
        for h, row in zip(hashes, live[FEATURES].to_dict("records"), strict=True):
            fh.write(json.dumps({"time": "2026-12-01T10:00:00.000Z", "model_version": "v1.0.0", "entity": f"{int(h):016x}", "features": row}) + "\n")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    report = json.loads(monitor(deployed, "--json").stdout)
    features = [f for f in report["findings"] if f["name"] == "drift" and f["columns"] != ["score"]]
    assert len(features) == 1 and features[0]["columns"] == ["x1"], report["findings"]
    assert report["feature_drift"]["significant"] == ["x1"]


def test_the_feature_sample_is_read_by_the_shared_reader_one_version_one_window_torn_lines_skipped(deployed: Path) -> None:
    """Only the production version's lines of the decay window count; a torn line is skipped with a warning, never fatal."""
    live = traffic(n=1200)
    live["x1"] = live["x1"] + 3.0
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    hashes = entity_hashes(live["customer_id"], "production")
    rows = list(zip(hashes, live[FEATURES].to_dict("records"), strict=True))
    with (deployed / "features.jsonl").open("w") as fh:
        for k, (h, row) in enumerate(rows):
            line = {"time": "2026-12-01T10:00:00.000Z", "model_version": "v1.0.0", "entity": f"{int(h):016x}", "features": row}
            fh.write(json.dumps(line) + "\n")
            if k == 600:
                fh.write('{"time": "2026-12-01T10:00:00.000Z", "model_vers\n')  # a writer killed mid-line, fenced off by the next append
                fh.write(json.dumps({**line, "model_version": "v0.9.0", "features": {**row, "x1": "text"}}) + "\n")  # another version
                fh.write(json.dumps({**line, "time": "2026-10-01T10:00:00.000Z"}) + "\n")  # before the decay window
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    ran = monitor(deployed, "--json")
    assert ran.returncode == 0, ran.stderr
    drift = [f for f in json.loads(ran.stdout)["findings"] if f["name"] == "drift" and f["columns"] != ["score"]]
    assert len(drift) == 1 and drift[0]["columns"] == ["x1"] and drift[0]["numbers"]["rows"] == 1200, drift
    assert "features.jsonl: skipped 1 torn or invalid line(s) (first: line 602)" in ran.stderr


def test_zero_padded_ids_join_as_written_in_the_outcomes_csv(deployed: Path) -> None:
    """An id the server saw as the text "00042" joins the outcomes CSV that holds 00042 (docs/ab-testing.md's rule), not 42."""
    live = traffic(n=2000)
    live["customer_id"] = [f"{i:07d}" for i in live["customer_id"]]  # text ids with leading zeros, as a client sends them
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])  # written as 0100000, ...: pandas would read 100000
    ran = monitor(deployed, "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["counts"]["match_rate"] == 1.0 and report["versions"][0]["rows_with_outcome"] == len(live)
