"""The notification flags every command shares, and ``python -m retraining.cli.notify``.

``python -m retraining.cli.notify --failed LINE --exit-code N [--script NAME] [--notify URL ...]``
sends a ``failed`` message from outside a run (the Airflow DAG's failure callback); the
other arguments (``retrain_model.py``'s) are ignored, so a caller can pass its own list.
"""

from __future__ import annotations

import argparse
import logging
import sys

from retraining.cli.main import guarded_main, setup_logging
from retraining.cli.parser import OneLineParser
from retraining.errors import ExitCode
from retraining.notify import ENV_VAR, EVENTS, Notifier, parse_events, targets

log = logging.getLogger(__name__)


def _events_arg(text: str) -> tuple[str, ...]:
    try:
        return parse_events(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_notify_arguments(group) -> None:
    """Add --notify, --notify-config and --notify-on to an argparse parser or group."""
    group.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help=f"send notifications to this Apprise URL, e.g. slack://... or mailto://... (repeatable; default: ${ENV_VAR}, comma separated)",
    )
    group.add_argument("--notify-config", metavar="PATH", help="Apprise config file (text or YAML) with more targets")
    group.add_argument(
        "--notify-on",
        type=_events_arg,
        metavar="EVENTS",
        help=f"comma-separated events to send: {', '.join(EVENTS)} or all (default: all but deployed)",
    )


def notifier_from_args(args: argparse.Namespace, environ: dict | None = None, logger: logging.Logger | None = None) -> Notifier:
    """The Notifier the flags ask for (``$RETRAIN_NOTIFY`` when no target flag is given)."""
    urls, config = targets(getattr(args, "notify", None) or (), getattr(args, "notify_config", None), environ)
    return Notifier(urls, config, getattr(args, "notify_on", None), logger=logger)


def main(argv: list[str] | None = None) -> int:
    """Send one ``failed`` message; exit 0 even if it could not be delivered, 2 for bad flags."""
    p = OneLineParser(
        prog="python -m retraining.cli.notify",
        description="Send a 'failed' notification for a run that could not report itself; other arguments (retrain_model.py's) are ignored.",
        allow_abbrev=False,
    )
    p.add_argument("--failed", required=True, metavar="LINE", help="the error line")
    p.add_argument("--exit-code", type=int, default=1, help="the run's exit code (default: %(default)s)")
    p.add_argument("--script", default="retrain_model.py", help="what failed (default: %(default)s)")
    p.add_argument("--attempts", type=int, help="attempts made, retries included")
    add_notify_arguments(p)
    args, _unknown = p.parse_known_args(argv)
    setup_logging(["retraining"], quiet=True)

    def program() -> int:
        notifier_from_args(args, logger=log).notify_failure(args.failed, args.exit_code, args.script, args.attempts)
        return ExitCode.OK  # not delivered is a warning, never a failure of the caller

    return guarded_main(program, log=log)


if __name__ == "__main__":
    sys.exit(main())
