"""The Airflow DAG, run by real Airflow 3 in its own virtual environment.

The fixture builds that environment (.venv-airflow, or $AIRFLOW_VENV) from
requirements-airflow.txt the first time, then: a DagBag import check, and
`airflow db migrate` on SQLite + `airflow dags test` of the DAG on a small dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, make_frame, write_csv

DAGS = ROOT / "deploy" / "airflow"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="Airflow does not run on Windows")


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    from filelock import FileLock

    venv = Path(os.environ.get("AIRFLOW_VENV", ROOT / ".venv-airflow"))
    python = venv / "bin" / "python"
    lock = Path(tempfile.gettempdir()) / f"retrain-airflow-venv-{hashlib.sha256(str(venv.resolve()).encode()).hexdigest()[:12]}.lock"
    requirements = ROOT / "requirements-airflow.txt"
    stamp = venv / "requirements-airflow.sha256"  # what the environment was last installed from
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    with FileLock(str(lock)):  # three modules use it; under xdist the first worker builds it, the others wait
        probe = subprocess.run([str(python), "-c", "import airflow.sdk"], capture_output=True) if python.exists() else None
        if probe is None or probe.returncode != 0:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        if probe is None or probe.returncode != 0 or not stamp.is_file() or stamp.read_text().strip() != wanted:
            # new, broken, or made from an older requirements-airflow.txt (e.g. before the Celery
            # packages were added): pip installs what is missing
            subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True, timeout=1800)
            stamp.write_text(wanted + "\n")
    return python


@pytest.fixture(scope="module")
def airflow_db(airflow_python: Path, tmp_path_factory) -> Path:
    """`airflow db migrate` once per module, as the docs tell a user to; each test starts from a copy."""
    home = tmp_path_factory.mktemp("airflow-template")
    proc = subprocess.run([str(airflow_python), "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=airflow_env(home, home, ""), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home / "airflow.db"


def migrated(airflow_db: Path, env: dict) -> None:
    """The migrated database, copied into this test's AIRFLOW_HOME (SQLite: one file)."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(airflow_db, home / "airflow.db")


def airflow_env(home: Path, project: Path, args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        RETRAIN_PROJECT_DIR=str(ROOT),  # the checkout holding retrain_model.py
        RETRAIN_WORK_DIR=str(project),  # where models/, logs/ and catboost_model.cbm go
        RETRAIN_PYTHON=sys.executable,  # the app's own environment, not Airflow's
        RETRAIN_ARGS=args,
    )
    return env


