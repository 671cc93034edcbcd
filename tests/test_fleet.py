"""A team's fleet: many models from one fleet.toml (retraining/fleet, retrain_model.py --config)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from helpers import ROOT, make_frame, run_main, run_script, snapshot, write_csv

from retraining.cli.retrain import main
from retraining.monitoring.cli import main as monitor_main

FLEET = """
[fleet]
root = "state"
max_parallel = 2

[defaults]
data = "data.csv"
iterations = 15
threads = 1

[models.churn]
min_improvement = 0.001

[models.fraud]
depth = 3
drop_columns = ["x3", "c2"]
notify = ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]

[models.upsell]
iterations = 25
require_significance = true
at = "04:00"
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    write_csv(tmp_path / "data.csv", make_frame(400))
    (tmp_path / "fleet.toml").write_text(FLEET, encoding="utf-8")
    return tmp_path


def listed(folder: Path, *extra: str) -> dict:
    ran = run_main(main, "--config", "fleet.toml", "--list", "--json", *extra, cwd=folder)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_list_resolves_precedence_folders_and_paths(fleet: Path) -> None:
    out = listed(fleet)
    assert out["max_parallel"] == 2 and list(out["models"]) == ["churn", "fraud", "upsell"]
    churn, fraud, upsell = (out["models"][m] for m in ("churn", "fraud", "upsell"))
    # the model's table over [defaults] over the flag's default
    assert (churn["iterations"], fraud["iterations"], upsell["iterations"]) == (15, 15, 25)
    assert (churn["min_improvement"], fraud["min_improvement"]) == (0.001, 0.0)
    assert (churn["depth"], fraud["depth"]) == (None, 3) and upsell["require_significance"] is True
    assert fraud["drop_columns"] == "x3,c2" and fraud["notify"] == ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]
    assert upsell["schedule"] == {"at": "04:00"} and churn["schedule"] == {}
    # each model its own folder under root, relative to fleet.toml; the data path resolved the same way
    for name, s in out["models"].items():
        assert s["models_dir"] == str(fleet.resolve() / "state" / name / "models")
        assert s["production"] == str(fleet.resolve() / "state" / name / "catboost_model.cbm")
        assert s["data"] == str(fleet.resolve() / "data.csv")


def test_the_command_line_wins_over_the_file(fleet: Path) -> None:
    out = listed(fleet, "--iterations", "7", "--depth", "5")
    assert {s["iterations"] for s in out["models"].values()} == {7}
    assert {s["depth"] for s in out["models"].values()} == {5}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[models.churn]\niteratoins = 5\n", ["[models.churn]", "unknown key 'iteratoins'", "did you mean 'iterations'"]),
        ("[defaults]\nmodels_dri = 'x'\n[models.a]\n", ["[defaults]", "unknown key 'models_dri'", "did you mean 'models_dir'"]),
        ("[models.'bad name']\n", ["model name 'bad name'"]),
        ("[models.a]\nmodels_dir = 'm'\n[models.b]\nmodels_dir = 'm'\n", ["models a and b share models_dir"]),
        ("[models.a]\nproduction = 'p.cbm'\n[models.b]\nproduction = 'p.cbm'\n", ["models a and b share production"]),
        ("[models.a]\nmodels_dir = 'm'\n[models.b]\nproduction = 'm/x.cbm'\n", ["model b's production file", "lies in model a's models_dir"]),
        ("[fleet]\nmax_parallel = 0\n[models.a]\n", ["max_parallel must be a whole number of at least 1"]),
        ("[fleet]\nrot = 'x'\n[models.a]\n", ["unknown key 'rot'", "did you mean 'root'"]),
        ("[defaults]\ndata = 'x'\n", ["no models"]),
        ("[models.a\n", ["not valid TOML"]),
        ("[models.a]\nrequire_significance = 'yes'\n", ["[models.a] require_significance: must be true or false"]),
        ("[models.a]\niterations = 'many'\n", ["[models.a]: argument --iterations: invalid int value: 'many'"]),
        ("[models.a]\ndata_checks = 'sometimes'\n", ["[models.a]: argument --data-checks: invalid choice: 'sometimes'"]),
    ],
)
def test_a_bad_config_is_one_line_exit_2_and_nothing_written(tmp_path: Path, text: str, words: list[str]) -> None:
    write_csv(tmp_path / "data.csv", make_frame(100))
    (tmp_path / "fleet.toml").write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    for action in (["--list"], ["--all"], ["--model", "a"]):
        ran = run_main(main, "--config", "fleet.toml", *action, cwd=tmp_path)
        assert ran.returncode == 2, (action, ran)
        line = ran.stderr.strip()
        assert len(line.splitlines()) == 1 and line.startswith("error: "), ran.stderr
        assert all(w in line for w in words), line
    assert snapshot(tmp_path) == before


