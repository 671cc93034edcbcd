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
and daylight-saving days run exactly once (see retraining/timeplan.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import schedule

from retraining.cliutil import guarded_main, setup_logging
from retraining.errors import BusyError, ExitCode, UsageError
from retraining.fsutil import atomic_write_json
from retraining.jobrunner import ChildRun, python_argv
from retraining.scheduler_cli import parse_args
from retraining.scheduler_status import STATUS_NAME, models_dir_of, print_status, version_produced
from retraining.timeplan import Plan, fmt, get_zone, to_schedule_naive

HERE = Path(__file__).resolve().parent
LOCK_NAME = ".scheduler.lock"
log = logging.getLogger("scheduler")


def loggable(argv: list[str]) -> list[str]:
    """The child's command line as it may be logged: database passwords and notification tokens masked."""
    from retraining.notify import mask
    from retraining.sources import mask_argv

    out = mask_argv(argv)
    for i, arg in enumerate(out):
        if arg == "--notify" and i + 1 < len(out):
            out[i + 1] = mask(out[i + 1])
        elif arg.startswith("--notify="):
            out[i] = "--notify=" + mask(arg.split("=", 1)[1])
    return out


def schedule_job(args: argparse.Namespace, retrain_job) -> schedule.Job:
    """The schedule, in the user's words. Prefer the flags; editing these lines works too."""
    if args.every is None:
        return schedule.every().day.at(args.at).do(retrain_job)  # every day at 03:00 (--at HH:MM)
    # schedule.every(7).days.do(retrain_job)                  # or every 7 days  (--every 7 --unit days)
    # schedule.every().week.do(retrain_job)                   # or every week    (--every 1 --unit weeks)
    job = getattr(schedule.every(args.every), args.unit)
    if args.at_given and args.unit in ("days", "weeks"):
        job = job.at(args.at)
    return job.do(retrain_job)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RetrainScheduler:
    """The loop: trigger on time, watch the child, retry, write status, stop on signals."""

    def __init__(self, args: argparse.Namespace, passthrough: list[str]) -> None:
        self.args = args
        self.passthrough = passthrough
        self.cwd = Path.cwd()
        self.models_dir = models_dir_of(passthrough)
        self.status_path = self.models_dir / STATUS_NAME
        self.log_dir = Path(args.log_dir)
        self.tz = get_zone(args.timezone)
        self.job = schedule_job(args, self.retrain_job)
        self.plan = Plan.from_job(self.job, self.tz)
        self.due: dt.datetime | None = None
        self.current: ChildRun | None = None
        self.retry_at: dt.datetime | None = None
        self.last_run: dict | None = None
        self.counts = {"runs": 0, "failures": 0, "skipped": 0, "retries": 0}
        self.wake = threading.Event()
        self.stop_signal: str | None = None
        self.started_at = now_utc()
        self.state = "starting"
        self.last_exit_code: int | None = None
        self.retry_attempt = 2
        self.fired = False
        self.job_interrupted = False

    # -- triggering -------------------------------------------------------------------
    def retrain_job(self) -> None:
        """What ``schedule`` calls when a run is due: start it unless one is running."""
        self.fired = True
        if self.current is not None:
            self.counts["skipped"] += 1
            log.warning(
                "Skipped the run due at %s: the previous run (pid %s, started %s) is still running.",
                fmt(self.due, self.tz),
                self.current.pid,
                fmt(self.current.started_at, self.tz),
            )
        else:
            self.retry_at = None  # a fresh scheduled run replaces a pending retry
            self.start(attempt=1)
        self.write_status()

    def anchor(self, after: dt.datetime) -> None:
        """Set the next due time from the clock, not from when the last run ended."""
        self.due = self.plan.next_run(self.due, after) if self.due else self.plan.first_run(after)
        self.job.next_run = to_schedule_naive(self.due)

    def start(self, attempt: int) -> None:
        argv = python_argv(Path(self.args.script), self.passthrough)
        out = self.log_dir / "retrain-job.out"
        self.current = ChildRun(argv, self.cwd, out, float(self.args.job_timeout), attempt=attempt).start()
        self.counts["runs"] += 1
        shown = " ".join(loggable(argv[1:]))
        log.info("Run started (attempt %d of %d, pid %s): %s", attempt, self.args.retries + 1, self.current.pid, shown)

    def finish(self, code: int) -> None:
        run, self.current = self.current, None
        assert run is not None
        ended = now_utc()
        outcome = "success" if code == 0 else ("timed out" if run.timed_out else "failed")
        produced = version_produced(self.models_dir, run.started_at)
        self.last_exit_code = ExitCode.TIMED_OUT if run.timed_out else code
        self.last_run = {
            "started_at": fmt(run.started_at),
            "ended_at": fmt(ended),
            "seconds": round((ended - run.started_at).total_seconds(), 1),
            "outcome": outcome,
            "exit_code": self.last_exit_code,
            "attempt": run.attempt,
            "version": produced.get("version"),
            "decision": produced.get("decision"),
        }
        if outcome == "success":
            what = f"{produced['version']} {produced['decision']}" if produced else "no new version (data unchanged)"
            log.info("Run finished in %.0f s: %s.", self.last_run["seconds"], what)
            return
        self.counts["failures"] += 1
        why = f"timed out after {self.args.job_timeout:g} s and was killed" if run.timed_out else f"failed with exit code {code}"
        log.error("Run %s (attempt %d). Last output:\n%s", why, run.attempt, indent(run.tail()))
        if run.timed_out or code not in CHILD_REPORTS_ITSELF:  # a kill or a crash: the child could not say so
            what = f"{why if run.timed_out else crash_words(code)} (attempt {run.attempt} of {self.args.retries + 1})"
            notify_failure(self.passthrough, f"{Path(self.args.script).name} {what}", last_output(run.tail()))
        if run.attempt <= self.args.retries and not self.stop_signal:
            delay = self.args.retry_delay * 2 ** (run.attempt - 1)
            self.retry_at = ended + dt.timedelta(seconds=delay)
            self.retry_attempt = run.attempt + 1
            log.warning("Retrying in %g s (attempt %d of %d).", delay, run.attempt + 1, self.args.retries + 1)
        elif self.args.retries:
            log.error("Giving up after %d attempts; the next scheduled run is %s.", run.attempt, fmt(self.due, self.tz))
            head = f"{Path(self.args.script).name} failed {run.attempt} times in a row; retries used up, next scheduled run {fmt(self.due, self.tz) or 'none'}"
            notify_failure(self.passthrough, head, [f"last attempt: {why}", *last_output(run.tail())])

    # -- the loop ---------------------------------------------------------------------
    def run_forever(self) -> int:
        self.install_signal_handlers()
        self.notify_unclean_stop()
        now = now_utc()
        self.anchor(now)
        log.info(
            "Scheduler started (pid %s): %s; first run %s (in %s)%s.",
            _pid(),
            self.plan.describe(),
            fmt(self.due, self.tz),
            human(self.due - now),
            "; running once now as well (--run-now)" if self.args.run_now else "",
        )
        self.state = "running"
        if self.args.run_now:
            self.start(attempt=1)
        self.write_status()
        last_beat = now_utc()
        while not self.stop_signal:
            now = now_utc()
            if self.due is not None and now >= self.due:
                self.fired = False
                schedule.run_pending()  # calls retrain_job through the user's schedule line
                if not self.fired:  # schedule's naive local clock disagrees (DST fold): run anyway
                    self.job.run()
                self.anchor(now)
                self.write_status()
            if self.current is not None:
                code = self.current.poll()
                if code is not None:
                    self.finish(code)
                    self.write_status()
            elif self.retry_at is not None and now >= self.retry_at:
                self.retry_at = None
                self.counts["retries"] += 1
                self.start(attempt=self.retry_attempt)
                self.write_status()
            if (now - last_beat).total_seconds() >= self.args.heartbeat:
                self.write_status()
                last_beat = now
            self.wake.wait(self.sleep_seconds(now))
        return self.shutdown()

    def sleep_seconds(self, now: dt.datetime) -> float:
        limit = 0.5 if self.current is not None else min(5.0, self.args.heartbeat)
        targets = [t for t in (self.due, self.retry_at) if t is not None]
        until = min((t - now).total_seconds() for t in targets) if targets else limit
        return max(0.05, min(limit, until))

    def shutdown(self) -> int:
        self.state = "stopping"
        self.write_status()
        if self.current is not None:
            log.info(
                "%s received: stopping; giving the running job (pid %s) up to %g s to finish.",
                self.stop_signal,
                self.current.pid,
                self.args.grace,
            )
            code = self.wait_current(self.args.grace)
            if code is None:
                code = self.current.terminate(grace=5.0)
                log.warning("The running job did not finish in time and was terminated (exit code %s).", code)
                self.last_exit_code = code
                self.job_interrupted = True
                self.current = None
            else:
                self.finish(code)
        self.state = "stopped"
        self.write_status()
        log.info("Scheduler stopped (%s); exiting.", self.stop_signal)
        return 0

    def wait_current(self, seconds: float) -> int | None:
        deadline = now_utc() + dt.timedelta(seconds=seconds)
        while now_utc() < deadline:
            code = self.current.poll()
            if code is not None:
                return code
            threading.Event().wait(0.2)
        return None

    def run_once(self) -> int:
        """``--once``: one run (with retries), then exit with its exit code."""
        self.install_signal_handlers()
        self.notify_unclean_stop()
        self.state = "running"
        attempt = 1
        while True:
            self.start(attempt)
            self.write_status()
            while (code := self.current.poll()) is None:
                if self.stop_signal:
                    self.shutdown()
                    return ExitCode.INTERRUPTED if self.job_interrupted else (self.last_exit_code or ExitCode.OK)
                self.wake.wait(0.2)
            self.finish(code)
            self.write_status()
            if self.retry_at is None:
                break
            self.wake.wait(max(0.0, (self.retry_at - now_utc()).total_seconds()))
            if self.stop_signal:
                break
            self.retry_at = None
            self.counts["retries"] += 1
            attempt = self.retry_attempt
        self.state = "stopped"
        self.write_status()
        return self.last_exit_code or 0

    def notify_unclean_stop(self) -> None:
        """Before the first status write: a status file that does not say "stopped" means the last scheduler died."""
        try:
            old = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(old, dict) or old.get("state") in (None, "stopped"):
            return
        cur = old.get("current_run")
        lines = [f"its last status: {old.get('state')}, heartbeat {old.get('heartbeat')}"]
        if isinstance(cur, dict):
            lines.append(f"a run (pid {cur.get('pid')}, started {cur.get('started_at')}, attempt {cur.get('attempt')}) was in progress and did not finish")
        head = f"scheduler.py started after an unclean stop: the previous scheduler (pid {old.get('pid')}) ended without shutting down"
        log.warning("%s (%s).", head, "; ".join(lines))
        notify_failure(self.passthrough, head, lines)

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self.stop_signal = signal.Signals(signum).name
            self.wake.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        if hasattr(signal, "SIGBREAK"):  # Ctrl+Break on Windows
            signal.signal(signal.SIGBREAK, handler)

    def write_status(self) -> None:
        status = {
            "format": 1,
            "pid": _pid(),
            "state": self.state,
            "started_at": fmt(self.started_at),
            "heartbeat": fmt(now_utc()),
            "heartbeat_seconds": self.args.heartbeat,
            "schedule": self.plan.describe(),
            "next_run": fmt(self.due, self.tz),
            "retry_at": fmt(self.retry_at, self.tz),
            "current_run": {"pid": self.current.pid, "started_at": fmt(self.current.started_at), "attempt": self.current.attempt} if self.current else None,
            "last_run": self.last_run,
            "counts": self.counts,
            "retrain_args": loggable(self.passthrough),  # the status file is world-readable: no passwords or tokens
        }
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.status_path, status)
        except OSError as exc:  # monitoring must not take the scheduler down
            log.warning("Could not write %s: %s", self.status_path, exc)