class AirflowCLI:
    """``airflow ARGV`` for one Airflow home, many times, in one Airflow process (tests/airflow_cli.py).

    Each call runs the command as ``airflow/__main__.py`` would, with the RETRAIN_* settings of
    ``env`` as they are at the call, and returns what a ``subprocess.run`` of ``airflow ARGV``
    would (stdout and stderr together in ``stdout``). ``airflow dags test`` in a process of its
    own is tested too (test_dags_test_deploys...; the fleet DAG; the failing DAGs).
    """

    def __init__(self, airflow_python: Path, env: dict, folder: Path) -> None:
        self.env, self.folder, self.count = env, folder, 0
        self.started = {k for k in env if k.startswith("RETRAIN_")}  # what the process began with
        self.proc = subprocess.Popen(
            [str(airflow_python), str(Path(__file__).with_name("airflow_cli.py"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def __call__(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
        import selectors

        self.count += 1
        out = self.folder / f"airflow-{self.count}.txt"
        settings = {k: self.env.get(k) for k in self.started | {k for k in self.env if k.startswith("RETRAIN_")}}
        self.proc.stdin.write(json.dumps({"argv": list(argv), "env": settings, "out": str(out)}) + "\n")
        self.proc.stdin.flush()
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout), f"airflow {' '.join(argv)} did not finish in {timeout} s"
        line = self.proc.stdout.readline()
        assert line, f"the Airflow process ended (exit {self.proc.wait()}) during airflow {' '.join(argv)}"
        return subprocess.CompletedProcess(["airflow", *argv], json.loads(line)["code"], out.read_text(encoding="utf-8"), "")

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def test_dagbag_imports_and_settings_match_the_readme(airflow_python, airflow_db, tmp_path):
    script = (
        "import json; from airflow.models.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "d = bag.get_dag('catboost_retrain')\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()}, 'timetable': repr(d.timetable) + str(vars(d.timetable)),"
        " 'catchup': d.catchup, 'max_active_runs': d.max_active_runs, 'tasks': sorted(t.task_id for t in d.tasks),"
        " 'default_args': {k: str(v) for k, v in d.default_args.items()}}))\n"
    )
    env = airflow_env(tmp_path / "home", tmp_path, "")
    migrated(airflow_db, env)
    proc = subprocess.run([str(airflow_python), "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert "0 3 * * *" in info["timetable"] and info["catchup"] is False and info["max_active_runs"] == 1
    assert info["tasks"] == ["decide", "deployed", "kept_for_review", "report", "retrain", "unchanged", "validate_data"]
    args = info["default_args"]
    assert args["retries"] == "2" and args["retry_exponential_backoff"] == "True" and args["execution_timeout"] == "2:00:00"
    page = (ROOT / "docs" / "airflow.md").read_text(encoding="utf-8")
    assert "`0 3 * * *`" in page and "catchup=False" in page and "max_active_runs=1" in page


def test_dags_test_deploys_then_the_variable_wins_keeps_for_review_and_a_json_string_is_refused(airflow_python, airflow_db, tmp_path):
    """Configured by the environment, then by the Variable as docs/airflow.md says (which wins), then a Variable set with --json."""
    project = tmp_path / "project"
    project.mkdir()
    write_csv(project / "data.csv", make_frame(600))
    home = tmp_path / "home"
    env = airflow_env(home, project, "--data data.csv --iterations 40 --no-report")
    airflow = [str(airflow_python), "-m", "airflow"]
    migrated(airflow_db, env)
    first = subprocess.run([*airflow, "dags", "test", "catboost_retrain", "2026-11-28"], capture_output=True, text=True, env=env, timeout=600)
    out = first.stdout + first.stderr
    assert first.returncode == 0 and "state=success" in out, out[-4000:]
    assert "v1.0.0 is now in production" in out
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["production"] == "v1.0.0" and (project / "catboost_model.cbm").is_file()

    # every setting of the environment now points at the wrong place; the Variable names the right ones
    # (runs 2 and 3 and the Variable's commands in one Airflow process: AirflowCLI)
    elsewhere = tmp_path / "elsewhere"
    env.update(RETRAIN_PROJECT_DIR=str(elsewhere), RETRAIN_WORK_DIR=str(elsewhere), RETRAIN_PYTHON=str(elsewhere / "python"), RETRAIN_ARGS="--this-would-fail")
    args = ["--data", "data.csv", "--iterations", "1", "--depth", "1", "--no-report"]
    conf = json.dumps({"project_dir": str(ROOT), "work_dir": str(project), "python": sys.executable, "args": args})
    cli = AirflowCLI(airflow_python, env, tmp_path)
    try:
        assert cli("variables", "set", "catboost_retrain", conf, timeout=120).returncode == 0  # as docs/airflow.md says
        second = cli("dags", "test", "catboost_retrain", "2026-11-29")
        assert second.returncode == 0, second.stdout[-4000:]
        assert "v1.1.0 was kept for manual review, production stays v1.0.0" in second.stdout
        log = json.loads((project / "models" / "version_log.json").read_text())
        assert log["production"] == "v1.0.0" and [v["decision"] for v in log["versions"]] == ["deployed", "kept for review"]

        # with --json, Airflow encodes the text once more: the Variable holds a string, which settings() refuses in one line
        assert cli("variables", "set", "catboost_retrain", conf, "--json", timeout=120).returncode == 0
        run = cli("dags", "test", "catboost_retrain", "2026-11-30")
    finally:
        cli.close()
    out = run.stdout
    assert run.returncode == 1 and "DagRun failed" in out
    assert "the Airflow Variable catboost_retrain must hold a JSON object" in out and "it holds a str" in out, out[-4000:]
    assert "AttributeError" not in out
    assert len(json.loads((project / "models" / "version_log.json").read_text())["versions"]) == 2  # nothing ran


def test_bad_data_fails_the_validate_task_with_the_error_line_and_sends_the_failed_message(airflow_python, airflow_db, tmp_path):
    from test_notify import Receiver

    receiver = Receiver()
    try:
        project = tmp_path / "project"
        project.mkdir()
        write_csv(project / "data.csv", make_frame(600).drop(columns="target"))
        env = airflow_env(tmp_path / "home", project, f"--data data.csv --notify {receiver.url('hook/TOKEN123')}")
        airflow = [str(airflow_python), "-m", "airflow"]
        migrated(airflow_db, env)
        proc = subprocess.run([*airflow, "dags", "test", "catboost_retrain", "2026-11-28"], capture_output=True, text=True, env=env, timeout=600)
    finally:
        receiver.close()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "DagRun failed" in out
    assert "retrain_model.py failed (bad input): error: " in out and "no target column 'target'" in out
    assert not (project / "models").exists()
    # the task fails for good (bad input: no retry), and says so through the notifier, once
    messages = [p["body"]["message"] for p in receiver.posts]
    callback = [m for m in messages if m.startswith("retrain_model.py (Airflow catboost_retrain.validate_data) failed (exit code 2, bad input)")]
    assert len(callback) == 1, (messages, out[-4000:])
    assert "error: " in callback[0] and "no target column 'target'" in callback[0]
    assert any(m.startswith("retrain_model.py failed (exit code 2, bad input)") for m in messages)  # the run's own message
    assert "up_for_retry" not in out


def test_the_fleet_dag_maps_over_the_models_and_a_broken_model_fails_only_itself_and_the_run(airflow_python, airflow_db, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    write_csv(project / "data.csv", make_frame(500))
    fleet = (
        '[fleet]\nroot = "state"\n[defaults]\ndata = "data.csv"\niterations = 15\n[models.churn]\n[models.fraud]\ndepth = 3\n[models.broken]\ntarget = "nope"\n'
    )
    (project / "fleet.toml").write_text(fleet, encoding="utf-8")
    env = airflow_env(tmp_path / "home", project, "--config fleet.toml --no-report")
    airflow = [str(airflow_python), "-m", "airflow"]
    migrated(airflow_db, env)
    run = subprocess.run([*airflow, "dags", "test", "catboost_retrain_fleet", "2026-11-28"], capture_output=True, text=True, env=env, timeout=900)
    out = run.stdout + run.stderr
    assert "1 of 3 models failed: broken" in out and "DagRun failed" in out, out[-4000:]
    for name in ("churn", "fraud"):
        assert json.loads((project / "state" / name / "models" / "version_log.json").read_text())["production"] == "v1.0.0"
        assert f"{name}: v1.0.0 deployed" in out
    assert "no target column 'nope'" in out and not (project / "state" / "broken" / "models" / "version_log.json").exists()
