"""The fleet DAG on a real distributed engine: Airflow 3's CeleryExecutor with two named
workers, Redis as the broker and PostgreSQL as the metadata database, all on 127.0.0.1,
started and stopped by the test (docs/airflow.md, "Celery").

Everything runs as a team would run it: `airflow db migrate`, the API server (the workers
report through its execution API), the scheduler, the DAG processor and two
`airflow celery worker` processes; the test unpauses `catboost_retrain_fleet`, whose
schedule starts the nightly run, and reads the outcome from the metadata database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pg
import pytest
from helpers import ROOT, free_port, make_frame, write_csv
from test_airflow import airflow_python  # noqa: F401 - the fixture that builds Airflow's own environment

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="Airflow does not run on Windows"),
    pytest.mark.slow,
]
FLEET = """[fleet]
root = "state"
[defaults]
data = "data.csv"
iterations = 15
no_report = true
[models.churn]
[models.fraud]
depth = 3
[models.broken]
target = "nope"
"""


class Services:
    """PostgreSQL, Redis and the Airflow components as child processes, with their logs in one folder."""

    def __init__(self, base: Path) -> None:
        self.base, self.procs, self.files, self.cluster = base, [], [], None

    def start(self, name: str, argv: list[str], env: dict) -> None:
        self.files.append((self.base / f"{name}.log").open("w"))
        self.procs.append(subprocess.Popen(argv, env=env, stdout=self.files[-1], stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self.files:
            f.close()
        if self.cluster is not None:
            pg.stop(self.cluster)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(self.base.glob("*.log")))


def wait_until(what: str, condition, seconds: float, services: Services) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"{what} within {seconds:.0f} s\n{services.logs()}")


def test_the_fleet_dag_runs_on_celery_workers_and_a_broken_model_fails_only_itself(airflow_python, tmp_path):  # noqa: F811
    assert shutil.which("redis-server"), "Debian's redis-server is needed; .ci/run installs it"
    base = Path(tempfile.mkdtemp(prefix="retrain-celery-", dir="/tmp"))  # PostgreSQL's user must reach it
    base.chmod(0o755)
    services = Services(base)
    try:
        services.cluster = cluster = pg.start(base)
        cluster.psql("CREATE DATABASE airflow", database="postgres")
        redis_port, api_port = free_port(), free_port()
        services.start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], dict(os.environ))
        project = tmp_path / "project"
        project.mkdir()
        write_csv(project / "data.csv", make_frame(500))
        (project / "fleet.toml").write_text(FLEET, encoding="utf-8")
        naming = tmp_path / "naming"  # each worker records its own name as the task's hostname
        naming.mkdir()
        (naming / "worker_name.py").write_text("import os, socket\n\n\ndef name():\n    return os.environ.get('WORKER_NAME') or socket.getfqdn()\n")
        env = airflow_celery_env(tmp_path / "home", project, naming, cluster, redis_port, api_port)
        airflow = [str(airflow_python), "-m", "airflow"]
        migrate = subprocess.run([*airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        services.start("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port)], env)
        services.start("scheduler", [*airflow, "scheduler"], env)
        services.start("dag-processor", [*airflow, "dag-processor"], env)
        for worker in ("worker1", "worker2"):
            services.start(worker, [*airflow, "celery", "worker", "--celery-hostname", f"{worker}@%h", "--concurrency", "1"], {**env, "WORKER_NAME": worker})
        wait_until("the DAG parsed", lambda: "catboost_retrain_fleet" in cluster.psql("SELECT dag_id FROM dag", database="airflow"), 600, services)
        # Unpausing is enough: with catchup=False the scheduler starts the run of the latest 03:00
        # at once. A manual trigger on top of it (as before) queued a second, identical run behind
        # it (max_active_runs=1): twice the work for the same checks.
        assert subprocess.run([*airflow, "dags", "unpause", "catboost_retrain_fleet"], env=env, capture_output=True, timeout=300).returncode == 0
        runs = "SELECT run_id, run_type FROM dag_run WHERE dag_id = 'catboost_retrain_fleet'"
        wait_until("the nightly run created", lambda: "scheduled" in cluster.psql(runs, database="airflow"), 300, services)
        listed = [[c.strip() for c in line.split("|")] for line in cluster.psql(runs, database="airflow").splitlines()[2:] if "|" in line]
        assert [t for _, t in listed] == ["scheduled"], listed  # one run, made by the schedule
        run_id = listed[0][0]

        def state() -> str:
            return cluster.psql(f"SELECT state FROM dag_run WHERE run_id = '{run_id}'", database="airflow").split()[2]

        wait_until("the DAG run finished", lambda: state() in ("success", "failed"), 900, services)
        rows = cluster.psql(f"SELECT task_id, map_index, state, hostname FROM task_instance WHERE run_id = '{run_id}'", database="airflow")
        tis = [[c.strip() for c in line.split("|")] for line in rows.splitlines()[2:] if "|" in line]
        by = {(t, int(i)): (s, h) for t, i, s, h in tis}
    finally:
        services.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert state_of(by, "summary") == "failed"  # a model failed, so the run fails (the summary does not turn it green)
    names = ["churn", "fraud", "broken"]
    for index, name in enumerate(names):
        log = project / "state" / name / "models" / "version_log.json"
        if name == "broken":
            assert by[("model.validate", index)][0] == "failed" and by[("model.retrain", index)][0] == "upstream_failed"
            assert not log.exists()
        else:
            assert [by[(t, index)][0] for t in ("model.validate", "model.retrain", "model.decide")] == ["success"] * 3, name
            assert json.loads(log.read_text())["production"] == "v1.0.0", name
    hosts = {h for (t, _), (s, h) in by.items() if t.startswith("model.") and s == "success"}
    assert hosts == {"worker1", "worker2"}  # the models' tasks ran on both workers


def state_of(by: dict, task: str) -> str:
    return by[(task, -1)][0]


def airflow_celery_env(home: Path, project: Path, naming: Path, cluster, redis_port: int, api_port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    auth = f"{pg.USER}:{pg.PASSWORD}@127.0.0.1:{cluster.port}/airflow"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "deploy" / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://{auth}",
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql+psycopg2://{auth}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET="a-test-secret-of-enough-length-0123456789",
        AIRFLOW__API__SECRET_KEY="a-test-secret-key",
        AIRFLOW__CORE__HOSTNAME_CALLABLE="worker_name.name",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        # A task once hung between its first log line and reporting "running" (a loaded machine,
        # 2026-12-06 10:36): the scheduler requeued it after this timeout, 600 s by default.
        AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT="180",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        PYTHONPATH=str(naming),
        RETRAIN_PROJECT_DIR=str(ROOT),
        RETRAIN_WORK_DIR=str(project),
        RETRAIN_PYTHON=sys.executable,
        RETRAIN_ARGS="--config fleet.toml",
        RETRAIN_MAX_PARALLEL="2",
    )
    return env
