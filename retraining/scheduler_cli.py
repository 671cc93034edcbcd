"""Command line of ``scheduler.py``: its flags, checked; everything after ``--`` goes to the job."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .argparse_util import OneLineParser
from .cliutil import add_output_arguments
from .errors import exit_code_epilog
from .timeplan import UNITS, get_zone


def build_parser(default_script: Path, description: str = "") -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="scheduler.py",
        description=description,
        epilog="Everything after -- is passed to retrain_model.py; --once exits with its exit code.\n\n" + exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    p.add_argument("--script", default=str(default_script), metavar="PATH", help="the job to run (default: retrain_model.py)")
    add_output_arguments(p, quiet=False)
    return p


def parse_args(argv: list[str], default_script: Path, description: str = "") -> tuple[argparse.Namespace, list[str]]:
    """The scheduler's own flags (checked) and the ones after ``--``, which go to the job."""
    own, passthrough = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = build_parser(default_script, description.strip().splitlines()[0] if description.strip() else "")
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
