"""Airflow 3 DAG: nightly CatBoost retraining with retrain_model.py.

validate_data -> retrain -> decide -> (deployed | kept_for_review | unchanged) -> report

A fleet (several models from one fleet.toml, docs/fleet.md): the second DAG,
``catboost_retrain_fleet``, reads the same configuration, whose "args" name
``--config fleet.toml``; it maps one task group (validate, retrain, decide) over the
models that ``retrain_model.py --config F --list --json`` lists, at most ``max_parallel``
at once (the Variable's "max_parallel", else $RETRAIN_MAX_PARALLEL, else 2), and fails
when any model failed (only that model's tasks fail):

    list_models -> model[i]: validate -> retrain -> decide -> summary

The monitor (docs/monitoring.md): the third DAG, ``catboost_monitor``, runs
``monitor.py --json`` on its own schedule (the Variable's "monitor_schedule", else
$RETRAIN_MONITOR_SCHEDULE, else hourly) with the Variable's "monitor_args", and retrains
(validate -> retrain) when the monitor recommends it, unless a retrain started less than
"monitor_cooldown_hours" ago (default 6). The nightly DAG stays as the floor. The clock of
the cooldown is the Airflow Variable ``catboost_retrain_last_start`` ({"at", "by",
"reasons"}), written when either DAG starts a retrain, so it survives between runs and
workers. What the monitor did by itself (a rollback) is shown and returned by ``report``:

    monitor -> decide -> (validate_data -> retrain | no_retrain) -> report

Airflow runs in its own virtual environment; the project runs in its own. The DAG calls
the project's interpreter as a child process, so the two never share packages.
Configuration, from the Airflow Variable ``catboost_retrain`` (JSON), else environment:

    {"project_dir": "/opt/catboost-retrain",            # RETRAIN_PROJECT_DIR: where retrain_model.py is
     "work_dir": "/var/lib/catboost-retrain",           # RETRAIN_WORK_DIR: models/, logs/, catboost_model.cbm
                                                        #   (default: project_dir)
     "python": "/opt/catboost-retrain/.venv/bin/python", # RETRAIN_PYTHON (default: project_dir/.venv/bin/python)
     "args": ["--data", "/data/new.csv"],               # RETRAIN_ARGS (a shell-quoted string)
     "monitor_args": ["--outcomes", "/data/outcomes.csv", "--id-column", "id", "--label-column", "y"],
                                                        # RETRAIN_MONITOR_ARGS: monitor.py's (catboost_monitor)
     "monitor_cooldown_hours": 6}                       # RETRAIN_MONITOR_COOLDOWN_HOURS

    airflow variables set catboost_retrain '{"project_dir": "/opt/catboost-retrain"}'

(Without ``--json``: with it, Airflow encodes the JSON text once more and stores a string.)

Notifications: a task that fails for good (retries used up, or bad input) sends the same
``failed`` message as retrain_model.py, through the project's own notify code run by the
project's interpreter (Airflow's environment needs no apprise). Targets: --notify URL in
"args", or RETRAIN_NOTIFY in the workers' environment (see docs/notifications.md).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import Variable, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

DAG_ID = "catboost_retrain"
FLEET_DAG_ID = "catboost_retrain_fleet"
MONITOR_DAG_ID = "catboost_monitor"
LAST_START = "catboost_retrain_last_start"  # the Variable that holds when the last retrain started (the monitor's cooldown)
# retrain_model.py's and monitor.py's exit codes (retraining.errors.ExitCode; tests/test_dag_exit_codes.py keeps this table equal to it)
EXIT_CODES = {
    2: "bad input",
    3: "damaged models folder or failing database query",
    4: "busy",
    5: "CatBoost could not train",
    7: "database did not answer",
    8: "no space left on the disk",
}
NOT_WORTH_A_RETRY = {2, 3}  # bad data, a damaged models folder, a refused login: a retry gives the same answer


def settings() -> dict:
    """Project folder, interpreter and extra arguments: Variable first, then environment."""
    conf = Variable.get("catboost_retrain", default=None, deserialize_json=True) or {}
    if not isinstance(conf, dict):
        raise AirflowFailException(
            'the Airflow Variable catboost_retrain must hold a JSON object, e.g. {"project_dir": "/opt/catboost-retrain"}; '
            f"it holds a {type(conf).__name__} (set it without --json: airflow variables set catboost_retrain '{{...}}')"
        )
    project = Path(conf.get("project_dir") or os.environ.get("RETRAIN_PROJECT_DIR") or ".").resolve()
    default_python = project / (".venv/Scripts/python.exe" if os.name == "nt" else ".venv/bin/python")
    python = conf.get("python") or os.environ.get("RETRAIN_PYTHON") or str(default_python)
    args = conf.get("args")
    if args is None:
        args = shlex.split(os.environ.get("RETRAIN_ARGS", ""))
    work = Path(conf.get("work_dir") or os.environ.get("RETRAIN_WORK_DIR") or project).resolve()
    monitor = conf.get("monitor_args")
    if monitor is None:
        monitor = shlex.split(os.environ.get("RETRAIN_MONITOR_ARGS", ""))
    return {
        "project_dir": str(project),
        "work_dir": str(work),
        "python": python,
        "args": [str(a) for a in args],
        "monitor_args": [str(a) for a in monitor],
        "monitor_cooldown_hours": conf.get("monitor_cooldown_hours", os.environ.get("RETRAIN_MONITOR_COOLDOWN_HOURS", 6)),  # see cooldown_hours
    }


def run_script(script: str, argv: list[str], notify_args: list[str]) -> dict:
    """Run one of the project's scripts (it prints one JSON object); raise with its one-line error, mapped by exit code."""
    cfg = settings()
    proc = subprocess.run([cfg["python"], str(Path(cfg["project_dir"]) / script), *argv], cwd=cfg["work_dir"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        kind = EXIT_CODES.get(proc.returncode, f"exit code {proc.returncode}")
        message = f"{script} failed ({kind}): {proc.stderr.strip()[-2000:]}"
        # fail now, no retries (bad input, damaged folder); else retried with backoff (busy, crash, CatBoost failure, database down)
        error = AirflowFailException(message) if proc.returncode in NOT_WORTH_A_RETRY else RuntimeError(message)
        error.exit_code = proc.returncode  # for notify_failure
        error.error_line = next((line for line in reversed(proc.stderr.splitlines()) if line.strip()), message[:300])
        error.script, error.notify_args = script, notify_args
        raise error
    return json.loads(proc.stdout)


def run_retrain(extra: list[str]) -> dict:
    """Run retrain_model.py with --json; raise with its one-line error on failure."""
    args = settings()["args"]
    return run_script("retrain_model.py", [*args, *extra, "--json", "-q"], args)


def run_monitor() -> dict:
    """Run monitor.py --json with "monitor_args" (and the retrain's --models-dir/--production unless they name their own)."""
    cfg = settings()
    if not cfg["monitor_args"]:
        raise AirflowFailException(
            f'{MONITOR_DAG_ID} needs "monitor_args" in the Variable catboost_retrain (or $RETRAIN_MONITOR_ARGS): '
            '["--outcomes", SOURCE, "--id-column", ID, "--label-column", LABEL] (docs/airflow.md)'
        )
    argv = list(cfg["monitor_args"])
    for flag in ("--models-dir", "--production"):
        given = [k for k, a in enumerate(cfg["args"]) if a == flag or a.startswith(flag + "=")]
        if given and not any(a == flag or a.startswith(flag + "=") for a in argv):
            k = given[-1]
            argv += cfg["args"][k : k + (1 if "=" in cfg["args"][k] else 2)]
    return run_script("monitor.py", [*argv, "--json", "--quiet"], cfg["monitor_args"])


def cooldown_hours(cfg: dict) -> float:
    """The monitor's cooldown, checked only where it is used (a bad value never stops the nightly retrain)."""
    try:
        hours = float(cfg["monitor_cooldown_hours"])
    except (TypeError, ValueError):
        hours = -1.0
    if not hours >= 0:
        where = "the Variable catboost_retrain or $RETRAIN_MONITOR_COOLDOWN_HOURS"
        raise AirflowFailException(f"monitor_cooldown_hours must be a number of hours >= 0 ({where}), not {cfg['monitor_cooldown_hours']!r}")
    return hours


def last_retrain_start() -> dict | None:
    """The Variable catboost_retrain_last_start ({"at", "by", "reasons"}), or None before the first retrain."""
    state = Variable.get(LAST_START, default=None, deserialize_json=True)
    if state is None:
        return None
    try:
        datetime.fromisoformat(state["at"])
    except (TypeError, KeyError, ValueError) as exc:
        raise AirflowFailException(
            f'the Airflow Variable {LAST_START} must be {{"at": "ISO time", ...}}, it holds {state!r}; '
            f"delete it (airflow variables delete {LAST_START}) and the next recommendation retrains"
        ) from exc
    return state


def mark_retrain_start(by: str, reasons: list[str]) -> None:
    """Start the cooldown's clock: a retrain starts now (every DAG that retrains writes it)."""
    Variable.set(LAST_START, {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "by": by, "reasons": reasons}, serialize_json=True)


def retrain_verdict(answer: dict, last: dict | None, cooldown_hours: float, now: datetime) -> dict:
    """Whether the monitor's answer starts a retrain now: recommended, and no retrain started within the cooldown."""
    if not answer.get("retrain_recommended"):
        return {"retrain": False, "why": "the monitor does not recommend a retrain"}
    reasons = "; ".join(answer.get("reasons") or ["recommended by the monitor"])
    if last is not None:
        at = datetime.fromisoformat(last["at"])
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
        if now - at < timedelta(hours=cooldown_hours):
            why = f"recommended ({reasons}), but a retrain started at {last['at']} by {last.get('by')}, within the cooldown of {cooldown_hours:g} h"
            return {"retrain": False, "why": why}
    return {"retrain": True, "why": f"recommended by the monitor: {reasons}"}


def notify_failure(context) -> None:
    """on_failure_callback: the `failed` message of retrain_model.py, sent by the project's notify code; never raises."""
    exc = context.get("exception")
    ti = context.get("task_instance") or context.get("ti")
    task = getattr(ti, "task_id", "?")
    line = getattr(exc, "error_line", None) or (f"{type(exc).__name__}: {exc}" if exc else "the task failed")
    code = getattr(exc, "exit_code", 124 if "Timeout" in type(exc).__name__ else 1)
    script, dag_id = getattr(exc, "script", "retrain_model.py"), getattr(ti, "dag_id", None) or DAG_ID
    try:
        cfg = settings()
        cmd = [cfg["python"], "-m", "retraining.cli.notify", "--failed", line, "--exit-code", str(code)]
        cmd += ["--script", f"{script} (Airflow {dag_id}.{task})", "--attempts", str(getattr(ti, "try_number", 1) or 1)]
        cmd += getattr(exc, "notify_args", None) or cfg["args"]
        env = {**os.environ, "PYTHONPATH": cfg["project_dir"]}
        proc = subprocess.run(cmd, cwd=cfg["work_dir"], env=env, capture_output=True, text=True, timeout=30, check=False)
        for out in (proc.stdout + proc.stderr).strip().splitlines()[-3:]:
            print(out)
    except (OSError, subprocess.SubprocessError) as err:  # a notification never fails the task's own outcome
        print(f"warning: could not send the failure notification: {err}")


# Every DAG: retries with backoff (a busy lock, a crash, a database down), 2 h per task, the failed message.
DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": notify_failure,
}


@dag(
    dag_id=DAG_ID,
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["catboost", "retraining"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
)
def catboost_retrain():
    @task
    def validate_data() -> dict:
        """Fail fast (and clearly) on bad data, before any training; starts the monitor's cooldown."""
        mark_retrain_start(DAG_ID, ["the nightly schedule"])
        return run_retrain(["--validate"])

    @task
    def retrain(validated: dict) -> dict:
        print(f"data OK: {validated['rows']} rows, {validated['positives']} positive")
        return run_retrain([])

    @task.branch
    def decide(result: dict) -> str:
        return {"deployed": "deployed", "kept for review": "kept_for_review"}.get(result["status"], "unchanged")

    @task
    def deployed(result: dict) -> None:
        print(f"{result['version']} is now in production: {result['reason']}")

    @task
    def kept_for_review(result: dict) -> None:
        print(f"{result['version']} was kept for manual review, production stays {result['production']}: {result['reason']}")

    @task
    def unchanged(result: dict) -> None:
        print(f"nothing to do: {result['reason']}")

    @task(trigger_rule="none_failed_min_one_success")
    def report(result: dict) -> dict:
        """The outcome in one place (also the XCom other DAGs can read)."""
        outcome = {
            "version": result["version"],
            "status": result["status"],
            "deployed": result["status"] == "deployed",
            "candidate_auc": result.get("candidate_auc"),
            "champion_auc": result.get("champion_auc"),
            "p_value": (result.get("delong") or {}).get("p_value"),
            "production": result["production"],
            "report": result.get("report_path"),
        }
        print(json.dumps(outcome, ensure_ascii=False))
        return outcome

    result = retrain(validate_data())
    branch = decide(result)
    ends = [deployed(result), kept_for_review(result), unchanged(result)]
    branch >> ends
    ends >> report(result)


catboost_retrain()


def fleet_parallel() -> int:
    """How many models may retrain at once (read when the DAG is parsed): the Variable's max_parallel, else the environment, else 2."""
    return max(1, int(parse_time_setting("max_parallel", "RETRAIN_MAX_PARALLEL", 2)))


def parse_time_setting(key: str, env: str, default):
    """A setting read when the DAG file is parsed: the Variable's ``key``, else $``env``, else ``default``."""
    try:
        conf = Variable.get("catboost_retrain", default=None, deserialize_json=True) or {}
    except Exception:  # no metadata database while parsing (a DagBag check): the environment decides
        conf = {}
    return (conf.get(key) if isinstance(conf, dict) else None) or os.environ.get(env) or default


@dag(
    dag_id=FLEET_DAG_ID,
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["catboost", "retraining", "fleet"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
)
def catboost_retrain_fleet():
    parallel = fleet_parallel()

    @task
    def list_models() -> list[str]:
        """The models of the fleet.toml that "args" names with --config (one line if it names none)."""
        if "--config" not in settings()["args"]:
            raise AirflowFailException('catboost_retrain_fleet needs "args" with --config fleet.toml (docs/fleet.md); one model: use catboost_retrain')
        return list(run_retrain(["--list"])["models"])

    @task_group(group_id="model")
    def one_model(name: str):
        @task(max_active_tis_per_dagrun=parallel)
        def validate(name: str) -> dict:
            return run_retrain(["--model", name, "--validate"])

        @task(max_active_tis_per_dagrun=parallel)
        def retrain(name: str, validated: dict) -> dict:
            print(f"{name}: data OK, {validated['rows']} rows, {validated['positives']} positive")
            return {"model": name, **run_retrain(["--model", name])}

        @task
        def decide(result: dict) -> dict:
            print(f"{result['model']}: {result['version']} {result['status']}; production {result['production']}: {result['reason']}")
            return {k: result.get(k) for k in ("model", "version", "status", "production", "candidate_auc", "champion_auc")}

        return decide(retrain(name, validate(name)))

    @task(trigger_rule="all_done")
    def summary(names: list[str], outcomes) -> dict:
        """Every model's outcome; FAILS the run when a model failed (an all_done summary must not turn a failed run green)."""
        done = {o["model"]: o for o in (outcomes or []) if o}
        failed = [n for n in names if n not in done]
        print(json.dumps({"models": done, "failed": failed}))
        if failed:
            raise AirflowFailException(f"{len(failed)} of {len(names)} models failed: {', '.join(failed)} (see their model.* tasks)")
        return {"models": done}

    names = list_models()
    summary(names, one_model.expand(name=names))


catboost_retrain_fleet()


@dag(
    dag_id=MONITOR_DAG_ID,
    schedule=parse_time_setting("monitor_schedule", "RETRAIN_MONITOR_SCHEDULE", "@hourly"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["catboost", "retraining", "monitoring"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
)
def catboost_monitor():
    @task
    def monitor() -> dict:
        """monitor.py --json: what it found, what it did by itself (a rollback), whether it recommends a retrain."""
        report = run_monitor()
        answer = {k: report.get(k) for k in ("production", "retrain_recommended", "reasons")}
        answer["findings"] = [{k: f.get(k) for k in ("name", "severity", "message")} for f in report.get("findings") or []]
        answer["actions"] = [{k: a.get(k) for k in ("action", "from", "to", "at", "reason")} for a in report.get("actions") or []]
        for f in answer["findings"]:
            print(f"{str(f['severity']).upper()} {f['name']}: {f['message']}")
        for a in answer["actions"]:
            print(f"monitor.py {a['action']}: {a['from']} -> {a['to']}: {a['reason']}")
        return answer

    @task.branch
    def decide(answer: dict) -> str:
        """Retrain when recommended and outside the cooldown (then the cooldown starts now)."""
        cfg = settings()
        verdict = retrain_verdict(answer, last_retrain_start(), cooldown_hours(cfg), datetime.now(timezone.utc))
        print(("retrain: " if verdict["retrain"] else "no retrain: ") + verdict["why"])
        get_current_context()["ti"].xcom_push(key="verdict", value=verdict)
        if verdict["retrain"]:
            mark_retrain_start(MONITOR_DAG_ID, list(answer.get("reasons") or []))
            return "validate_data"
        return "no_retrain"

    @task
    def validate_data() -> dict:
        return run_retrain(["--validate"])

    @task
    def retrain(validated: dict) -> dict:
        print(f"data OK: {validated['rows']} rows, {validated['positives']} positive")
        result = run_retrain([])
        print(f"{result['version']} {result['status']}; production {result['production']}: {result['reason']}")
        return result

    @task
    def no_retrain() -> None:
        pass

    @task(trigger_rule="none_failed_min_one_success")
    def report(answer: dict) -> dict:
        """The monitor's answer, its actions, the decision and the retrain's outcome in one place (also an XCom)."""
        ti = get_current_context()["ti"]
        result = ti.xcom_pull(task_ids="retrain") or {}
        verdict = ti.xcom_pull(task_ids="decide", key="verdict") or {}
        outcome = {**answer, "retrain": verdict.get("retrain"), "why": verdict.get("why")}
        outcome["retrained"] = {k: result.get(k) for k in ("version", "status", "production")} if result else None
        print(json.dumps(outcome, ensure_ascii=False))
        return outcome

    answer = monitor()
    validated = validate_data()
    skipped = no_retrain()
    decide(answer) >> [validated, skipped]
    [retrain(validated), skipped] >> report(answer)


catboost_monitor()
