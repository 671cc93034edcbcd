"""Command line of ``scheduler.py``: its flags, checked; everything after ``--`` goes to the job.

The job's own flags are read with ``retrain_model.py``'s parser (``parse_known_args``),
so the scheduler knows the run's models folder and notification targets exactly as the
run will, with no scanner of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from pathlib import Path

import schedule

from retraining.cli import retrain as retrain_cli
from retraining.cli.main import add_output_arguments, guarded_main, setup_logging
from retraining.cli.parser import OneLineParser, nonblank
from retraining.errors import BusyError, ExitCode, UsageError, exit_code_epilog
from retraining.fleet.config import load_fleet
from retraining.fleet.runner import default_parallel
from retraining.scheduling.fleet import FleetScheduler
from retraining.scheduling.loop import Child, RetrainScheduler, ScheduleJob, default_schedule_job, notify_failure
from retraining.scheduling.monitorjob import MonitorTrigger
from retraining.scheduling.status import format_status, print_status, read_status
from retraining.scheduling.timeplan import UNITS, get_zone


def build_parser(default_script: Path | None, description: str = "") -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="scheduler.py",
        description=description,
        epilog="Everything after -- is passed to retrain_model.py; --once exits with its exit code.\n\n" + exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--at", default="03:00", metavar="HH:MM", help="time of day to run (default: %(default)s)")
    p.add_argument("--every", type=int, metavar="N", help="run every N units instead of daily")
    p.add_argument("--unit", choices=UNITS, default="days", help="unit for --every (default: %(default)s)")
    p.add_argument("--timezone", type=nonblank, metavar="ZONE", help="IANA zone for --at, e.g. Europe/Helsinki (default: local time)")
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
    p.add_argument(
        "--script",
        default=None if default_script is None else str(default_script),
        type=nonblank,
        metavar="PATH",
        help="the job to run (default: retrain_model.py)",
    )
    p.add_argument("--config", metavar="FLEET.toml", help="run every model of a fleet on its own schedule (docs/fleet.md)")
    p.add_argument("--max-parallel", type=int, metavar="N", help="with --config: at most N runs at once (default: [fleet] max_parallel, else the cores)")
    m = p.add_argument_group("monitor mode (docs/monitoring.md)")
    m.add_argument(
        "--monitor-every", type=float, metavar="MINUTES", help="run monitor.py this often and retrain when it recommends it (the clock stays as a floor)"
    )
    m.add_argument("--monitor", metavar="ARGS", help="monitor.py's arguments in one quoted string: its outcomes source, id and label columns, ...")
    m.add_argument(
        "--monitor-cooldown",
        type=float,
        default=6.0,
        metavar="HOURS",
        help="no monitor-started retrain within this long of the last run (default: %(default)s)",
    )
    add_output_arguments(p, quiet=False)
    return p


def check_schedule(args: argparse.Namespace, error) -> None:
    """--at, --every, --unit, --timezone make sense together; ``error(message)`` must not return."""
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(args.at)):
        error(f"--at {args.at!r}: use HH:MM on a 24-hour clock, e.g. 03:00")
    if args.every is not None and (isinstance(args.every, bool) or not isinstance(args.every, int) or args.every < 1):
        error("--every must be a whole number of at least 1")
    if args.unit not in UNITS:
        error(f"--unit {args.unit!r}: use one of {', '.join(UNITS)}")
    if args.at_given and args.every is not None and args.unit not in ("days", "weeks"):
        error("--at goes with a daily or weekly schedule (--unit days or weeks), not with --unit " + args.unit)
    if args.timezone:
        try:
            get_zone(args.timezone)
        except ValueError as exc:
            error(f"--timezone: {exc}")


def parse_args(argv: list[str], default_script: Path | None, description: str = "") -> tuple[argparse.Namespace, list[str]]:
    """The scheduler's own flags (checked) and the ones after ``--``, which go to the job."""
    own, passthrough = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = build_parser(default_script, description.strip().splitlines()[0] if description.strip() else "")
    args = parser.parse_args(own)
    args.at_given = any(a == "--at" or a.startswith("--at=") for a in own)
    check_schedule(args, parser.error)
    for name in ("job_timeout", "retry_delay", "grace", "heartbeat"):
        if getattr(args, name) <= 0 and not (name == "retry_delay" and getattr(args, name) == 0):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.retries < 0:
        parser.error("--retries cannot be negative")
    if args.max_parallel is not None and args.max_parallel < 1:
        parser.error("--max-parallel must be at least 1")
    if args.config is None and args.max_parallel is not None:
        parser.error("--max-parallel goes with --config FLEET.toml")
    return args, passthrough


def child_of(args: argparse.Namespace, passthrough: list[str]) -> Child:
    """The command each run executes and the run's settings the scheduler needs, read by the retrain parser."""
    try:
        settings = retrain_cli.child_args(passthrough)
    except UsageError as exc:
        raise UsageError(f"the arguments after -- are not valid for retrain_model.py: {exc}") from None
    if args.script:
        command, name = [sys.executable, str(args.script), *passthrough], Path(args.script).name
    else:  # the installed command: the package's own retrain command line
        command, name = [sys.executable, "-m", "retraining.cli.retrain", *passthrough], "retrain_model.py"
    notify_on = tuple(settings.notify_on) if settings.notify_on else None
    return Child(command, list(passthrough), name, Path(settings.models_dir), tuple(settings.notify), settings.notify_config, notify_on)


