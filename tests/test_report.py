"""Drift (PSI) against hand-computed values, and the HTML report opened in real headless Chromium."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, make_frame, retrainer, run_script, write_csv

from retraining.guard.drift import band, compare, profile, psi

ARTIFACTS = ROOT / "test-artifacts"


def test_psi_by_hand():
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0
    # an empty bucket is floored at 1e-4 instead of giving infinity
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) == pytest.approx(-0.1 * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4))
    assert [band(x) for x in (0.05, 0.1, 0.25, 0.26)] == ["stable", "moderate", "moderate", "significant"]


def test_psi_same_distribution_near_zero_shifted_significant():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=20000), "c": rng.choice(list("abc"), 20000, p=[0.6, 0.3, 0.1])})
    same = pd.DataFrame({"x": rng.normal(size=20000), "c": rng.choice(list("abc"), 20000, p=[0.6, 0.3, 0.1])})
    shifted = pd.DataFrame({"x": rng.normal(1.0, 1.0, size=20000), "c": rng.choice(list("abcd"), 20000, p=[0.2, 0.2, 0.2, 0.4])})
    prof = profile(ref, ["c"])
    assert len(prof["features"]["x"]["edges"]) == 9 and sum(prof["features"]["x"]["shares"]) == pytest.approx(1, abs=1e-4)
    calm = compare(prof, same, ["c"], "v1.0.0")
    assert calm["features"]["x"]["psi"] < 0.01 and calm["features"]["c"]["psi"] < 0.01 and calm["significant"] == []
    moved = compare(prof, shifted, ["c"], "v1.0.0")
    assert moved["features"]["x"]["psi"] > 0.25 and moved["features"]["c"]["psi"] > 0.25
    assert moved["features"]["c"]["new_categories"] == ["d"]
    assert moved["drifted_share"] == 1.0 and set(moved["significant"]) == {"x", "c"}


def test_numeric_profile_bins_by_hand():
    prof = profile(pd.DataFrame({"x": [1.0, 2, 3, 4, np.nan]}), [])
    feat = prof["features"]["x"]
    shares = dict(zip([*feat["edges"], "top", "missing"], feat["shares"], strict=True))
    assert shares["missing"] == 0.2 and sum(feat["shares"]) == pytest.approx(1)


def _chromium_check(report: Path, shot: Path) -> tuple[list, list]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "Debian's chromium and chromium-driver are needed; .ci/run installs them"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        opts.add_argument(flag)
    opts.add_argument("--window-size=1200,2400")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        driver.get(report.resolve().as_uri())
        widths = driver.execute_script("return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    return widths, errors


def test_reports_for_first_rejected_schema_change_and_no_profile(project):
    r = retrainer(project, iterations=60)
    first = r.retrain()
    first_html = Path(first.report_path).read_text()
    assert "v1.0.0 was deployed to production: first model" in first_html
    assert "no reference profile (no production model yet)" in first_html
    assert "http://" not in first_html and "https://" not in first_html  # self-contained, no network

    rejected = retrainer(project, iterations=1, depth=1).retrain()
    html = Path(rejected.report_path).read_text()
    assert rejected.status == "kept for review" and "kept for manual review (not deployed)" in html
    charts = ["Metric history", "Feature importances", "ROC curves", "Precision-recall curves", "Calibration"]  # one chart each
    assert sorted(re.findall(r"<img alt='([^']*)'", html)) == sorted(charts) and "Paired DeLong test" in html and "Reference: v1.0.0" in html
    widths, errors = _chromium_check(Path(rejected.report_path), ARTIFACTS / "report_rejected.png")
    assert sorted(alt for alt, _, _ in widths) == sorted(charts) and all(ok and w > 0 for _, ok, w in widths), widths
    assert errors == []

    df = make_frame().drop(columns=["x3"]).assign(x4=lambda d: np.arange(len(d)) % 5)
    write_csv(project / "data.csv", df)
    changed = retrainer(project).retrain()
    html = Path(changed.report_path).read_text()
    assert changed.version == "v2.0.0" and "new feature" in html and "missing in new data" in html
    assert "The champion cannot score the new data" in html or "cannot score the new data" in html
    widths, errors = _chromium_check(Path(changed.report_path), ARTIFACTS / "report_schema_change.png")
    assert all(ok and w > 0 for _, ok, w in widths) and errors == []

    # a production version made before profiles existed: its profile file is absent
    prod = r.version_history()["production"]
    (project / "models" / "profiles" / f"{prod}.json").unlink()
    write_csv(project / "data.csv", pd.concat([df, make_frame(100, seed=9).drop(columns=["x3"]).assign(x4=1)], ignore_index=True))
    old = retrainer(project).retrain()
    assert "no reference profile" in Path(old.report_path).read_text()
    log = r.version_history()
    assert log["versions"][-1]["drift"]["reference"] is None
    full = r.registry.full_entry(log, old.version)
    assert full["artifacts"]["report"] == f"reports/{old.version}.html" and full["drift"]["reference"] is None


def test_significant_drift_is_one_summary_line(project):
    retrainer(project).retrain()
    df = make_frame(600, seed=1)
    df["x1"] = df["x1"] + 3  # a big shift
    write_csv(project / "data.csv", df)
    proc = run_script("retrain_model.py", "--data", "data.csv", "--iterations", "20", cwd=project)
    assert proc.returncode == 0
    drift_lines = [ln for ln in proc.stdout.splitlines() if "drift:" in ln]
    assert len(drift_lines) == 1 and "x1" in drift_lines[0] and "v1.0.0" in drift_lines[0]
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["versions"][-1]["drift"]["significant"] == ["x1"]
    meta = json.loads((project / "models" / log["versions"][-1]["metadata"]).read_text())
    assert meta["drift"]["features"]["x1"]["band"] == "significant"


def test_report_flag_regenerates_and_no_report_skips(project):
    proc = run_script("retrain_model.py", "--data", "data.csv", "--iterations", "20", "--no-report", "-q", cwd=project)
    assert proc.returncode == 0 and "report:" not in proc.stdout
    assert not (project / "models" / "reports").exists()
    regen = run_script("retrain_model.py", "--report", cwd=project)
    assert regen.returncode == 0 and regen.stdout.strip().endswith("reports/v1.0.0.html")
    html = (project / "models" / "reports" / "v1.0.0.html").read_text(encoding="utf-8")
    entry = json.loads((project / "models" / "version_log.json").read_text())["versions"][0]
    metrics = entry["metrics"]["candidate"]
    # the regenerated report shows this version's recorded numbers, its decision and its curves
    assert all(f"<td>{metrics[k]:.4f}</td>" in html for k in ("roc_auc", "pr_auc", "log_loss", "brier")), metrics
    assert "v1.0.0 was deployed to production: first model" in html and html.count("<img alt='ROC curves'") == 1
    (project / "models" / "reports" / "v1.0.0.html").unlink()
    explicit = run_script("retrain_model.py", "--report", "v1.0.0", cwd=project)
    assert explicit.returncode == 0 and (project / "models" / "reports" / "v1.0.0.html").read_text(encoding="utf-8") == html
    bad = run_script("retrain_model.py", "--report", "v9.9.9", cwd=project)
    assert bad.returncode == 2 and "v9.9.9 is not in" in bad.stderr
