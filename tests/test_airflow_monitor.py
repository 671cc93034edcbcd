"""The monitor DAG (`catboost_monitor`, docs/airflow.md), run by real Airflow 3 with `airflow dags test`.

One Airflow home, one project, five DAG runs in the order a team meets them: a monitor with
bad input fails at once; the nightly DAG deploys v1.0.0 (and starts the cooldown's clock); a
worse v1.1.0 deployed by a run on bad data is rolled back by the monitor, which recommends nothing, so no
retrain; a recommended retrain inside the cooldown is skipped; the same recommendation after
the cooldown runs the retrain tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, make_frame, write_csv
from test_airflow import AirflowCLI, airflow_db, airflow_env, airflow_python, migrated  # noqa: F401 - the fixture that builds Airflow's own environment
from test_notify import Receiver

from retraining.ab.predlog import append_predictions, entity_hashes, lay_out_production
from retraining.registry import Registry
from retraining.training import load_model, predict

pytestmark = pytest.mark.skipif(os.name == "nt", reason="Airflow does not run on Windows")
MONITOR = "--outcomes outcomes.csv --id-column customer_id --label-column target --auto-rollback --no-page --check-settings settings.json"


def log_live(project: Path, live, served: str, shadow: str | None = None) -> None:
    """What serve.py --id-column customer_id logs for ``live``: production lines of ``served`` (and ``shadow`` in the bake)."""
    reg = Registry(project / "models", project / "catboost_model.cbm")
    data = reg.read_log()
    feats = live.drop(columns=["customer_id", "target"])
    versions = [served, shadow] if shadow else [served]
    scores = [predict(load_model(reg.version_path(v)), feats, ["c1", "c2"]) for v in versions]
    previous = (shadow, reg.find(data, shadow)["sha256"]) if shadow else None
    lines = lay_out_production(entity_hashes(live["customer_id"], "production"), version=served, sha=reg.find(data, served)["sha256"], previous=previous)
    append_predictions(project / "logs" / "predictions.jsonl", lines, *scores)


def dags_test(airflow: AirflowCLI, dag_id: str, day: str) -> str:
    run = airflow("dags", "test", dag_id, day)
    return run.stdout + run.stderr


def variable(airflow: AirflowCLI) -> dict:
    got = airflow("variables", "get", "catboost_retrain_last_start", timeout=120)
    assert got.returncode == 0, got.stdout[-2000:]
    text = got.stdout
    return json.loads(text[text.index("{") :])  # Airflow prints it indented, after any warnings


def versions(project: Path) -> tuple[str, list[str]]:
    log = json.loads((project / "models" / "version_log.json").read_text())
    return log["production"], [v["version"] for v in log["versions"]]


def test_the_monitor_dag_rolls_back_skips_in_the_cooldown_and_retrains_when_recommended(airflow_python, airflow_db, tmp_path):  # noqa: F811
    project = tmp_path / "project"
    project.mkdir()
    write_csv(project / "data.csv", make_frame(600))
    (project / "settings.json").write_text(json.dumps({"monitor": {}}))
    env = airflow_env(tmp_path / "home", project, "--data data.csv --iterations 40 --no-report")
    migrated(airflow_db, env)

    # 1. bad input: the monitor task fails at once (exit 2, no retry), with monitor.py's one line, and says so through --notify
    #    (this run in an `airflow dags test` process of its own; the next ones in one Airflow process, tests/airflow_cli.py)
    receiver = Receiver()
    try:
        env["RETRAIN_MONITOR_ARGS"] = MONITOR.replace("outcomes.csv", "missing.csv") + f" --notify {receiver.url('hook/T')}"
        argv = [str(airflow_python), "-m", "airflow", "dags", "test", "catboost_monitor", "2026-11-28"]
        run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        out = run.stdout + run.stderr
    finally:
        receiver.close()
    assert run.returncode == 1 and "DagRun failed" in out
    assert "monitor.py failed (bad input): error: missing.csv: no such file or folder" in out, out[-4000:]
    assert "up_for_retry" not in out and "DagRun Finished" in out and "state=failed" in out
    failed = [p["body"]["message"] for p in receiver.posts if p["body"]["message"].startswith("monitor.py (Airflow catboost_monitor.monitor) failed")]
    assert len(failed) == 1 and "(exit code 2, bad input)" in failed[0] and "missing.csv" in failed[0], [p["body"] for p in receiver.posts]
    env["RETRAIN_MONITOR_ARGS"] = MONITOR
    airflow = AirflowCLI(airflow_python, env, tmp_path)
    try:
        steps_two_to_five(airflow, project)
    finally:
        airflow.close()


def steps_two_to_five(airflow: AirflowCLI, project: Path) -> None:
    """Steps 2 to 5 of the test above, in one Airflow process."""
    from retrain_model import ModelRetrainer

    # 2. the nightly DAG deploys v1.0.0 and starts the cooldown's clock
    out = dags_test(airflow, "catboost_retrain", "2026-11-28")
    assert "v1.0.0 is now in production" in out, out[-4000:]
    started = variable(airflow)
    assert started["by"] == "catboost_retrain"
    assert abs(dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(started["at"])) < dt.timedelta(minutes=10)

    # 3. v1.1.0, trained on noise, deployed (it beat v1.0.0 on a noise holdout); live it is worse: the monitor rolls
    #    it back, and recommends nothing, so no retrain
    write_csv(project / "noise.csv", make_frame(600, seed=1, noise=True))
    ModelRetrainer(
        data_path=project / "noise.csv", models_dir=project / "models", production_path=project / "catboost_model.cbm", iterations=20, report=False
    ).retrain(force=True)
    assert versions(project) == ("v1.1.0", ["v1.0.0", "v1.1.0"])  # its own (noise) holdout said better: deployed
    live = make_frame(1500, seed=7, start_id=10**6)
    log_live(project, live, "v1.1.0", shadow="v1.0.0")
    write_csv(project / "outcomes.csv", live[["customer_id", "target"]])
    out = dags_test(airflow, "catboost_monitor", "2026-11-29")
    assert "monitor.py rollback: v1.1.0 -> v1.0.0: " in out, out[-4000:]
    assert "no retrain: the monitor does not recommend a retrain" in out
    assert versions(project) == ("v1.0.0", ["v1.0.0", "v1.1.0"])
    report = json.loads(next(line for line in out.splitlines() if line.startswith('{"production"')))
    assert report["actions"][0]["action"] == "rollback" and report["retrain"] is False and report["retrained"] is None

    # 4. v1.0.0 serves again; 100 labelled rows recommend a retrain, but the nightly run started < 6 h ago: skipped
    more = make_frame(1500, seed=8, start_id=2 * 10**6)
    log_live(project, more, "v1.0.0")
    write_csv(project / "outcomes.csv", more[["customer_id", "target"]])
    (project / "settings.json").write_text(json.dumps({"monitor": {"retrain_after_rows": 100}}))
    out = dags_test(airflow, "catboost_monitor", "2026-11-30")
    assert "no retrain: recommended (1500 labelled rows of v1.0.0 (retrain_after_rows 100))" in out, out[-4000:]
    assert f"a retrain started at {started['at']} by catboost_retrain, within the cooldown of 6 h" in out
    assert versions(project) == ("v1.0.0", ["v1.0.0", "v1.1.0"])

    # 5. seven hours later (the clock set back by hand), the same recommendation runs validate -> retrain
    earlier = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=7)).isoformat(timespec="seconds")
    clock = json.dumps({"at": earlier, "by": "catboost_retrain", "reasons": []})
    assert airflow("variables", "set", "catboost_retrain_last_start", clock, timeout=120).returncode == 0
    write_csv(project / "data.csv", make_frame(900))
    out = dags_test(airflow, "catboost_monitor", "2026-12-01")
    assert "retrain: recommended by the monitor: 1500 labelled rows of v1.0.0" in out, out[-4000:]
    assert "v1.2.0 " in out and "DagRun Finished" in out and "state=success" in out
    assert versions(project)[1] == ["v1.0.0", "v1.1.0", "v1.2.0"]
    again = variable(airflow)
    assert again["by"] == "catboost_monitor" and again["at"] > earlier and again["reasons"] == ["1500 labelled rows of v1.0.0 (retrain_after_rows 100)"]


def test_the_cooldown_rule_at_its_edges(airflow_python, tmp_path):  # noqa: F811
    """retrain_verdict, the rule decide applies, run in Airflow's environment (the DAG file imports airflow)."""
    script = (
        "import json, sys; from datetime import datetime, timedelta, timezone\n"
        f"sys.path.insert(0, {str(ROOT / 'deploy' / 'airflow')!r}); from retrain_dag import retrain_verdict\n"
        "now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)\n"
        "yes = {'retrain_recommended': True, 'reasons': ['decay']}\n"
        "at = lambda h: {'at': (now - timedelta(hours=h)).isoformat(), 'by': 'catboost_monitor'}\n"
        "cases = [(yes, None, 6), (yes, at(5.99), 6), (yes, at(6), 6), (yes, at(1), 0), ({'retrain_recommended': False}, None, 6),\n"
        "         (yes, {'at': '2026-12-06T09:00:00', 'by': 'x'}, 6)]\n"
        "print(json.dumps([retrain_verdict(a, last, h, now)['retrain'] for a, last, h in cases]))\n"
        "from retrain_dag import cooldown_hours\n"
        "for bad in ('six', -1, None):\n"
        "    try: cooldown_hours({'monitor_cooldown_hours': bad})\n"
        "    except Exception as exc: print(type(exc).__name__, exc)\n"
        "print(cooldown_hours({'monitor_cooldown_hours': '2.5'}))\n"
    )
    env = airflow_env(tmp_path / "home", tmp_path, "")
    proc = subprocess.run([str(airflow_python), "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # none yet: go; 5.99 h ago: wait; exactly 6 h: go; cooldown 0: go; not recommended: never; a naive time is UTC (3 h ago: wait)
    lines = proc.stdout.strip().splitlines()
    assert json.loads(lines[-5]) == [True, False, True, True, False, False]
    for line, bad in zip(lines[-4:-1], ("'six'", "-1", "None"), strict=True):  # a setting that is not a number of hours: one line, no retry
        assert line.startswith("AirflowFailException monitor_cooldown_hours must be a number of hours >= 0") and line.endswith(f"not {bad}")
    assert lines[-1] == "2.5"
