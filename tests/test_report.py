"""Drift (PSI) against hand-computed values, and the HTML report opened in real headless Chromium."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, make_frame, retrainer, run_main, write_csv

from retraining.cli.retrain import main as retrain_main
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
    assert "Deploy rule: noise (α 0.05, margin 0.005); verdict: worse" in html  # #27: which rule decided, on what numbers
    charts = ["Metric history", "Feature importances", "ROC curves", "Precision-recall curves", "Calibration"]  # one chart each
    assert sorted(re.findall(r"<img alt='([^']*)'", html)) == sorted(charts) and "Paired DeLong test" in html and "vs v1.0.0's training data" in html
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
    proc = run_main(retrain_main, "--data", "data.csv", "--iterations", "20", cwd=project)
    assert proc.returncode == 0
    drift_lines = [ln for ln in proc.stdout.splitlines() if "drift:" in ln]
    assert len(drift_lines) == 1 and "x1" in drift_lines[0] and "v1.0.0" in drift_lines[0]
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["versions"][-1]["drift"]["significant"] == ["x1"]
    meta = json.loads((project / "models" / log["versions"][-1]["metadata"]).read_text())
    assert meta["drift"]["features"]["x1"]["band"] == "significant"


def test_report_flag_regenerates_and_no_report_skips(project):
    proc = run_main(retrain_main, "--data", "data.csv", "--iterations", "20", "--no-report", "-q", cwd=project)
    assert proc.returncode == 0 and "report:" not in proc.stdout
    assert not (project / "models" / "reports").exists()
    regen = run_main(retrain_main, "--report", cwd=project)
    assert regen.returncode == 0 and regen.stdout.strip().endswith("reports/v1.0.0.html")
    html = (project / "models" / "reports" / "v1.0.0.html").read_text(encoding="utf-8")
    entry = json.loads((project / "models" / "version_log.json").read_text())["versions"][0]
    metrics = entry["metrics"]["candidate"]
    # the regenerated report shows this version's recorded numbers, its decision and its curves
    assert all(f"<td>{metrics[k]:.4f}</td>" in html for k in ("roc_auc", "pr_auc", "log_loss", "brier")), metrics
    assert "v1.0.0 was deployed to production: first model" in html and html.count("<img alt='ROC curves'") == 1
    (project / "models" / "reports" / "v1.0.0.html").unlink()
    explicit = run_main(retrain_main, "--report", "v1.0.0", cwd=project)
    again = (project / "models" / "reports" / "v1.0.0.html").read_text(encoding="utf-8")
    written = re.compile(r"this report was written \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)")  # the one line that says when
    assert explicit.returncode == 0 and written.sub("", again) == written.sub("", html) and len(written.findall(again)) == 1
    bad = run_main(retrain_main, "--report", "v9.9.9", cwd=project)
    assert bad.returncode == 2 and "v9.9.9 is not in" in bad.stderr


def test_a_blocked_night_reads_the_same_everywhere_and_the_history_page_links_every_report(project):
    """Decision box, drift box, training settings, --history (links, settings, footer) and the index page in Chromium."""
    from retraining.cli.retrain import main

    frame = make_frame(800)
    write_csv(project / "data.csv", frame)
    first = retrainer(project, iterations=30).retrain()
    again = retrainer(project, iterations=20, depth=3).retrain(force=True)  # same data: the same holdout
    out = io.StringIO()
    retrainer(project).print_version_history(file=out)
    footer = out.getvalue()
    assert "same holdout (n = " in footer and "different holdouts" not in footer, footer
    production = retrainer(project).production_version()
    flipped = make_frame(400, seed=7, start_id=10_000).assign(target=1)  # every new row positive, x1 shifted
    flipped["x1"] = flipped["x1"] + 3
    write_csv(project / "data.csv", pd.concat([frame, flipped]))
    blocked = retrainer(project, iterations=30).retrain()
    assert blocked.status != "deployed" and blocked.blocked, blocked.reason
    assert f"--promote {blocked.version} --reason" in blocked.reason  # the real version, not a placeholder
    html = Path(blocked.report_path).read_text(encoding="utf-8")
    assert f"{blocked.version} was NOT deployed: blocked by data check" in html
    new, whole, verdict = html.index("class='drift-new'"), html.index("class='drift-whole'"), html.index("class='drift-verdict block'")
    assert new < whole < verdict  # the new rows lead, each line says what it covers, and the verdict agrees with the decision
    assert "New rows (400, the rows added since the last accepted version)" in html and "Whole file (every row, old and new)" in html
    assert f"production at the time of this run: {production}" in html and "production now" not in html
    settings = html[html.index("<h2>Training settings</h2>") :]
    for cell in ("<td>iterations</td><td>30</td>", "<td>seed</td><td>42</td>", "<td>data checks</td><td>block</td>", "data.csv"):
        assert cell in settings, cell
    assert "<td>depth</td><td>3</td>" in Path(again.report_path).read_text(encoding="utf-8")

    verbose = run_main(main, "--history", "--verbose", "--data", "data.csv", cwd=project)
    assert verbose.returncode == 0, verbose.stderr
    reports = project / "models" / "reports"
    for r in (first, again, blocked):
        assert f"{r.version:<9} {(reports / f'{r.version}.html').resolve()}" in verbose.stdout
    assert f"{again.version:<9} iterations 20; depth 3;" in verbose.stdout
    page = run_main(main, "--history", "--html", cwd=project)
    assert page.returncode == 0 and Path(page.stdout.strip()) == (reports / "index.html").resolve(), page
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert "NOT deployed: blocked by a data check" in index and "[block] labels_one_class" in index
    links = _chromium_links(reports / "index.html", ARTIFACTS / "history_index.png")
    assert sorted(links) == sorted((reports / f"{r.version}.html").resolve().as_uri() for r in (first, again, blocked)), links
    assert run_main(main, "--html", cwd=project).returncode == 2  # --html goes with --history


def _chromium_links(page: Path, shot: Path) -> list[str]:
    """The href of every link on the page as Chromium resolves it; and a screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(page.resolve().as_uri())
        links = driver.execute_script("return Array.from(document.links).map(a => a.href)")
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    return links


def test_the_drift_line_leads_with_the_new_rows_and_never_says_none_when_they_moved():
    from retraining.guard.drift import summary_line

    features = {"age": {"psi": 0.05, "psi_new": 0.9}, "job": {"psi": 0.31, "psi_new": 0.4}}
    new_only = {"reference": "v1.0.0", "new_rows": 400, "significant": [], "significant_new": ["age", "job"], "features": features}
    line = summary_line(new_only)
    assert line.startswith("drift in the 400 new rows vs v1.0.0 (PSI > 0.25): age, job; worst age PSI 0.90")
    assert line.endswith("the whole file (old and new rows) shows none")
    both = {**new_only, "significant": ["job"]}
    assert summary_line(both).endswith("whole file (old and new rows) (PSI > 0.25): job; worst job PSI 0.31")
    assert summary_line({**new_only, "significant_new": []}) is None
