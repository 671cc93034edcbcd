"""Command line of ``retrain_model.py``: parse -> build the retrainer -> dispatch -> format.

Errors, Ctrl+C and exit codes are :func:`retraining.cli.main.guarded_main`'s; the exit codes
are :class:`retraining.errors.ExitCode` (the ``--help`` epilog is generated from it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from retraining.cli import fleet as fleet_cli
from retraining.cli.main import add_output_arguments, guarded_main, setup_logging
from retraining.cli.notify import add_notify_arguments, notifier_from_args
from retraining.cli.options import add_source_arguments
from retraining.cli.parser import OneLineParser, nonblank
from retraining.errors import ExitCode, UsageError, exit_code_epilog
from retraining.fleet.config import Option
from retraining.retrainer import ModelRetrainer

log = logging.getLogger(__name__)
LOGGERS = ("retraining",)  # every logger of the library is retraining.<module> (logging.getLogger(__name__))
INTERRUPTED = "interrupted; production and the version log are consistent (the next run tidies up)."


def build_parser(parser_class: type[argparse.ArgumentParser] = OneLineParser) -> argparse.ArgumentParser:
    p = parser_class(
        prog="retrain_model.py",
        description="Retrain the CatBoost model and deploy it only if its ROC-AUC is at least the production model's (equal: within the holdout's noise).",
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_arguments(p.add_argument_group("data"))
    _model_arguments(p.add_argument_group("model"))
    _rule_arguments(p.add_argument_group("deploy rule (default: deploy when ROC-AUC is better, or equal within the holdout's noise)"))
    _file_arguments(p.add_argument_group("files"))
    _action_arguments(p.add_argument_group("actions (default: retrain)"))
    _mlflow_arguments(p.add_argument_group("MLflow mirror (optional: pip install -r requirements-mlflow.txt)"))
    add_notify_arguments(p.add_argument_group("notifications (optional: pip install -r requirements-notify.txt)"))
    _fleet_arguments(p.add_argument_group("fleet: several models from one file (docs/fleet.md)"))
    add_output_arguments(p)
    return p


def _fleet_arguments(fleet: argparse._ArgumentGroup) -> None:
    fleet.add_argument("--config", metavar="FLEET.toml", help="the fleet's settings: [defaults] and one [models.NAME] table per model")
    fleet.add_argument("--model", metavar="NAME", help="with --config: run (or --history, --promote, --report) this model")
    fleet.add_argument("--all", action="store_true", help="with --config: run every model, each in its own process")
    fleet.add_argument("--max-parallel", type=int, metavar="N", help="with --all: at most N runs at once (default: [fleet] max_parallel, else the cores)")
    fleet.add_argument("--list", action="store_true", help="with --config: print each model's resolved settings (with --json: for tools) and exit")
    fleet.add_argument("--page", action="store_true", help="with --config: write the fleet's HTML page (ROOT/index.html), print its path, exit")


def _data_arguments(data: argparse._ArgumentGroup) -> None:
    data.add_argument("--data", default="featured_dataset.csv", metavar="PATH", help="training data: CSV, Parquet or database URL (default: %(default)s)")
    data.add_argument("--target", default="target", metavar="NAME", help="outcome column (default: %(default)s)")
    data.add_argument("--positive-class", metavar="VALUE", help="target value that means 1 (needed unless 0/1, yes/no, true/false)")
    data.add_argument("--id-column", metavar="NAME", help="entity id: the holdout split hashes it (and it is not a feature)")
    data.add_argument("--time-column", metavar="NAME", help="timestamp: the newest 20%% of rows are the holdout (not a feature)")
    data.add_argument("--drop-columns", metavar="A,B", default="", help="comma-separated columns to leave out")
    data.add_argument(
        "--data-checks",
        choices=("block", "warn", "off"),
        default="block",
        help="a failed data check: block keeps the new model from deploying, warn only warns, off skips the checks (default: %(default)s)",
    )
    data.add_argument("--check-settings", metavar="FILE", help="JSON file of data-check thresholds and severities (docs/data-checks.md)")
    data.add_argument(
        "--slice-columns", metavar="A,B", default="", help="compare candidate and champion per value of these columns (the slice gate, docs/data-checks.md)"
    )
    add_source_arguments(data)


def _model_arguments(model: argparse._ArgumentGroup) -> None:
    model.add_argument("--iterations", type=int, default=500, help="CatBoost iterations (default: %(default)s)")
    model.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    model.add_argument("--task-type", default="CPU", type=str.upper, choices=["CPU", "GPU"], help="train on CPU or GPU (default: %(default)s)")
    model.add_argument("--learning-rate", type=float, help="CatBoost learning rate (default: CatBoost picks one)")
    model.add_argument("--depth", type=int, help="tree depth (default: CatBoost's 6)")
    model.add_argument("--threads", type=int, default=-1, help="CPU threads (default: all)")


def _rule_arguments(rule: argparse._ArgumentGroup) -> None:
    rule.add_argument(
        "--rule",
        choices=("noise", "strict"),
        default="noise",
        help="noise: deploy when better or equal within the holdout's noise; strict: exactly ROC-AUC >= champion's (default: %(default)s)",
    )
    rule.add_argument("--alpha", type=float, default=0.05, help="significance level of the one-sided DeLong tests (default: %(default)s)")
    rule.add_argument("--margin", type=float, default=0.005, metavar="DELTA", help="noise rule: the largest ROC-AUC drop that is equal (default: %(default)s)")
    rule.add_argument(
        "--recent-versions",
        type=int,
        default=5,
        metavar="N",
        help="noise rule: never deploy more than the margin below the best of the last N versions (0: off; default: %(default)s)",
    )
    rule.add_argument(
        "--loss-tolerance",
        type=float,
        default=0.1,
        metavar="SHARE",
        help="noise rule: a deploy within noise also needs a log loss not significantly higher and at most (1 + SHARE) x the champion's (default: %(default)s)",
    )
    rule.add_argument("--min-improvement", type=float, default=0.0, metavar="DELTA", help="deploy only if AUC gain >= DELTA")
    rule.add_argument("--require-significance", action="store_true", help="deploy only if one-sided DeLong p < --alpha")
    rule.add_argument("--min-auc", type=float, metavar="AUC", help="never deploy below this ROC-AUC")


def _file_arguments(files: argparse._ArgumentGroup) -> None:
    files.add_argument("--models-dir", default="models", metavar="DIR", help="versions, log, backups (default: %(default)s)")
    files.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
    files.add_argument("--log-dir", default="logs", metavar="DIR", help="where retrain.log rotates (default: %(default)s)")
    files.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS", help="wait this long for another run (default: %(default)s)")


def _action_arguments(actions: argparse._ArgumentGroup) -> None:
    one = actions.add_mutually_exclusive_group()
    one.add_argument("--validate", action="store_true", help="check the data (and the flags that shape it), print a summary, exit")
    one.add_argument("--history", action="store_true", help="print every version, production marked, and exit")
    one.add_argument("--promote", type=nonblank, metavar="VERSION", help="make VERSION production (rollback) and exit")
    one.add_argument(
        "--report", nargs="?", const="latest", type=nonblank, metavar="VERSION", help="write the HTML report of VERSION (default: latest), print its path, exit"
    )
    one.add_argument("--mlflow-sync", action="store_true", help="push whatever MLflow lacks (after an outage) and exit")
    actions.add_argument("--reason", type=nonblank, metavar="TEXT", help="with --promote: why, recorded in the version log (default: promoted by hand)")
    actions.add_argument("--force", action="store_true", help="retrain even if data and settings are unchanged")
    actions.add_argument("--no-report", action="store_true", help="do not write models/reports/VERSION.html after a run")
    actions.add_argument("--json", action="store_true", help="print the result (or --history) as JSON on stdout")
    actions.add_argument(
        "--html",
        action="store_true",
        help="with --history: write models/reports/index.html (every version, linked to its report), print its path",
    )


def _mlflow_arguments(ml: argparse._ArgumentGroup) -> None:
    ml.add_argument(
        "--mlflow-uri", metavar="URI", default=os.environ.get("MLFLOW_TRACKING_URI"), help="mirror runs and versions here (default: $MLFLOW_TRACKING_URI)"
    )
    ml.add_argument("--mlflow-experiment", default="catboost-retraining", metavar="NAME", help="experiment name (default: %(default)s)")
    ml.add_argument("--mlflow-model-name", default="catboost_model", metavar="NAME", help="registered model name (default: %(default)s)")


def retrainer_settings(args: argparse.Namespace) -> dict:
    """The flags as ModelRetrainer's keyword arguments (every flag has a parameter of the same name)."""
    return {
        "data_path": args.data,
        "models_dir": args.models_dir,
        "production_path": args.production,
        "target": args.target,
        "positive_class": args.positive_class,
        "id_column": args.id_column,
        "time_column": args.time_column,
        "drop_columns": [c.strip() for c in args.drop_columns.split(",") if c.strip()],
        "query": args.query,
        "table": args.table,
        "csv_delimiter": args.csv_delimiter,
        "decimal": args.decimal,
        "encoding": args.encoding,
        "data_checks": args.data_checks,
        "check_settings": args.check_settings,
        "slice_columns": [c.strip() for c in args.slice_columns.split(",") if c.strip()],
        "iterations": args.iterations,
        "seed": args.seed,
        "task_type": args.task_type,
        "learning_rate": args.learning_rate,
        "depth": args.depth,
        "thread_count": args.threads,
        "min_improvement": args.min_improvement,
        "require_significance": args.require_significance,
        "min_auc": args.min_auc,
        "rule": args.rule,
        "alpha": args.alpha,
        "margin": args.margin,
        "recent_versions": args.recent_versions,
        "loss_tolerance": args.loss_tolerance,
        "lock_timeout": args.lock_timeout,
        "progress_every": 0 if args.quiet else 100,
        "report": not args.no_report,
        "mlflow_uri": args.mlflow_uri or None,
        "mlflow_experiment": args.mlflow_experiment,
        "mlflow_model_name": args.mlflow_model_name,
        "notify": tuple(args.notify),
        "notify_config": args.notify_config,
        "notify_on": args.notify_on,
    }