def main(argv: list[str] | None = None, *, schedule_job: ScheduleJob = default_schedule_job, default_script: Path | None = None, doc: str = "") -> int:
    """The scheduler's command line; returns the exit code (ExitCode, or the job's with --once)."""
    log = logging.getLogger(__name__)
    args, passthrough = parse_args(list(sys.argv[1:] if argv is None else argv), default_script=default_script, description=doc or __doc__)
    setup_logging(("retraining",), args.verbose, log_file=None if args.status else Path(args.log_dir) / "scheduler.log")
    child: list[Child] = []

    def failed(code: ExitCode, line: str) -> None:  # the scheduler itself could not start or stopped on an error
        if child and not args.status and code not in (ExitCode.INTERRUPTED, ExitCode.BUSY):  # Ctrl+C; a second scheduler refused
            notify_failure(child[0], f"scheduler.py stopped: {line} (exit code {int(code)}); no nightly runs until it is restarted", [])

    def program() -> int:
        if args.config is not None:
            return run_fleet(args, passthrough)
        child.append(child_of(args, passthrough))
        return _program(args, child[0], schedule_job)

    return guarded_main(program, log=log, verbose=args.verbose, on_failure=failed)


LOCK_NAME = ".scheduler.lock"


def _program(args: argparse.Namespace, child: Child, schedule_job: ScheduleJob) -> int:
    if args.status:
        return print_status(child.models_dir, args.json)
    if args.script and not Path(args.script).is_file():
        raise UsageError(f"the job script {args.script} does not exist; pass --script PATH")
    from filelock import FileLock, Timeout

    sched = RetrainScheduler(args, child, schedule_job)
    beside = Path(args.script).parent / "monitor.py" if args.script else None
    script = beside if beside is not None and beside.is_file() else None
    sched.monitor = MonitorTrigger.from_flags(args.monitor_every, args.monitor_cooldown, args.monitor, child.models_dir, args.job_timeout, script)
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


# -- a fleet: scheduler.py --config fleet.toml ------------------------------------------------
def run_fleet(args: argparse.Namespace, passthrough: list[str]) -> int:
    """Every model of the fleet on its own schedule (or ``--once``, or ``--status``), from this process."""
    parser = retrain_cli.strict_parser()
    options = retrain_cli.setting_options(parser)
    fleet = load_fleet(args.config, options)
    members, children = {}, {}
    for name, spec in fleet.models.items():
        margs = _model_args(args, spec.schedule, name)
        try:
            settings, _unknown = parser.parse_known_args([*spec.argv(options), *passthrough])  # another --script may take other flags
        except UsageError as exc:
            raise UsageError(f"{fleet.path}: [models.{name}]: {exc}") from None
        base = [sys.executable, str(args.script)] if args.script else [sys.executable, "-m", "retraining.cli.retrain"]
        command = [*base, *passthrough, "--config", str(fleet.path.resolve()), "--model", name]
        notify_on = tuple(settings.notify_on) if settings.notify_on else None
        child = Child(
            command,
            list(passthrough),
            name,
            spec.models_dir,
            tuple(settings.notify),
            settings.notify_config,
            notify_on,
            f"retrain-job-{name}.out",
            f"[{name}] ",
        )
        children[name] = child
        members[name] = _member(margs, child)
    if args.status:
        return _fleet_status(children, args.json)
    if args.script and not Path(args.script).is_file():
        raise UsageError(f"the job script {args.script} does not exist; pass --script PATH")
    fleet_scheduler = FleetScheduler(members, args.max_parallel or fleet.max_parallel or default_parallel(), run_now=args.run_now)
    with contextlib.ExitStack() as locks:
        for member in fleet_scheduler.members.values():
            locks.enter_context(_locked(member))
        return fleet_scheduler.run_once() if args.once else fleet_scheduler.run_forever()


def _member(margs: argparse.Namespace, child: Child):
    own = schedule.Scheduler()  # a model's schedule is its own: run_pending fires only its job
    return lambda gate: RetrainScheduler(margs, child, lambda a, job: default_schedule_job(a, job, own.every), gate)


def _model_args(args: argparse.Namespace, keys: dict, name: str) -> argparse.Namespace:
    """The scheduler's flags with the model's at/every/unit/timezone over them, checked."""
    margs = argparse.Namespace(**vars(args))
    for key, value in keys.items():
        setattr(margs, key, value)
    margs.at_given = args.at_given or "at" in keys

    def error(message: str):
        raise UsageError(f"{args.config}: [models.{name}] {message}")

    check_schedule(margs, error)
    return margs


@contextlib.contextmanager
def _locked(member: RetrainScheduler):
    from filelock import FileLock, Timeout

    member.models_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(member.models_dir / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BusyError(f"another scheduler is already running for {member.models_dir} (model {member.child.name}); stop it first.") from None
    try:
        yield
    finally:
        lock.release()


def _fleet_status(children: dict[str, Child], as_json: bool) -> int:
    statuses = {name: read_status(child.models_dir) for name, child in children.items()}
    if as_json:
        print(json.dumps(statuses, indent=2, ensure_ascii=False))
    else:
        for name, status in statuses.items():
            print(f"== {name} ==\n{format_status(status)}")
    alive = sum(1 for s in statuses.values() if s.get("alive"))
    print(f"fleet: {alive} of {len(statuses)} models scheduled by a running scheduler", file=sys.stderr)
    return ExitCode.OK if alive == len(statuses) else ExitCode.DAMAGED_STATE


if __name__ == "__main__":
    sys.exit(main())
