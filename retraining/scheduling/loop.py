"""The scheduler: trigger on time, run each retrain as a child, retry, write status, stop on signals.

:class:`RetrainScheduler` takes the scheduler's parsed flags and a :class:`Child` (the
command to run and what the scheduler needs of its settings: the models folder and the
notification targets), resolved by :mod:`retraining.scheduling.cli` with the retrain
parser itself, never by scanning the argument list.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import schedule

from retraining.errors import ExitCode, UsageError
from retraining.fsutil import atomic_write_json
from retraining.notify import mask
from retraining.scheduling.jobrunner import ChildRun
from retraining.scheduling.status import STATUS_NAME, version_produced
from retraining.scheduling.timeplan import Plan, fmt, get_zone, to_schedule_naive
from retraining.sources import is_database_url, mask_url

log = logging.getLogger(__name__)
ScheduleJob = Callable[[argparse.Namespace, Callable[[], None]], schedule.Job]


@dataclass
class Child:
    """One scheduled run's command, and what the scheduler must know of the run's own settings."""

    command: list[str]  # the whole argv: interpreter, script (or -m module), the run's arguments
    args: list[str]  # the run's own arguments (after --), for the status file
    name: str  # how messages name it: "retrain_model.py"
    models_dir: Path = Path("models")
    notify: tuple[str, ...] = ()
    notify_config: str | None = None
    notify_on: tuple[str, ...] | None = field(default=None)
    output: str = "retrain-job.out"  # the child's stdout/stderr file in --log-dir (one per model in a fleet)
    label: str = ""  # put before its log lines: "" for one model, "[NAME] " in a fleet


def loggable(argv: list[str]) -> list[str]:
    """An argument list as it may be logged: a password in a database URL, a token in a notification URL masked."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if "://" in value:
            value = mask_url(value) if is_database_url(value) else mask(value)
        out.append(f"{name}{eq}{value}")
    return out