def main(argv: list[str] | None = None) -> int:
    """``retrain_model.py``'s main: parse -> build the retrainer -> dispatch -> format; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.reason is not None and not args.promote:
        parser.error("--reason goes with --promote VERSION")
    if args.html and not args.history:
        parser.error("--html goes with --history")
    if args.config is not None:
        return fleet_cli.main(argv, args, strict_parser(), run_one, setting_options(parser))
    if args.model or args.all or args.list or args.page or args.max_parallel is not None:
        parser.error("--model, --all, --list, --page and --max-parallel go with --config FLEET.toml")
    return run_one(args)


def run_one(args: argparse.Namespace) -> int:
    """One model's command: logging, the retrainer, the action; the exit code."""
    log_file = Path(args.log_dir) / "retrain.log"
    setup_logging(LOGGERS, args.verbose, args.quiet, log_file)
    notifiers = []  # the `failed` notification's Notifier, once the flags proved valid

    def program() -> int:
        notifier = notifier_from_args(args, logger=log)
        notifiers.append(notifier)
        retrainer = ModelRetrainer(**retrainer_settings(args))
        retrainer.notifier = notifier  # one Notifier (one 10 s budget) for the whole command, $RETRAIN_NOTIFY included
        return ACTIONS[_action(args)](retrainer, args)

    def notify_failure(code: ExitCode, line: str) -> None:
        for notifier in notifiers:
            notifier.notify_failure(line, int(code))

    return guarded_main(program, log=log, verbose=args.verbose, log_file=log_file, interrupted=INTERRUPTED, on_failure=notify_failure)


