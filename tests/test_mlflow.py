"""MLflow mirror against a real tracking server started by a fixture: SQLite, then PostgreSQL as backend store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import ROOT, free_port, make_frame, retrain_script, retrainer, run_main, write_csv
from helpers import retrain_main as retrain_here
from pg import postgres  # noqa: F401 - session fixture: a throwaway PostgreSQL cluster (tests/pg.py)

from retraining.cli.retrain import main as retrain_main


def mlflow_client(uri: str):
    """MLflow's client, imported here: importing mlflow costs every pytest worker ~1.5 s at collection.

    No importorskip: a skipped integration test would hide a missing install. requirements-dev.txt
    pulls in requirements-mlflow.txt, so `pip install -r requirements-dev.txt` brings mlflow.
    """
    from mlflow import MlflowClient

    return MlflowClient(uri)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def mlflow_uri(tmp_path_factory, request):
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    backend = f"sqlite:///{home}/mlflow.db"
    if request.param == "postgresql":  # the setup a team moves to once it outgrows SQLite
        cluster = request.getfixturevalue("postgres")
        cluster.psql(f"CREATE DATABASE mlflow_{port}", database="postgres")
        backend = cluster.url(database=f"mlflow_{port}", driver="+psycopg")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--artifacts-destination", str(home / "artifacts")]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("the MLflow server did not start: " + (home / "server.log").read_text()[-2000:])
    yield uri
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def retrain(project, uri, *args, model="m", process=False):
    """A nightly run that mirrors to MLflow: ``main(argv)`` in this process, or the script in its own (``process``)."""
    argv = ("--iterations", "30", "-q", "--no-report", "--mlflow-uri", uri, "--mlflow-model-name", model, *args)
    return retrain_script(project, *argv) if process else retrain_here(project, *argv)


def alias(client, model, name):
    return client.get_model_version_by_alias(model, name).tags["semver"]


# The sync's own logic (outage, redo, the caller's settings) is the client's and the same on any
# backend: it runs on SQLite. The server-side calls it makes (runs searched by tag, versions,
# aliases) run on both backends in the deploy/reject/rollback test.
CLIENT_SIDE = pytest.mark.parametrize("mlflow_uri", ["sqlite"], indirect=True)


def test_runs_versions_and_aliases_follow_deploy_rejection_and_rollback(project, mlflow_uri):
    client = mlflow_client(mlflow_uri)
    first = retrain(project, mlflow_uri, model="flow", process=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("v1.0.0: deployed")  # MLflow's own prints stay off the process's stdout
    assert alias(client, "flow", "champion") == "v1.0.0"
    worse = retrain(project, mlflow_uri, "--iterations", "1", "--depth", "1", model="flow")
    assert worse.returncode == 0 and "kept for review" in worse.stdout
    assert alias(client, "flow", "champion") == "v1.0.0" and alias(client, "flow", "challenger") == "v1.1.0"
    exp = client.get_experiment_by_name("catboost-retraining")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id], filter_string="tags.`retrain.version` = 'v1.1.0'")}
    run = runs["v1.1.0"]
    assert run.data.tags["retrain.decision"] == "kept for review" and "worse" in run.data.tags["retrain.reason"]
    assert run.data.tags["retrain.rule"] == "noise" and run.data.tags["retrain.rule.verdict"] == "worse"  # #27
    assert {"retrain.rule.alpha", "retrain.rule.margin", "retrain.rule.p_worse", "retrain.rule.drop"} <= set(run.data.tags)
    assert {"candidate_roc_auc", "champion_roc_auc", "delong_p_value", "delong_ci_low"} <= set(run.data.metrics)
    assert run.data.params["iterations"] == "1" and len(run.data.tags["retrain.dataset_sha256"]) == 64
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "version_metadata.json" in artifacts
    mv = client.get_model_version_by_alias("flow", "challenger")
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    loaded = mlflow.catboost.load_model(f"models:/flow/{mv.version}")
    assert loaded.tree_count_ == 1
    promo = run_main(retrain_main, "--promote", "v1.1.0", "--mlflow-uri", mlflow_uri, "--mlflow-model-name", "flow", cwd=project)
    assert promo.returncode == 0, promo.stderr
    assert alias(client, "flow", "champion") == "v1.1.0"
    back = run_main(retrain_main, "--promote", "v1.0.0", "--mlflow-uri", mlflow_uri, "--mlflow-model-name", "flow", cwd=project)
    assert back.returncode == 0 and alias(client, "flow", "champion") == "v1.0.0"
    assert len(client.search_model_versions("name='flow'")) == 2


@CLIENT_SIDE
def test_outage_then_recovery_without_duplicates(project, mlflow_uri):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = retrain(project, down, model="outage")
    assert proc.returncode == 0 and proc.stdout.startswith("v1.0.0: deployed")
    assert "unreachable" in proc.stderr and "--mlflow-sync" in proc.stderr
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["mlflow_pending"]["uri"] == down and log["production"] == "v1.0.0"
    failed = run_main(retrain_main, "--mlflow-sync", "--mlflow-uri", down, "--mlflow-model-name", "outage", cwd=project)
    assert failed.returncode == 6 and failed.stderr.startswith("error: ") and "unreachable" in failed.stderr
    for _ in range(2):  # the second sync must change nothing
        synced = run_main(retrain_main, "--mlflow-sync", "--mlflow-uri", mlflow_uri, "--mlflow-model-name", "outage", cwd=project)
        assert synced.returncode == 0, synced.stderr
    client = mlflow_client(mlflow_uri)
    assert [mv.tags["semver"] for mv in client.search_model_versions("name='outage'")] == ["v1.0.0"]
    assert alias(client, "outage", "champion") == "v1.0.0"
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert "mlflow_pending" not in log and log["versions"][0]["mlflow"]["model_version"] == "1"
    # the next run pushes its own version; the earlier one is not pushed twice
    write_csv(project / "data.csv", make_frame(700, seed=5))
    assert retrain(project, mlflow_uri, model="outage").returncode == 0
    assert sorted(mv.tags["semver"] for mv in client.search_model_versions("name='outage'")) == ["v1.0.0", "v1.1.0"]


@CLIENT_SIDE
def test_a_sync_leaves_the_callers_mlflow_settings_alone(project, mlflow_uri, monkeypatch):
    """mlflow.set_tracking_uri writes os.environ; a library call must not leave that behind."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    before = mlflow.get_tracking_uri(), dict(os.environ)
    result = retrainer(project, mlflow_uri=mlflow_uri, mlflow_model_name="scoped", report=False).retrain()
    assert result.deployed
    assert alias(mlflow_client(mlflow_uri), "scoped", "champion") == "v1.0.0"  # the sync happened
    after = mlflow.get_tracking_uri(), dict(os.environ)
    assert after[0] == before[0]
    public = [{k: v for k, v in env.items() if not k.startswith("_MLFLOW_")} for env in (before[1], after[1])]  # MLflow's own telemetry id comes and goes
    assert public[0] == public[1]