def default_schedule_job(args: argparse.Namespace, retrain_job, every=schedule.every) -> schedule.Job:
    """The schedule the flags ask for (scheduler.py keeps its own copy, in the user's words, to edit).

    ``every`` is ``schedule.every`` (its default scheduler) or a ``schedule.Scheduler``'s own.
    """
    if args.every is None:
        return every().day.at(args.at).do(retrain_job)  # every day at 03:00 (--at HH:MM)
    # schedule.every(7).days.do(retrain_job)                  # or every 7 days  (--every 7 --unit days)
    # schedule.every().week.do(retrain_job)                   # or every week    (--every 1 --unit weeks)
    job = getattr(every(args.every), args.unit)
    if args.at_given and args.unit == "weeks":  # schedule's weeks take no .at(): the same days, counted as days
        job = every(7 * args.every).days
    if args.at_given and args.unit in ("days", "weeks"):
        job = job.at(args.at)
    return job.do(retrain_job)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RetrainScheduler:
    """The loop: trigger on time, watch the child, retry, write status, stop on signals."""

    def __init__(
        self, args: argparse.Namespace, child: Child, schedule_job: ScheduleJob = default_schedule_job, may_start: Callable[[], bool] | None = None
    ) -> None:
        self.args = args
        self.may_start = may_start or (lambda: True)  # a fleet's cap on runs at once
        self.waiting = False  # due (or retrying) but held back by the cap
        self.child = child
        self.cwd = Path.cwd()
        self.models_dir = child.models_dir
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
        self.monitor = None  # a scheduling.monitorjob.MonitorTrigger in monitor mode
        self.last_start: dt.datetime | None = None

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
            self.start_or_wait(attempt=1)
        self.write_status()

    def start_or_wait(self, attempt: int) -> None:
        """Start now, or as soon as the fleet's cap allows (the run keeps its place)."""
        if self.may_start():
            self.waiting = False
            self.start(attempt)
        else:
            if not self.waiting:
                log.info("%s: due, waiting for a free slot (at most %s runs at once).", self.child.name, getattr(self.args, "max_parallel", "?"))
            self.waiting, self.retry_attempt = True, attempt

    def anchor(self, after: dt.datetime) -> None:
        """Set the next due time from the clock, not from when the last run ended."""
        self.due = self.plan.next_run(self.due, after) if self.due else self.plan.first_run(after)
        self.job.next_run = to_schedule_naive(self.due)

    def start(self, attempt: int) -> None:
        argv = list(self.child.command)
        out = self.log_dir / self.child.output
        self.current = ChildRun(argv, self.cwd, out, float(self.args.job_timeout), attempt=attempt).start()
        self.last_start = now_utc()
        self.counts["runs"] += 1
        shown = " ".join(loggable(argv[1:]))
        log.info("%sRun started (attempt %d of %d, pid %s): %s", self.child.label, attempt, self.args.retries + 1, self.current.pid, shown)

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
            log.info("%sRun finished in %.0f s: %s.", self.child.label, self.last_run["seconds"], what)
            return
        self.counts["failures"] += 1
        why = f"timed out after {self.args.job_timeout:g} s and was killed" if run.timed_out else f"failed with exit code {code}"
        log.error("%sRun %s (attempt %d). Last output:\n%s", self.child.label, why, run.attempt, indent(run.tail()))
        if run.timed_out or code not in CHILD_REPORTS_ITSELF:  # a kill or a crash: the child could not say so
            what = f"{why if run.timed_out else crash_words(code)} (attempt {run.attempt} of {self.args.retries + 1})"
            notify_failure(self.child, f"{self.child.name} {what}", last_output(run.tail()))
        if run.attempt <= self.args.retries and not self.stop_signal:
            delay = self.args.retry_delay * 2 ** (run.attempt - 1)
            self.retry_at = ended + dt.timedelta(seconds=delay)
            self.retry_attempt = run.attempt + 1
            log.warning("%sRetrying in %g s (attempt %d of %d).", self.child.label, delay, run.attempt + 1, self.args.retries + 1)
        elif self.args.retries:
            log.error("%sGiving up after %d attempts; the next scheduled run is %s.", self.child.label, run.attempt, fmt(self.due, self.tz))
            head = f"{self.child.name} failed {run.attempt} times in a row; retries used up, next scheduled run {fmt(self.due, self.tz) or 'none'}"
            notify_failure(self.child, head, [f"last attempt: {why}", *last_output(run.tail())])

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
            self.tick(now)
            if (now - last_beat).total_seconds() >= self.args.heartbeat:
                self.write_status()
                last_beat = now
            self.wake.wait(self.sleep_seconds(now))
        return self.shutdown()

    def begin(self, now: dt.datetime) -> None:
        """Before the first tick: the first due time, the status file (what run_forever does first)."""
        self.notify_unclean_stop()
        self.anchor(now)
        log.info("%s: %s; first run %s (in %s).", self.child.name, self.plan.describe(), fmt(self.due, self.tz), human(self.due - now))
        self.state = "running"
        self.write_status()

    def tick(self, now: dt.datetime) -> None:
        """One look at the clock and the child: fire what is due, reap what ended, retry, start what waited."""
        if self.due is not None and now >= self.due:
            self.fired = False
            self.job.scheduler.run_pending()  # calls retrain_job through the user's schedule line
            if not self.fired:  # schedule's naive local clock disagrees (DST fold): run anyway
                self.job.run()
            self.anchor(now)
            self.write_status()
        if self.current is not None:
            code = self.current.poll()
            if code is not None:
                self.finish(code)
                self.write_status()
        elif self.waiting:
            self.start_or_wait(self.retry_attempt)
            self.write_status()
        elif self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self.counts["retries"] += 1
            self.start_or_wait(attempt=self.retry_attempt)
            self.write_status()
        if self.monitor is not None and self.monitor.is_due(now):
            self.monitor_check(now)

    def monitor_check(self, now: dt.datetime) -> None:
        """Monitor mode: run the monitor; start a retrain when it recommends one (cooldown permitting)."""
        answer = self.monitor.check(now, self.cwd)
        if "error" in answer:
            log.warning("Monitor: %s", answer["error"])
            return
        why = self.monitor.should_retrain(answer, now, self.last_start, self.current is not None)
        if why:
            log.info("Monitor recommends a retrain (%s): starting one now.", why)
            self.retry_at = None
            self.start(attempt=1)
        self.write_status()

    def sleep_seconds(self, now: dt.datetime) -> float:
        limit = 0.5 if self.current is not None or self.waiting else min(5.0, self.args.heartbeat)
        targets = [t for t in (self.due, self.retry_at, self.monitor.due if self.monitor else None) if t is not None]
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
        notify_failure(self.child, head, lines)

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
            "monitor": self.monitor.last if self.monitor else None,
            "retrain_args": loggable(self.child.args),  # the status file is world-readable: no passwords or tokens
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


def notify_failure(child: Child, head: str, lines: list[str]) -> None:
    """A `failed` message for what the child run cannot report itself; never raises, at most 10 s.

    The targets are the run's own: --notify/--notify-config/--notify-on after --, else $RETRAIN_NOTIFY.
    """
    from retraining.notify import Notifier, targets

    try:
        urls, config = targets(child.notify, child.notify_config)
        notifier = Notifier(urls, config, child.notify_on, logger=log)
    except UsageError as exc:
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