# What a fleet.toml key may not be: actions, output and the fleet's own flags.
NOT_SETTINGS = frozenset(
    {
        "help",
        "validate",
        "history",
        "promote",
        "report",
        "mlflow_sync",
        "reason",
        "force",
        "json",
        "verbose",
        "quiet",
        "config",
        "model",
        "all",
        "max_parallel",
        "list",
    }
)


def setting_options(parser: argparse.ArgumentParser) -> dict[str, Option]:
    """Every setting flag as a fleet.toml key: its flag and how it takes a value."""
    out = {}
    for action in parser._actions:
        if action.dest in NOT_SETTINGS or not action.option_strings:
            continue
        kind = "bool" if isinstance(action, argparse._StoreTrueAction) else "append" if isinstance(action, argparse._AppendAction) else "value"
        out[action.dest] = Option(max(action.option_strings, key=len), "list" if action.dest == "drop_columns" else kind)
    return out


class _Strict(OneLineParser):
    """The retrain parser for another program's use: a bad value raises UsageError instead of exiting."""

    def error(self, message: str):
        raise UsageError(message)


def strict_parser() -> argparse.ArgumentParser:
    """The retrain parser, raising :class:`UsageError` for a bad value instead of exiting (for other programs)."""
    return build_parser(_Strict)