@CLIENT_SIDE
def test_half_written_sync_is_redone_not_duplicated(project, mlflow_uri):
    assert retrain(project, mlflow_uri, model="half").returncode == 0
    client = mlflow_client(mlflow_uri)
    log_path = project / "models" / "version_log.json"
    log = json.loads(log_path.read_text())
    run_id = log["versions"][0]["mlflow"]["run_id"]
    client.set_tag(run_id, "retrain.synced", "false")  # as if the sync died before its last step
    del log["versions"][0]["mlflow"]
    log_path.write_text(json.dumps(log))
    assert run_main(retrain_main, "--mlflow-sync", "--mlflow-uri", mlflow_uri, "--mlflow-model-name", "half", cwd=project).returncode == 0
    versions = client.search_model_versions("name='half'")
    assert len(versions) == 1 and versions[0].run_id != run_id
    exp = client.get_experiment_by_name("catboost-retraining")
    registry_id = json.loads(log_path.read_text())["registry_id"]
    assert len(client.search_runs([exp.experiment_id], filter_string=f"tags.`retrain.registry` = '{registry_id}'")) == 1


def test_without_mlflow_installed_the_flag_says_what_to_install(project):
    code = (
        "import sys; sys.modules['mlflow'] = None; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[:1] + sys.argv[2:]; "
        "import retrain_model; sys.exit(retrain_model.main())"
    )
    base = [sys.executable, "-c", code, str(ROOT), "--data", "data.csv", "--iterations", "10", "-q", "--no-report"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    plain = subprocess.run(base, cwd=project, capture_output=True, text=True, env=env)
    assert plain.returncode == 0, plain.stderr  # the core needs no mlflow
    flagged = subprocess.run([*base, "--force", "--mlflow-uri", "http://127.0.0.1:1"], cwd=project, capture_output=True, text=True, env=env)
    assert flagged.returncode == 2 and "pip install -r requirements-mlflow.txt" in flagged.stderr


def test_every_finding_of_a_check_reaches_its_mlflow_tag():
    from retraining.mlflow_sync import check_tags

    checks = [
        {"name": "out_of_range", "severity": "block", "message": "'age' outside"},
        {"name": "drift", "severity": "warn", "message": "'job' shifted"},
        {"name": "out_of_range", "severity": "block", "message": "'day' outside"},
    ]
    assert check_tags(checks) == {"out_of_range": "block: 'age' outside | block: 'day' outside", "drift": "warn: 'job' shifted"}
