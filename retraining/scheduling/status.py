"""What ``scheduler.py`` knows about runs: the status file (``--status``) and the version a run produced."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from retraining.errors import ExitCode, StateError, UsageError
from retraining.scheduling.jobrunner import pid_alive
from retraining.scheduling.timeplan import fmt

STATUS_NAME = "scheduler_status.json"


def version_produced(models_dir: Path, since: dt.datetime) -> dict:
    """The version a run added to the log, archived parts included (empty if none, e.g. unchanged data)."""
    from retraining.registry import Registry

    registry = Registry(models_dir, models_dir / "catboost_model.cbm")  # only the log is read
    try:
        data = registry.whole_log(registry.read_log())
    except (OSError, StateError):
        return {}
    floor = fmt(since.replace(microsecond=0)).replace("+00:00", "Z")
    new = [e for e in data.get("versions", []) if isinstance(e, dict) and str(e.get("created_at", "")) >= floor]
    return max(new, key=lambda e: str(e["created_at"])) if new else {}


def read_status(models_dir: Path) -> dict:
    """The status file with ``alive`` and ``heartbeat_age_seconds`` added; UsageError if there is none."""
    path = models_dir / STATUS_NAME
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no scheduler status at {path}; has `python scheduler.py` been started here?") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}); the scheduler rewrites it on its next heartbeat.") from exc
    age = (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(status["heartbeat"])).total_seconds()
    fresh = age <= 3 * status.get("heartbeat_seconds", 30) + 5
    status["alive"] = status.get("state") in ("running", "starting") and pid_alive(int(status["pid"])) and fresh
    status["heartbeat_age_seconds"] = round(age, 1)
    return status


def format_status(status: dict) -> str:
    alive, age = status["alive"], status["heartbeat_age_seconds"]
    state = "running" if alive else ("stopped" if status.get("state") == "stopped" else "NOT RUNNING (stale heartbeat or dead process)")
    last = status.get("last_run") or {}
    cur = status.get("current_run")
    lines = [
        f"scheduler: {state} (pid {status['pid']}, heartbeat {age:.0f} s ago)",
        f"schedule:  {status['schedule']}",
        f"next run:  {status.get('next_run') or '-'}" + (f" (retry at {status['retry_at']})" if status.get("retry_at") else ""),
        f"current:   pid {cur['pid']} since {cur['started_at']} (attempt {cur['attempt']})" if cur else "current:   none",
    ]
    if last:
        made = f", {last['version']} {last['decision']}" if last.get("version") else ""
        lines.append(f"last run:  {last['started_at']} -> {last['ended_at']}: {last['outcome']} (exit {last['exit_code']}){made}")
    else:
        lines.append("last run:  none yet")
    c = status.get("counts", {})
    lines.append(
        "totals:    "
        + ", ".join(f"{c.get(k, 0)} {word}" for k, word in (("runs", "runs"), ("failures", "failed"), ("skipped", "skipped"), ("retries", "retries")))
    )
    return "\n".join(lines)


def print_status(models_dir: Path, as_json: bool) -> int:
    """``--status``: 0 alive, 3 not running (stopped, dead or stale), 2 no status file."""
    status = read_status(models_dir)
    print(json.dumps(status, indent=2, ensure_ascii=False) if as_json else format_status(status))
    return ExitCode.OK if status["alive"] else ExitCode.DAMAGED_STATE
