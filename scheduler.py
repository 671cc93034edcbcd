"""Run ``retrain_model.py`` on a schedule, unattended, and keep running.

    python scheduler.py                         # every day at 03:00 local time (Windows: py scheduler.py)
    python scheduler.py --at 02:30 --timezone Europe/Helsinki
    python scheduler.py --every 6 --unit hours --run-now
    python scheduler.py --once                  # one run, exit with its code (cron, systemd timers, Task Scheduler)
    python scheduler.py --status                # is it alive? when is the next run? how did the last one go?
    python scheduler.py -- --data new.csv       # everything after -- goes to retrain_model.py

Each run is a child process (a crash or hang in training cannot take the scheduler
down), killed with its whole process tree after --job-timeout, retried with backoff
up to --retries. Runs never overlap, run times are anchored to the clock (no drift)
and daylight-saving days run exactly once (see retraining/scheduling/timeplan.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import schedule

from retraining.scheduling.cli import main as scheduler_main

HERE = Path(__file__).resolve().parent


def schedule_job(args: argparse.Namespace, retrain_job) -> schedule.Job:
    """The schedule, in the user's words. Prefer the flags; editing these lines works too."""
    if args.every is None:
        return schedule.every().day.at(args.at).do(retrain_job)  # every day at 03:00 (--at HH:MM)
    # schedule.every(7).days.do(retrain_job)                  # or every 7 days  (--every 7 --unit days)
    # schedule.every().week.do(retrain_job)                   # or every week    (--every 1 --unit weeks)
    job = getattr(schedule.every(args.every), args.unit)
    if args.at_given and args.unit == "weeks":  # schedule's weeks take no .at(): the same days, counted as days
        job = schedule.every(7 * args.every).days
    if args.at_given and args.unit in ("days", "weeks"):
        job = job.at(args.at)
    return job.do(retrain_job)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (:class:`retraining.errors.ExitCode`, or the job's with --once)."""
    return scheduler_main(argv, schedule_job=schedule_job, default_script=HERE / "retrain_model.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