def test_unknown_model_and_fleet_flags_without_config(fleet: Path) -> None:
    ran = run_main(main, "--config", "fleet.toml", "--model", "chrun", cwd=fleet)
    assert ran.returncode == 2 and "no model 'chrun'; did you mean 'churn'?" in ran.stderr
    for flags in (["--model", "churn"], ["--all"], ["--list"], ["--max-parallel", "2"]):
        ran = run_main(main, *flags, cwd=fleet)
        assert ran.returncode == 2 and "go with --config FLEET.toml" in ran.stderr
    assert not (fleet / "state").exists()


def test_one_model_runs_in_its_own_folder_and_history_takes_model(fleet: Path) -> None:
    ran = run_main(main, "--config", "fleet.toml", "--model", "fraud", "-q", "--json", cwd=fleet)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["status"] == "deployed" and result["version"] == "v1.0.0"
    log = json.loads((fleet / "state" / "fraud" / "models" / "version_log.json").read_text())
    entry = log["versions"][0]
    assert entry["params"]["depth"] == 3 and entry["params"]["drop_columns"] == ["x3", "c2"] and entry["params"]["iterations"] == 15
    assert (fleet / "state" / "fraud" / "catboost_model.cbm").is_file() and (fleet / "state" / "fraud" / "logs" / "retrain.log").is_file()
    assert not (fleet / "state" / "churn").exists()  # only the named model ran
    ran = run_main(main, "--config", "fleet.toml", "--model", "fraud", "--history", "--json", cwd=fleet)
    assert json.loads(ran.stdout)["production"] == "v1.0.0"
    ran = run_main(main, "--config", "fleet.toml", "--model", "churn", "--history", "--json", cwd=fleet)
    assert json.loads(ran.stdout)["versions"] == []


def test_all_runs_every_model_and_a_broken_one_stops_none(fleet: Path) -> None:
    text = (fleet / "fleet.toml").read_text() + '\n[models.broken]\ndata = "missing.csv"\n\n[models.badtarget]\ntarget = "nope"\n'
    (fleet / "fleet.toml").write_text(text, encoding="utf-8")
    ran = run_script("retrain_model.py", "--config", "fleet.toml", "--all", "--max-parallel", "2", "--json", "-q", cwd=fleet)
    assert ran.returncode == 2, ran.stderr  # the failed models' own exit code (bad input)
    out = json.loads(ran.stdout)
    assert set(out) == {"churn", "fraud", "upsell", "broken", "badtarget"}
    for name in ("churn", "fraud", "upsell"):
        assert out[name]["exit_code"] == 0 and out[name]["status"] == "deployed", name
        assert json.loads((fleet / "state" / name / "models" / "version_log.json").read_text())["production"] == "v1.0.0"
    assert out["broken"]["exit_code"] == 2 and "missing.csv: file not found" in out["broken"]["error"]
    assert out["badtarget"]["exit_code"] == 2 and "'nope'" in out["badtarget"]["error"]
    last = ran.stderr.strip().splitlines()[-1]
    assert last == "error: 2 of 5 models failed: broken (exit 2), badtarget (exit 2); the others ran."


def test_the_shipped_example_config_is_valid() -> None:
    out = listed(ROOT, "--config", str(ROOT / "examples" / "fleet.toml"))
    assert list(out["models"]) == ["full", "new-customers", "quick"]
    assert out["models"]["quick"]["schedule"] == {"at": "04:00"}
    assert all(Path(s["data"]) == ROOT / "featured_dataset.csv" for s in out["models"].values())


