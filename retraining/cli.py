"""Command line of ``retrain_model.py``: flags, logging, and errors as one line + exit code."""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from .argparse_util import OneLineParser
from .errors import EXIT_INTERNAL, RetrainError

log = logging.getLogger("retrain_model")

EPILOG = """\
exit codes:
  0  success: deployed, kept for review, nothing to do, history shown, promoted
  1  unexpected internal error (run with -v for the traceback)
  2  bad input: arguments, data file, unknown or malformed version
  3  damaged state: corrupted version log or production model, changed version file
  4  busy: another run or promotion holds the models folder's lock
  5  CatBoost could not train (e.g. --task-type GPU without a GPU)
  6  --mlflow-sync could not reach or write MLflow (a retrain never fails for MLflow)
  130 interrupted (Ctrl+C)
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="retrain_model.py",
        description="Retrain the CatBoost model and deploy it only if its ROC-AUC is at least the production model's.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", default="featured_dataset.csv", metavar="PATH", help="training CSV (default: %(default)s)")
    d.add_argument("--target", default="target", metavar="NAME", help="outcome column (default: %(default)s)")
    d.add_argument("--positive-class", metavar="VALUE", help="target value that means 1 (needed unless 0/1, yes/no, true/false)")
    d.add_argument("--id-column", metavar="NAME", help="entity id: the holdout split hashes it (and it is not a feature)")
    d.add_argument("--time-column", metavar="NAME", help="timestamp: the newest 20%% of rows are the holdout (not a feature)")
    d.add_argument("--drop-columns", metavar="A,B", default="", help="comma-separated columns to leave out")
    m = p.add_argument_group("model")
    m.add_argument("--iterations", type=int, default=500, help="CatBoost iterations (default: %(default)s)")
    m.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    m.add_argument("--task-type", default="CPU", type=str.upper, choices=["CPU", "GPU"], help="train on CPU or GPU (default: %(default)s)")
    m.add_argument("--learning-rate", type=float, help="CatBoost learning rate (default: CatBoost picks one)")
    m.add_argument("--depth", type=int, help="tree depth (default: CatBoost's 6)")
    m.add_argument("--threads", type=int, default=-1, help="CPU threads (default: all)")
    g = p.add_argument_group("deploy rule (default: deploy when ROC-AUC >= champion's)")
    g.add_argument("--min-improvement", type=float, default=0.0, metavar="DELTA", help="deploy only if AUC gain >= DELTA")
    g.add_argument("--require-significance", action="store_true", help="deploy only if one-sided DeLong p < 0.05")
    g.add_argument("--min-auc", type=float, metavar="AUC", help="never deploy below this ROC-AUC")
    f = p.add_argument_group("files")
    f.add_argument("--models-dir", default="models", metavar="DIR", help="versions, log, backups (default: %(default)s)")
    f.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
    f.add_argument("--log-dir", default="logs", metavar="DIR", help="where retrain.log rotates (default: %(default)s)")
    f.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS", help="wait this long for another run (default: %(default)s)")
    a = p.add_argument_group("actions (default: retrain)")
    a.add_argument("--validate", action="store_true", help="check the data (and the flags that shape it), print a summary, exit")
    a.add_argument("--force", action="store_true", help="retrain even if data and settings are unchanged")
    a.add_argument("--history", action="store_true", help="print every version, production marked, and exit")
    a.add_argument("--promote", metavar="VERSION", help="make VERSION production (rollback) and exit")
    a.add_argument(
        "--report",
        nargs="?",
        const="latest",
        metavar="VERSION",
        help="write the HTML report of VERSION (default: latest), print its path, exit",
    )
    a.add_argument("--no-report", action="store_true", help="do not write models/reports/VERSION.html after a run")
    a.add_argument("--json", action="store_true", help="print the result (or --history) as JSON on stdout")
    ml = p.add_argument_group("MLflow mirror (optional: pip install -r requirements-mlflow.txt)")
    ml.add_argument(
        "--mlflow-uri", metavar="URI", default=os.environ.get("MLFLOW_TRACKING_URI"), help="mirror runs and versions here (default: $MLFLOW_TRACKING_URI)"
    )
    ml.add_argument("--mlflow-experiment", default="catboost-retraining", metavar="NAME", help="experiment name (default: %(default)s)")
    ml.add_argument("--mlflow-model-name", default="catboost_model", metavar="NAME", help="registered model name (default: %(default)s)")
    ml.add_argument("--mlflow-sync", action="store_true", help="push whatever MLflow lacks (after an outage) and exit")
    o = p.add_argument_group("output")
    o.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors")
    o.add_argument("-q", "--quiet", action="store_true", help="warnings and the summary only")
    return p


def setup_logging(verbose: bool, quiet: bool, log_dir: Path | None) -> None:
    """Console on stderr (stdout stays for results) plus a rotating file."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    for name in ("retrain_model", "retraining"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(level)
        console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
        console.addFilter(lambda record: not getattr(record, "file_only", False))
        logger.addHandler(console)
        if log_dir is not None:
            try:
                log_dir.mkdir(parents=True, exist_ok=True)
                fh = logging.handlers.RotatingFileHandler(log_dir / "retrain.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8", delay=True)
            except OSError as exc:
                print(f"warning: cannot write logs to {log_dir} ({exc}); logging to the console only", file=sys.stderr)
                continue
            fh.setLevel(logging.DEBUG if verbose else logging.INFO)
            fh.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
            logger.addHandler(fh)


