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
import logging.handlers
import re
import signal
import sys
import threading
from pathlib import Path

import schedule

from retraining.argparse_util import OneLineParser
from retraining.fsutil import atomic_write_json
from retraining.jobrunner import ChildRun, pid_alive, python_argv
from retraining.timeplan import UNITS, Plan, fmt, get_zone, to_schedule_naive

HERE = Path(__file__).resolve().parent
STATUS_NAME = "scheduler_status.json"
LOCK_NAME = ".scheduler.lock"
EXIT_TIMED_OUT = 124
log = logging.getLogger("scheduler")


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
        log.info("Run started (attempt %d of %d, pid %s): %s", attempt, self.args.retries + 1, self.current.pid, " ".join(argv[1:]))

    def finish(self, code: int) -> None:
        run, self.current = self.current, None
        assert run is not None
        ended = now_utc()
        outcome = "success" if code == 0 else ("timed out" if run.timed_out else "failed")
        produced = version_produced(self.models_dir, run.started_at)
        self.last_exit_code = EXIT_TIMED_OUT if run.timed_out else code
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
        if run.attempt <= self.args.retries and not self.stop_signal:
            delay = self.args.retry_delay * 2 ** (run.attempt - 1)
            self.retry_at = ended + dt.timedelta(seconds=delay)
            self.retry_attempt = run.attempt + 1
            log.warning("Retrying in %g s (attempt %d of %d).", delay, run.attempt + 1, self.args.retries + 1)
        elif self.args.retries:
            log.error("Giving up after %d attempts; the next scheduled run is %s.", run.attempt, fmt(self.due, self.tz))

    # -- the loop ---------------------------------------------------------------------
    def run_forever(self) -> int:
        self.install_signal_handlers()
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
        self.state = "running"
        attempt = 1
        while True:
            self.start(attempt)
            self.write_status()
            while (code := self.current.poll()) is None:
                if self.stop_signal:
                    self.shutdown()
                    return 130 if self.job_interrupted else (self.last_exit_code or 0)
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
            "retrain_args": self.passthrough,
        }
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.status_path, status)
        except OSError as exc:  # monitoring must not take the scheduler down
            log.warning("Could not write %s: %s", self.status_path, exc)


def _pid() -> int:
    import os

    return os.getpid()


def models_dir_of(passthrough: list[str]) -> Path:
    """The models folder retrain_model.py will use, read from the pass-through arguments."""
    for i, arg in enumerate(passthrough):
        if arg == "--models-dir" and i + 1 < len(passthrough):
            return Path(passthrough[i + 1])
        if arg.startswith("--models-dir="):
            return Path(arg.split("=", 1)[1])
    return Path("models")