# -- scheduler.py --config ------------------------------------------------------------------
JOBS = ROOT / "tests" / "jobs"


def job_starts(folder: Path) -> dict[str, float]:
    lines = [json.loads(x) for x in (folder / "job_record.jsonl").read_text().splitlines()]
    return {rec["argv"][rec["argv"].index("--model") + 1]: rec["t"] for rec in lines}


def test_scheduler_once_runs_every_model_at_most_n_at_once_and_a_failure_stays_its_own(fleet: Path) -> None:
    env = {"JOB_SLEEP": "2", "JOB_RECORD": str(fleet / "job_record.jsonl"), "JOB_FAIL_ARG": "fraud"}
    args = ("--config", "fleet.toml", "--once", "--retries", "0", "--script", str(JOBS / "ok.py"), "--", "--marker", "x")
    ran = run_script("scheduler.py", *args, cwd=fleet, env=env, timeout=120)
    assert ran.returncode == 3, ran.stderr  # fraud's own exit code; churn and upsell ran
    starts = job_starts(fleet)
    assert set(starts) == {"churn", "fraud", "upsell"}
    first, second, third = sorted(starts.values())
    assert third - first >= 1.9  # max_parallel 2: the third waited for a slot (each job sleeps 2 s)
    assert second - first < 1.5  # ... while the first two ran together
    records = [json.loads(x) for x in (fleet / "job_record.jsonl").read_text().splitlines()]
    assert all(r["argv"][:2] == ["--marker", "x"] and "--config" in r["argv"] for r in records)  # the user's arguments reach each run
    for name, outcome in (("churn", "success"), ("fraud", "failed"), ("upsell", "success")):
        status = json.loads((fleet / "state" / name / "models" / "scheduler_status.json").read_text())
        assert status["last_run"]["outcome"] == outcome and status["state"] == "stopped", name
    assert "[fraud] Run failed with exit code 3" in (fleet / "logs" / "scheduler.log").read_text()


def test_scheduler_fleet_refuses_a_bad_model_schedule_with_one_line(fleet: Path) -> None:
    (fleet / "fleet.toml").write_text(FLEET.replace('at = "04:00"', 'at = "25:00"'), encoding="utf-8")
    ran = run_script("scheduler.py", "--config", "fleet.toml", "--once", cwd=fleet)
    assert ran.returncode == 2 and ran.stderr.strip().splitlines() == [ran.stderr.strip()]
    assert "[models.upsell] --at '25:00': use HH:MM" in ran.stderr
    assert not (fleet / "state").exists()
    ran = run_script("scheduler.py", "--max-parallel", "2", cwd=fleet)
    assert ran.returncode == 2 and "--max-parallel goes with --config" in ran.stderr