def _pid() -> int:
    import os

    return os.getpid()


CHILD_REPORTS_ITSELF = frozenset(ExitCode)  # retrain_model.py's own exit codes (124 included): it sent its `failed` message itself


def crash_words(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"crashed (killed by {signal.Signals(-code).name})"
    return f"crashed (exit code {code})"


def notify_failure(passthrough: list[str], head: str, lines: list[str]) -> None:
    """A `failed` message for what the child run cannot report itself; never raises, at most 10 s.

    The targets are the run's own: --notify/--notify-config/--notify-on after --, else $RETRAIN_NOTIFY.
    """
    from retraining.errors import UsageError as _UsageError
    from retraining.notify import notifier_from_argv

    try:
        notifier = notifier_from_argv(passthrough, logger=log)
    except _UsageError as exc:
        log.warning("Notification not sent: %s", exc)
        return
    notifier.notify_text("failed", head, lines)


def last_output(output: str | None) -> list[str]:
    tail = [line for line in (output or "").splitlines() if line.strip()][-5:]
    return ["last output:", *("  " + line for line in tail)] if tail else []


def human(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def indent(text: str) -> str:
    return "\n".join("    " + line for line in (text or "(no output)").splitlines())


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (:class:`retraining.errors.ExitCode`, or the job's with --once)."""
    args, passthrough = parse_args(list(sys.argv[1:] if argv is None else argv), default_script=HERE / "retrain_model.py", description=__doc__)
    setup_logging(("scheduler",), args.verbose, log_file=None if args.status else Path(args.log_dir) / "scheduler.log")

    def failed(code: ExitCode, line: str) -> None:  # the scheduler itself could not start or stopped on an error
        if not args.status and code not in (ExitCode.INTERRUPTED, ExitCode.BUSY):  # Ctrl+C; a second scheduler refused
            notify_failure(passthrough, f"scheduler.py stopped: {line} (exit code {int(code)}); no nightly runs until it is restarted", [])

    return guarded_main(lambda: _program(args, passthrough), log=log, verbose=args.verbose, on_failure=failed)


def _program(args: argparse.Namespace, passthrough: list[str]) -> int:
    if args.status:
        return print_status(models_dir_of(passthrough), args.json)
    if not Path(args.script).is_file():
        raise UsageError(f"the job script {args.script} does not exist; pass --script PATH")
    from filelock import FileLock, Timeout

    sched = RetrainScheduler(args, passthrough)
    sched.models_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(sched.models_dir / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        other = ""
        with contextlib.suppress(OSError, ValueError, KeyError):
            other = f" (pid {json.loads(sched.status_path.read_text())['pid']})"
        raise BusyError(
            f"another scheduler{other} is already running for {sched.models_dir}; stop it first, or give this one its own -- --models-dir."
        ) from None
    try:
        return sched.run_once() if args.once else sched.run_forever()
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
