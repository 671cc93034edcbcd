"""scheduler.py with real child processes, the real `schedule` library, second-level intervals."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import ROOT, run_script

from retraining.scheduling.jobrunner import pid_alive
from retraining.scheduling.timeplan import Plan

JOBS = ROOT / "tests" / "jobs"
UTC = dt.timezone.utc
pytestmark = pytest.mark.skipif(os.name == "nt", reason="signals are sent POSIX-style in these tests")


def start(cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scheduler.py"), "--heartbeat", "1", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15) -> tuple[int, str]:
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def records(cwd: Path) -> list[dict]:
    path = cwd / "job_record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_runs_on_time_passes_arguments_and_stops_cleanly(tmp_path):
    proc = start(tmp_path, "--every", "1", "--unit", "seconds", "--script", str(JOBS / "ok.py"), "--", "--data", "new.csv")
    wait_for(lambda: len(records(tmp_path)) >= 4)
    status = run_script("scheduler.py", "--status", cwd=tmp_path)
    code, err = stop(proc)
    assert code == 0 and "Scheduler stopped (SIGTERM)" in err
    assert "every second; first run" in err  # the start-up line says the schedule in words
    recs = records(tmp_path)
    assert all(r["argv"] == ["--data", "new.csv"] and r["cwd"] == str(tmp_path) for r in recs)
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(recs)]
    # one second apart, anchored to the clock: no gap near 0 or 2 s (a run skipped or doubled),
    # and no drift on average (a loop that slept 1 s after each run would add the run's time);
    # a single start delayed by a loaded machine moves one gap up and the next one down
    assert all(0.5 < g < 1.5 for g in gaps), gaps
    assert 0.9 < (recs[-1]["t"] - recs[0]["t"]) / len(gaps) < 1.1, gaps
    assert status.returncode == 0 and status.stdout.startswith("scheduler: running")
    data = json.loads((tmp_path / "models" / "scheduler_status.json").read_text())
    assert data["state"] == "stopped" and data["last_run"]["outcome"] == "success" and data["counts"]["runs"] >= 4
    assert (tmp_path / "logs" / "scheduler.log").read_text().count("Run started") >= 4


def test_failed_run_is_retried_with_backoff_and_the_loop_goes_on(tmp_path):
    proc = start(tmp_path, "--every", "2", "--unit", "seconds", "--retries", "1", "--retry-delay", "0.3", "--script", str(JOBS / "fail.py"))
    wait_for(lambda: (tmp_path / "attempts.txt").exists() and len((tmp_path / "attempts.txt").read_text().splitlines()) >= 4, 20)
    code, err = stop(proc)
    assert code == 0
    assert "failed with exit code 3" in err and "boom: something broke in training" in err
    assert "Retrying in 0.3 s (attempt 2 of 2)" in err and "Giving up after 2 attempts" in err
    status = json.loads((tmp_path / "models" / "scheduler_status.json").read_text())
    assert status["counts"]["failures"] >= 4 and status["counts"]["retries"] >= 2


def test_hanging_job_is_killed_with_its_children(tmp_path):
    proc = run_script("scheduler.py", "--once", "--job-timeout", "1.5", "--retries", "0", "--script", str(JOBS / "hang.py"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 124
    assert "timed out after 1.5 s and was killed" in proc.stderr
    grandchild = int((tmp_path / "pids.txt").read_text())
    wait_for(lambda: not pid_alive(grandchild), 5)


def test_run_due_while_one_is_running_is_skipped(tmp_path):
    proc = start(tmp_path, "--every", "1", "--unit", "seconds", "--script", str(JOBS / "ok.py"), env={"JOB_SLEEP": "2.5"})
    wait_for(lambda: len(records(tmp_path)) >= 2, 20)
    _code, err = stop(proc)
    assert "Skipped the run due at" in err and "is still running" in err
    recs = records(tmp_path)
    assert all(b["t"] - a["t"] >= 2.5 for a, b in itertools.pairwise(recs))  # never two at once


def test_sigterm_during_a_job_gives_grace_then_terminates_it(tmp_path):
    proc = start(tmp_path, "--run-now", "--grace", "1", "--script", str(JOBS / "ok.py"), env={"JOB_SLEEP": "60"})
    wait_for(lambda: len(records(tmp_path)) == 1)
    child = records(tmp_path)[0]["pid"]
    started = time.time()
    code, err = stop(proc)
    assert code == 0 and time.time() - started < 10
    assert "giving the running job" in err and "was terminated" in err and "Scheduler stopped (SIGTERM)" in err
    wait_for(lambda: not pid_alive(child), 5)


def test_sigint_lets_a_short_job_finish(tmp_path):
    proc = start(tmp_path, "--run-now", "--grace", "10", "--script", str(JOBS / "ok.py"), env={"JOB_SLEEP": "2"})
    wait_for(lambda: len(records(tmp_path)) == 1)
    child = records(tmp_path)[0]["pid"]
    assert pid_alive(child)  # the job is running (it sleeps 2 s after writing its record) when the signal is sent
    code, err = stop(proc, signal.SIGINT)
    assert code == 0 and "SIGINT received" in err and "Run finished" in err and "terminated" not in err
    assert err.index("SIGINT received") < err.index("Run finished")  # the scheduler saw the signal before the job ended


def test_second_scheduler_for_the_same_models_folder_is_refused(tmp_path):
    first = start(tmp_path, "--script", str(JOBS / "ok.py"))
    wait_for(lambda: (tmp_path / "models" / "scheduler_status.json").exists())
    second = run_script("scheduler.py", "--script", str(JOBS / "ok.py"), cwd=tmp_path, timeout=30)
    stop(first)
    assert second.returncode == 4
    assert f"another scheduler (pid {first.pid}) is already running" in second.stderr


def test_once_exit_codes(tmp_path):
    ok = run_script("scheduler.py", "--once", "--script", str(JOBS / "ok.py"), cwd=tmp_path)
    assert ok.returncode == 0
    bad = run_script("scheduler.py", "--once", "--retries", "0", "--script", str(JOBS / "ok.py"), cwd=tmp_path, env={"JOB_EXIT": "5"})
    assert bad.returncode == 5 and "failed with exit code 5" in bad.stderr


def test_status_exit_codes(tmp_path):
    none = run_script("scheduler.py", "--status", cwd=tmp_path)
    assert none.returncode == 2 and "no scheduler status" in none.stderr
    run_script("scheduler.py", "--once", "--script", str(JOBS / "ok.py"), cwd=tmp_path)
    done = run_script("scheduler.py", "--status", "--json", cwd=tmp_path)
    data = json.loads(done.stdout)
    assert done.returncode == 3 and data["alive"] is False and data["last_run"]["exit_code"] == 0


def test_once_runs_the_real_retrain_and_reports_the_version(project):
    proc = run_script("scheduler.py", "--once", "--", "--data", "data.csv", "--iterations", "10", cwd=project, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "v1.0.0 deployed" in proc.stderr
    status = json.loads((project / "models" / "scheduler_status.json").read_text())
    assert status["last_run"]["version"] == "v1.0.0" and status["last_run"]["decision"] == "deployed"
    assert (project / "catboost_model.cbm").is_file()


def test_default_schedule_and_bad_flags(tmp_path):
    proc = start(tmp_path, "--timezone", "Europe/Helsinki", "--script", str(JOBS / "ok.py"))
    wait_for(lambda: (tmp_path / "models" / "scheduler_status.json").exists())
    _, err = stop(proc)
    assert "every day at 03:00 (Europe/Helsinki); first run" in err
    nxt = dt.datetime.fromisoformat(json.loads((tmp_path / "models" / "scheduler_status.json").read_text())["next_run"])
    assert nxt.astimezone(ZoneInfo("Europe/Helsinki")).strftime("%H:%M") == "03:00"
    for args, msg in (
        (["--at", "25:00"], "use HH:MM"),
        (["--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--every", "0"], "at least 1"),
        (["--every", "2", "--unit", "hours", "--at", "03:00"], "--at goes with a daily or weekly"),
    ):
        bad = run_script("scheduler.py", *args, cwd=tmp_path)
        assert bad.returncode == 2 and msg in bad.stderr, (args, bad.stderr)


# -- daylight saving: the plan, with the zone's real rules -----------------------------
HEL = ZoneInfo("Europe/Helsinki")


class _Job:
    def __init__(self, interval=1, unit="days", at=dt.time(3, 0)):
        self.interval, self.unit, self.at_time, self.start_day = interval, unit, at, None


def simulate(plan: Plan, start: dt.datetime, end: dt.datetime, step=dt.timedelta(minutes=1)) -> list[dt.datetime]:
    """Drive the plan with a clock that ticks every minute; return the instants it ran."""
    runs, now = [], start
    due = plan.first_run(now)
    while now < end:
        if now >= due:
            runs.append(now)
            due = plan.next_run(due, now)
        now += step
    return runs


@pytest.mark.parametrize(
    ("start", "end", "expected_local"),
    [
        # spring forward: 03:00-03:59 does not exist on 2026-03-29; the run moves to 04:00
        ("2026-03-27T12:00:00+00:00", "2026-03-31T12:00:00+00:00", ["03-28 03:00", "03-29 04:00", "03-30 03:00", "03-31 03:00"]),
        # fall back: 03:00-03:59 happens twice on 2026-10-25; it runs at the first one only
        ("2026-10-23T12:00:00+00:00", "2026-10-27T12:00:00+00:00", ["10-24 03:00", "10-25 03:00", "10-26 03:00", "10-27 03:00"]),
    ],
)
def test_daylight_saving_days_run_once_never_twice_never_skipped(start, end, expected_local):
    plan = Plan.from_job(_Job(), HEL)
    runs = simulate(plan, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
    assert [r.astimezone(HEL).strftime("%m-%d %H:%M") for r in runs] == expected_local
    if "10-25 03:00" in expected_local:
        fold_run = runs[1].astimezone(HEL)
        assert fold_run.utcoffset() == dt.timedelta(hours=3)  # the first 03:00 (EEST), not the second (EET)


def test_started_inside_the_repeated_hour_waits_for_tomorrow():
    plan = Plan.from_job(_Job(), HEL)
    second_three_thirty = dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 03:30 EET, the second pass
    assert plan.first_run(second_three_thirty).astimezone(HEL).strftime("%m-%d %H:%M") == "10-26 03:00"


def test_interval_plans_are_anchored_not_drifting():
    plan = Plan.from_job(_Job(6, "hours", None), HEL)
    due = dt.datetime(2026, 1, 1, tzinfo=UTC)
    late = due + dt.timedelta(minutes=40)  # the run ended 40 minutes later
    assert plan.next_run(due, late) == due + dt.timedelta(hours=6)
    way_late = due + dt.timedelta(hours=13)  # the machine slept: skip missed slots, keep the grid
    assert plan.next_run(due, way_late) == due + dt.timedelta(hours=18)


def test_once_stopped_during_a_run_exits_130(tmp_path):
    proc = start(tmp_path, "--once", "--grace", "1", "--retries", "0", "--script", str(JOBS / "ok.py"), env={"JOB_SLEEP": "60"})
    wait_for(lambda: len(records(tmp_path)) == 1)
    code, err = stop(proc, signal.SIGINT)
    assert code == 130 and "was terminated" in err


def test_missing_job_script_or_status_is_one_line_and_exit_2(tmp_path):
    proc = run_script("scheduler.py", "--once", "--script", str(tmp_path / "nope.py"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"error: the job script {tmp_path / 'nope.py'} does not exist; pass --script PATH"]
    status = run_script("scheduler.py", "--status", cwd=tmp_path)
    assert status.returncode == 2 and status.stderr.strip().splitlines() == [
        f"error: no scheduler status at {Path('models') / 'scheduler_status.json'}; has `python scheduler.py` been started here?"
    ]


def test_version_produced_finds_versions_moved_to_the_archive(tmp_path):
    """A run's version counts even when the log has already moved it to history/ (it goes through Registry)."""
    from retraining.registry import Registry, empty_log, utc_now
    from retraining.scheduling.status import version_produced

    since = dt.datetime.now(UTC) - dt.timedelta(seconds=2)
    reg = Registry(tmp_path / "models", tmp_path / "catboost_model.cbm")
    data = empty_log()
    data["versions"] = [
        {"version": "v1.0.0", "sha256": "0" * 64, "created_at": "2020-01-01T00:00:00Z", "decision": "deployed"},
        {"version": "v1.1.0", "sha256": "1" * 64, "created_at": utc_now(), "decision": "kept for review"},
    ]
    reg.write_log(data)
    assert version_produced(tmp_path / "models", since)["version"] == "v1.1.0"
    reg.archive_at, reg.archive_keep = 1, 0  # the next write moves every version to history/
    reg.write_log(reg.read_log())
    assert json.loads((tmp_path / "models" / "version_log.json").read_text())["versions"] == []
    produced = version_produced(tmp_path / "models", since)
    assert produced["version"] == "v1.1.0" and produced["decision"] == "kept for review"
    assert version_produced(tmp_path / "models", dt.datetime.now(UTC) + dt.timedelta(seconds=5)) == {}
    assert version_produced(tmp_path / "elsewhere", since) == {}


def test_the_childs_secrets_never_reach_the_schedulers_log(tmp_path):
    """A database password and a notification token passed through to the run are masked in every line the scheduler writes."""
    secret_args = ("--data", "postgresql://etl:DbSecret123@127.0.0.1:1/warehouse", "--notify", "json://127.0.0.1:9/TokenSecret456")
    proc = run_script("scheduler.py", "--once", "--retries", "0", "--script", str(JOBS / "ok.py"), "--", *secret_args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = tmp_path / "job_record.jsonl"  # the stand-in job's own record: it did get the real arguments
    assert "DbSecret123" in record.read_text()
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != record]
    written = "".join(p.read_text(errors="replace") for p in files) + proc.stdout + proc.stderr
    assert "Run started" in written and "postgresql://etl:***@127.0.0.1:1/warehouse" in written
    assert "DbSecret123" not in written and "TokenSecret456" not in written