# -- serve.py --config ----------------------------------------------------------------------
@pytest.mark.skipif(os.name == "nt", reason="stops the server with SIGTERM")
def test_one_server_serves_every_model_and_each_swaps_or_fails_on_its_own(fleet: Path) -> None:
    from test_serve import Server, rows

    text = FLEET.replace("threads = 1\n", 'threads = 1\nid_column = "customer_id"\n') + '\n[models.never]\ndata = "missing.csv"\n'
    (fleet / "fleet.toml").write_text(text, encoding="utf-8")
    ran = run_script("retrain_model.py", "--config", "fleet.toml", "--all", "-q", cwd=fleet)
    assert ran.returncode == 2 and "never (exit 2)" in ran.stderr  # three deployed; "never" has no data
    server = Server(fleet, "--config", "fleet.toml")
    try:
        models = {m["name"]: m for m in server.get("/models")[2]["models"]}
        assert set(models) == {"churn", "fraud", "upsell", "never"}
        assert all(models[n]["ready"] and models[n]["version"] == "v1.0.0" for n in ("churn", "fraud", "upsell"))
        assert models["never"]["ready"] is False and models["never"]["version"] is None and "does not exist" in models["never"]["last_error"]
        status, _, body = server.post(rows(5), "/models/churn/predict")
        assert status == 200 and body["version"] == "v1.0.0" and len(body["predictions"]) == 5
        status, _, body = server.post({"dataframe_records": rows(3)}, "/models/fraud/invocations")
        assert status == 200 and len(body["predictions"]) == 3
        status, _, body = server.post(rows(2), "/models/nope/predict")
        assert status == 404 and "no model 'nope'" in body["error"] and "churn" in body["error"]
        assert server.post(rows(2), "/models/never/predict")[0] == 503
        fraud_sha = server.get("/models/fraud/version")[2]["sha256"]
        # a new churn version, promoted: churn swaps, the others do not move
        assert run_main(main, "--config", "fleet.toml", "--model", "churn", "--force", "--seed", "9", "-q", cwd=fleet).returncode == 0
        assert run_main(main, "--config", "fleet.toml", "--model", "churn", "--promote", "v1.1.0", cwd=fleet).returncode == 0
        wait_for(lambda: server.get("/models/churn/version")[2]["version"] == "v1.1.0")
        assert server.post(rows(2), "/models/churn/predict")[2]["version"] == "v1.1.0"
        assert server.get("/models/fraud/version")[2]["sha256"] == fraud_sha
        # a bad production file for fraud: fraud keeps its last good version and says not ready; churn is untouched
        (fleet / "state" / "fraud" / "catboost_model.cbm").write_bytes(b"not a model")
        wait_for(lambda: not {m["name"]: m for m in server.get("/models")[2]["models"]}["fraud"]["ready"])
        status, _, body = server.post(rows(2), "/models/fraud/predict")
        assert status == 200 and body["version"] == "v1.0.0"
        health = server.get("/health")
        assert health[0] == 200 and health[2]["status"] == "degraded" and health[2]["models"]["churn"]["ready"] is True
        assert server.get("/ready")[0] == 200  # the process serves: per model, /models/NAME/ready
    finally:
        assert server.stop() == 0
    # each model logged its own production predictions in its own folder (where monitor.py --config --model reads them)
    for name, n in (("churn", 5 + 2), ("fraud", 3 + 2)):  # the rows posted to each above
        lines = [json.loads(x) for x in (fleet / "state" / name / "logs" / "predictions.jsonl").read_text().splitlines()]
        served = [x for x in lines if x["served"]]
        assert len(served) == n and {x["experiment"] for x in served} == {"production"}, name
    assert not (fleet / "state" / "upsell" / "logs" / "predictions.jsonl").exists()  # upsell got no request
    mon = run_main(monitor_main, "--config", "fleet.toml", "--all", "--history", "--json", cwd=fleet)
    assert mon.returncode == 0, mon.stderr
    assert set(json.loads(mon.stdout)) == {"churn", "fraud", "upsell", "never"}
    mon = run_main(monitor_main, "--config", "fleet.toml", "--history", cwd=fleet)
    assert mon.returncode == 2 and "add --model NAME (one of churn, fraud, upsell, never) or --all" in mon.stderr


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_the_fleet_page_lists_every_model_with_its_state_and_links_in_chromium(fleet: Path) -> None:
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    assert run_main(main, "--config", "fleet.toml", "--model", "churn", "-q", cwd=fleet).returncode == 0
    status = {"format": 1, "state": "running", "next_run": "2026-12-07T03:00:00+00:00"}
    (fleet / "state" / "churn" / "models" / "scheduler_status.json").write_text(json.dumps(status))
    ran = run_main(main, "--config", "fleet.toml", "--page", "--json", cwd=fleet)
    assert ran.returncode == 0, ran.stderr
    page = Path(json.loads(ran.stdout)["page"])
    assert page == fleet.resolve() / "state" / "index.html"
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(page.as_uri())
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]
        links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "tbody a")]
    finally:
        driver.quit()
    assert [r[0].splitlines()[0] for r in rows] == ["churn", "fraud", "upsell"]
    churn, fraud = rows[0], rows[1]
    assert churn[1] == "v1.0.0" and "v1.0.0 deployed" in churn[2] and churn[4] == "2026-12-07T03:00:00+00:00"
    assert fraud[1] == "none" and "never run" in fraud[2] and fraud[4] == "not scheduled"
    assert links == [(fleet / "state" / "churn" / "models" / "reports" / "v1.0.0.html").resolve().as_uri()]