def version_produced(models_dir: Path, since: dt.datetime) -> dict:
    """The version a run added to the log (empty if none, e.g. unchanged data)."""
    try:
        data = json.loads((models_dir / "version_log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    floor = fmt(since.replace(microsecond=0)).replace("+00:00", "Z")
    new = [e for e in data.get("versions", []) if isinstance(e, dict) and str(e.get("created_at", "")) >= floor]
    return new[-1] if new else {}


def human(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def indent(text: str) -> str:
    return "\n".join("    " + line for line in (text or "(no output)").splitlines())


def print_status(models_dir: Path, as_json: bool) -> int:
    """``--status``: 0 alive, 3 not running (stopped, dead or stale), 2 no status file."""
    path = models_dir / STATUS_NAME
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"error: no scheduler status at {path}; has `python scheduler.py` been started here?", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {path} cannot be read ({exc}); the scheduler rewrites it on its next heartbeat.", file=sys.stderr)
        return 2
    beat = dt.datetime.fromisoformat(status["heartbeat"])
    age = (now_utc() - beat).total_seconds()
    alive = status.get("state") in ("running", "starting") and pid_alive(int(status["pid"])) and age <= 3 * status.get("heartbeat_seconds", 30) + 5
    status["alive"] = alive
    status["heartbeat_age_seconds"] = round(age, 1)
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        state = "running" if alive else ("stopped" if status.get("state") == "stopped" else "NOT RUNNING (stale heartbeat or dead process)")
        last = status.get("last_run") or {}
        cur = status.get("current_run")
        print(f"scheduler: {state} (pid {status['pid']}, heartbeat {age:.0f} s ago)")
        print(f"schedule:  {status['schedule']}")
        print(f"next run:  {status.get('next_run') or '-'}" + (f" (retry at {status['retry_at']})" if status.get("retry_at") else ""))
        print(f"current:   pid {cur['pid']} since {cur['started_at']} (attempt {cur['attempt']})" if cur else "current:   none")
        if last:
            made = f", {last['version']} {last['decision']}" if last.get("version") else ""
            print(f"last run:  {last['started_at']} -> {last['ended_at']}: {last['outcome']} (exit {last['exit_code']}){made}")
        else:
            print("last run:  none yet")
        c = status.get("counts", {})
        totals = ", ".join(f"{c.get(k, 0)} {word}" for k, word in (("runs", "runs"), ("failures", "failed"), ("skipped", "skipped"), ("retries", "retries")))
        print(f"totals:    {totals}")
    return 0 if alive else 3


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="scheduler.py", description=__doc__.splitlines()[0], epilog="Everything after -- is passed to retrain_model.py.")
    p.add_argument("--at", default="03:00", metavar="HH:MM", help="time of day to run (default: %(default)s)")
    p.add_argument("--every", type=int, metavar="N", help="run every N units instead of daily")
    p.add_argument("--unit", choices=UNITS, default="days", help="unit for --every (default: %(default)s)")
    p.add_argument("--timezone", metavar="ZONE", help="IANA zone for --at, e.g. Europe/Helsinki (default: local time)")
    p.add_argument("--run-now", action="store_true", help="run once at start, then follow the schedule")
    p.add_argument("--once", action="store_true", help="run once (with retries) and exit with its exit code")
    p.add_argument("--job-timeout", type=float, default=7200, metavar="SECONDS", help="kill a run after this long (default: 2 h)")
    p.add_argument("--retries", type=int, default=2, metavar="N", help="retry a failed run N times (default: %(default)s)")
    p.add_argument("--retry-delay", type=float, default=300, metavar="SECONDS", help="first retry delay, doubled each time (default: %(default)s)")
    p.add_argument(
        "--grace",
        type=float,
        default=60,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, let a running job finish this long (default: %(default)s)",
    )
    p.add_argument("--heartbeat", type=float, default=30, metavar="SECONDS", help="rewrite the status file this often (default: %(default)s)")
    p.add_argument("--status", action="store_true", help="print the running scheduler's status and exit (0 alive, 3 not running)")
    p.add_argument("--json", action="store_true", help="with --status: print JSON")
    p.add_argument("--log-dir", default="logs", metavar="DIR", help="where scheduler.log rotates (default: %(default)s)")
    p.add_argument("--script", default=str(HERE / "retrain_model.py"), metavar="PATH", help="the job to run (default: retrain_model.py)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, passthrough = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = build_parser()
    args = parser.parse_args(own)
    args.at_given = any(a == "--at" or a.startswith("--at=") for a in own)
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", args.at):
        parser.error(f"--at {args.at!r}: use HH:MM on a 24-hour clock, e.g. 03:00")
    if args.every is not None and args.every < 1:
        parser.error("--every must be at least 1")
    if args.at_given and args.every is not None and args.unit not in ("days", "weeks"):
        parser.error("--at goes with a daily or weekly schedule (--unit days or weeks), not with --unit " + args.unit)
    for name in ("job_timeout", "retry_delay", "grace", "heartbeat"):
        if getattr(args, name) <= 0 and not (name == "retry_delay" and getattr(args, name) == 0):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.retries < 0:
        parser.error("--retries cannot be negative")
    if args.timezone:
        try:
            get_zone(args.timezone)
        except ValueError as exc:
            parser.error(f"--timezone: {exc}")
    return args, passthrough


def setup_logging(verbose: bool, log_dir: Path) -> None:
    log.setLevel(logging.DEBUG)
    log.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    log.addHandler(console)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(log_dir / "scheduler.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
        log.addHandler(fh)
    except OSError as exc:
        log.warning("Cannot write %s/scheduler.log (%s); logging to the console only.", log_dir, exc)


def main(argv: list[str] | None = None) -> int:
    args, passthrough = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.status:
        return print_status(models_dir_of(passthrough), args.json)
    if not Path(args.script).is_file():
        print(f"error: the job script {args.script} does not exist; pass --script PATH", file=sys.stderr)
        return 2
    from filelock import FileLock, Timeout

    setup_logging(args.verbose, Path(args.log_dir))
    sched = RetrainScheduler(args, passthrough)
    sched.models_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(sched.models_dir / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        other = ""
        with contextlib.suppress(OSError, ValueError, KeyError):
            other = f" (pid {json.loads(sched.status_path.read_text())['pid']})"
        print(
            f"error: another scheduler{other} is already running for {sched.models_dir}; stop it first, or give this one its own -- --models-dir.",
            file=sys.stderr,
        )
        return 4
    try:
        return sched.run_once() if args.once else sched.run_forever()
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