def run_cli(argv: list[str] | None, retrainer_cls) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v/--verbose and -q/--quiet cannot be used together")
    if sum(bool(x) for x in (args.history, args.promote, args.report, args.validate, args.mlflow_sync)) > 1:
        parser.error("--history, --promote, --report, --validate and --mlflow-sync cannot be used together")
    setup_logging(args.verbose, args.quiet, Path(args.log_dir))
    try:
        retrainer = retrainer_cls(
            data_path=args.data,
            models_dir=args.models_dir,
            production_path=args.production,
            target=args.target,
            positive_class=args.positive_class,
            id_column=args.id_column,
            time_column=args.time_column,
            drop_columns=[c.strip() for c in args.drop_columns.split(",") if c.strip()],
            iterations=args.iterations,
            seed=args.seed,
            task_type=args.task_type,
            learning_rate=args.learning_rate,
            depth=args.depth,
            min_improvement=args.min_improvement,
            require_significance=args.require_significance,
            min_auc=args.min_auc,
            lock_timeout=args.lock_timeout,
            thread_count=args.threads,
            progress_every=0 if args.quiet else 100,
            report=not args.no_report,
            mlflow_uri=args.mlflow_uri or None,
            mlflow_experiment=args.mlflow_experiment,
            mlflow_model_name=args.mlflow_model_name,
        )
        if args.validate:
            ds = retrainer.load_data()
            summary = {**ds.describe(), "features": ds.features, "categorical_features": ds.cat_features}
            print(
                json.dumps(summary, indent=2)
                if args.json
                else f"{ds.path}: OK, {ds.rows} rows, {ds.positives} positive, "
                f"{len(ds.features)} features ({len(ds.cat_features)} categorical), holdout {int(ds.holdout.sum())} rows"
            )
            return 0
        if args.mlflow_sync:
            retrainer.sync_mlflow()
            print(f"MLflow at {args.mlflow_uri} is up to date.")
            return 0
        if args.history:
            retrainer.print_version_history(as_json=args.json)
            return 0
        if args.report:
            path = retrainer.regenerate_report(None if args.report == "latest" else args.report)
            print(json.dumps({"report": str(path)}) if args.json else path)
            return 0
        if args.promote:
            event = retrainer.promote_to_production(args.promote)
            if args.json:
                print(json.dumps(event, indent=2))
            elif event["event"] == "none":
                print(f"{args.promote} is already in production; nothing changed.")
            else:
                backup = f"; previous production backed up as {event['backup']}" if event.get("backup") else ""
                print(f"{event['event']}: {event['from'] or 'none'} -> {event['to']} is now production{backup}")
            return 0
        result = retrainer.retrain(force=args.force)
        print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
        return 0
    except RetrainError as exc:
        _report(f"error: {exc}", args.verbose)
        return exc.exit_code
    except KeyboardInterrupt:
        _report("error: interrupted; production and the version log are consistent (the next run tidies up).", args.verbose)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback in the log file
        _report(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback; it is also in retrain.log)", args.verbose)
        return EXIT_INTERNAL


def _report(line: str, verbose: bool) -> None:
    """One line on stderr for the user; the full story (traceback) in the log file."""
    log.error("%s", line, exc_info=True, extra={"file_only": True})
    if verbose:
        import traceback

        traceback.print_exc()
    print(line, file=sys.stderr)