def child_args(argv: list[str]) -> argparse.Namespace:
    """``retrain_model.py``'s settings from an argument list, exactly as a run will read them (other arguments ignored)."""
    args, _unknown = build_parser(_Strict).parse_known_args(argv)
    return args


def _action(args: argparse.Namespace) -> str:
    for name in ("validate", "mlflow_sync", "history", "report", "promote"):
        if getattr(args, name) not in (None, False):  # "" is an action given wrong, never "no action"
            return name
    return "retrain"


def _validate(retrainer, args: argparse.Namespace) -> int:
    ds = retrainer.load_data()
    if args.json:
        print(json.dumps({**ds.describe(), "features": ds.features, "categorical_features": ds.cat_features}, indent=2, ensure_ascii=False))
    else:
        print(
            f"{ds.path}: OK, {ds.rows} rows, {ds.positives} positive, "
            f"{len(ds.features)} features ({len(ds.cat_features)} categorical), holdout {int(ds.holdout.sum())} rows"
        )
    return ExitCode.OK


def _mlflow_sync(retrainer, args: argparse.Namespace) -> int:
    retrainer.sync_mlflow()
    print(f"MLflow at {args.mlflow_uri} is up to date.")
    return ExitCode.OK


def _history(retrainer, args: argparse.Namespace) -> int:
    if args.html:
        path = retrainer.write_history_page()
        print(json.dumps({"history_page": str(path.resolve())}, ensure_ascii=False) if args.json else path.resolve())
    else:
        retrainer.print_version_history(as_json=args.json, verbose=args.verbose)
    return ExitCode.OK


def _report(retrainer, args: argparse.Namespace) -> int:
    path = retrainer.regenerate_report(None if args.report == "latest" else args.report)
    print(json.dumps({"report": str(path)}, ensure_ascii=False) if args.json else path)
    return ExitCode.OK


def _promote(retrainer, args: argparse.Namespace) -> int:
    event = retrainer.promote_to_production(args.promote, reason=args.reason)
    event = event.to_json() if hasattr(event, "to_json") else event  # an Event record or its dict
    print(json.dumps(event, indent=2, ensure_ascii=False) if args.json else format_promotion(args.promote, event))
    return ExitCode.OK


def format_promotion(version: str, event: dict) -> str:
    if event["event"] == "none":
        return f"{version} is already in production; nothing changed."
    backup = f"; previous production backed up as {event['backup']}" if event.get("backup") else ""
    return f"{event['event']}: {event['from'] or 'none'} -> {event['to']} is now production{backup}"


def _retrain(retrainer, args: argparse.Namespace) -> int:
    result = retrainer.retrain(force=args.force)
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json else result.summary())
    return ExitCode.OK


ACTIONS: dict[str, Callable[..., int]] = {
    "validate": _validate,
    "mlflow_sync": _mlflow_sync,
    "history": _history,
    "report": _report,
    "promote": _promote,
    "retrain": _retrain,
}


if __name__ == "__main__":
    import sys

    sys.exit(main())
