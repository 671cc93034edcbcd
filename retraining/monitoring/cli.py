"""``monitor.py``'s command line: watch the production model on real outcomes.

    python monitor.py --outcomes SOURCE --id-column ID --label-column LABEL [--log PATH ...] [--json]
    python monitor.py --history

A thin layer over :func:`retraining.monitoring.monitor.run`: parse, read the outcomes
(anything ``retrain_model.py`` reads), run, notify, print.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from retraining.cli.main import add_output_arguments, guarded_main, setup_logging
from retraining.cli.notify import add_notify_arguments, notifier_from_args
from retraining.cli.options import add_source_arguments, spec_from_args
from retraining.cli.parser import OneLineParser
from retraining.errors import ExitCode, UsageError, exit_code_epilog

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
EXIT_CODES = (
    ExitCode.OK,
    ExitCode.INTERNAL,
    ExitCode.BAD_INPUT,
    ExitCode.DAMAGED_STATE,
    ExitCode.BUSY,
    ExitCode.SOURCE_UNREACHABLE,
    ExitCode.TIMED_OUT,
    ExitCode.INTERRUPTED,
)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="monitor.py",
        description="Join outcomes to the production prediction log: realized and estimated AUC per version, decay, drift, bake comparison and rollback.",
        epilog=exit_code_epilog(EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("outcomes")
    g.add_argument("--outcomes", metavar="SOURCE", help="the outcomes: a CSV or Parquet file or folder, or a database URL with --query/--table")
    g.add_argument("--id-column", metavar="NAME", help="entity id column of the outcomes (the one serve.py was given)")
    g.add_argument("--label-column", metavar="NAME", help="outcome column")
    g.add_argument("--positive-class", metavar="VALUE", help="label value that means 1 (if not 0/1, yes/no, ...)")
    add_source_arguments(g)
    f = p.add_argument_group("files")
    f.add_argument(
        "--log",
        action="append",
        type=Path,
        metavar="PATH",
        help="prediction log (its rotated files beside it are read too; repeatable; default: logs/predictions.jsonl, serve.py's)",
    )
    f.add_argument("--models-dir", default="models", metavar="DIR", help="the registry; the monitor keeps its state in DIR/monitoring (default: %(default)s)")
    f.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
    f.add_argument("--salt", help="the A/B assignment salt, if an A/B test used --salt (default: each experiment's id)")
    a = p.add_argument_group("judging")
    a.add_argument("--check-settings", metavar="FILE", help='JSON check-settings file; the monitor reads its "monitor" object (docs/monitoring.md)')
    roll = a.add_mutually_exclusive_group()
    roll.add_argument("--auto-rollback", action="store_true", default=None, help="roll a deploy that does worse live back to the previous version")
    roll.add_argument("--no-auto-rollback", dest="auto_rollback", action="store_false", help="never roll back; a blocking finding names the command")
    o = p.add_argument_group("results")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.add_argument("--history", action="store_true", help="show realized next to holdout AUC per version (from the last run) and exit")
    o.add_argument("--no-page", action="store_true", help="do not write DIR/monitoring/monitor.html")
    add_notify_arguments(p.add_argument_group("notifications"))
    fleet = p.add_argument_group("fleet (docs/fleet.md)")
    fleet.add_argument("--config", metavar="FLEET.toml", help="a fleet: the model's folders (and its own log) come from the file")
    fleet.add_argument("--model", metavar="NAME", help="with --config: monitor this model")
    fleet.add_argument("--all", action="store_true", help="with --config: monitor every model (--json: keyed by model)")
    add_output_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(("retraining",), args.verbose, args.quiet)
    return guarded_main(lambda: fleet_program(args) if args.config else program(args), log=log, verbose=args.verbose)


def fleet_program(args: argparse.Namespace) -> int:
    """``--config F --model NAME`` (that model's folders and log) or ``--all`` (each model in turn; one failing stops none)."""
    import contextlib
    import io

    from retraining.cli import retrain as retrain_cli
    from retraining.errors import RetrainError
    from retraining.fleet.config import load_fleet

    parser = retrain_cli.strict_parser()
    options = retrain_cli.setting_options(parser)
    fleet = load_fleet(args.config, options)
    if bool(args.model) == bool(args.all):
        raise UsageError(f"--config {args.config}: add --model NAME (one of {', '.join(fleet.models)}) or --all.")
    names = list(fleet.models) if args.all else [fleet.model(args.model).name]
    results, codes = {}, {}
    for name in names:
        spec = fleet.models[name]
        settings, _unknown = parser.parse_known_args(spec.argv(options))
        own = argparse.Namespace(**{**vars(args), "models_dir": spec.models_dir, "production": spec.production})
        own.log = args.log or [Path(settings.log_dir) / "predictions.jsonl"]
        if not args.all:
            return program(own)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                codes[name] = program(own)
            results[name] = json.loads(out.getvalue()) if args.json else out.getvalue()
        except RetrainError as exc:  # this model's problem: the others are still monitored
            codes[name], results[name] = exc.exit_code, {"error": str(exc)}
    print(json.dumps(results, indent=2, default=float, ensure_ascii=False) if args.json else "\n".join(f"== {n} ==\n{r}" for n, r in results.items()))
    return max(codes.values(), default=0)


def program(args: argparse.Namespace) -> int:
    from retraining.registry import Registry

    registry = Registry(args.models_dir, args.production)
    if args.history:
        return _history(registry, args.json)
    if not args.outcomes or not args.id_column or not args.label_column:
        raise UsageError("monitor.py needs --outcomes SOURCE --id-column ID --label-column LABEL (or --history).")
    settings = _settings(args)
    notifier = notifier_from_args(args, logger=log)
    from retraining.monitoring.monitor import Request, run

    if "://" not in args.outcomes and not Path(args.outcomes).exists():
        raise UsageError(f"{args.outcomes}: no such file or folder; pass the outcomes with --outcomes SOURCE (a CSV or Parquet file, or a database URL).")
    given, where, source = _outcomes(args)
    req = Request(
        args.log or [Path("logs", "predictions.jsonl")],
        given,
        where,
        args.id_column,
        args.label_column,
        args.positive_class,
        args.salt,
        settings,
        not args.no_page,
        source,
    )
    report = run(registry, req)
    _notify(notifier, report)
    print(json.dumps(report, indent=2, default=float) if args.json else format_report(report))
    return ExitCode.OK


def _outcomes(args: argparse.Namespace) -> tuple:
    """The outcome table (a database's, read now) or a function that reads the file when needed; where it is; :func:`outcome_source`."""
    from retraining.errors import DataError
    from retraining.sources import read_table

    spec = spec_from_args(args, location=args.outcomes)
    source = outcome_source(args, spec)

    def read():
        table = read_table(spec, text_columns=(args.id_column,))
        if table.kind == "csv" and args.id_column in table.frame.columns:  # ids as written ("00042" stays "00042"): docs/ab-testing.md
            table.frame[args.id_column] = written_ids(table.frame[args.id_column])
        if source is not None and outcome_source(args, spec) != source:
            raise DataError(f"{table.display}: changed while monitor.py read it; rerun when the outcomes are written.")
        return table

    if source is None:
        table = read()
        return table.frame, table.display, None
    return (lambda: read().frame), str(Path(spec.location)), source


OUTCOME_READ = 1  # bump when how the outcomes are read changes: a rerun must not take a join of outcomes read otherwise


def outcome_source(args: argparse.Namespace, spec) -> str | None:
    """A digest of the outcome file's (or folder's files') bytes and of every flag that reads them; None for a database.

    Equal digests mean the same table, so a rerun with the same file takes the last run's
    join without parsing it (:meth:`retraining.monitoring.analysis.Outcomes.fingerprint`).
    A database's rows may change behind the same URL: it is always read.
    """
    import hashlib

    from retraining.fsutil import sha256_file
    from retraining.sources import is_url

    if spec.is_sql or is_url(spec.location) or spec.location.startswith("env:"):
        return None
    path = Path(spec.location)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    head = (OUTCOME_READ, str(path), args.id_column, args.label_column, args.positive_class, args.salt, spec.delimiter, spec.decimal, spec.encoding)
    digest = hashlib.blake2b(repr(head).encode(), digest_size=16)
    for f in files:
        digest.update(f"{f.relative_to(path) if f != path else f.name}:{sha256_file(f)}\n".encode())
    return digest.hexdigest()


def written_ids(cells: pd.Series) -> pd.Series:
    """:func:`retraining.data.keys.written_id_text` of CSV id cells; only the cells it can change go through it.

    A cell of ASCII letters and digits only has no surrounding space and no fraction to
    drop, so it is its own canonical text (the common case, checked in Arrow at C speed);
    every other cell (spaces, ``42.0``, ``-3``, empty, non-ASCII) takes the rule itself.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from retraining.data.keys import written_id_text

    text = pa.array(cells, from_pandas=True)
    if pa.types.is_string(text.type) or pa.types.is_large_string(text.type):
        plain = pc.fill_null(pc.ascii_is_alnum(text), False)
        if pc.all(plain).as_py():
            return cells.astype("str")
        rest = np.flatnonzero(~plain.to_numpy(zero_copy_only=False))
        out = cells.astype("str")
        out.iloc[rest] = written_id_text(cells.iloc[rest]).to_numpy()
        return out
    return written_id_text(cells)


def _settings(args: argparse.Namespace):
    from dataclasses import replace

    from retraining.guard.findings import CheckSettings
    from retraining.monitoring.settings import MonitorSettings

    s = MonitorSettings.from_json(CheckSettings.load(args.check_settings).monitor, args.check_settings) if args.check_settings else MonitorSettings()
    return s if args.auto_rollback is None else replace(s, auto_rollback=args.auto_rollback)


def _notify(notifier, report: dict) -> None:
    from retraining.notify import monitor_message

    for action in report["actions"]:
        if action["action"] == "rollback":
            notifier.notify_promotion(action["event"])
    for f in report["findings"]:
        event = {"decay": "decay", "drift": "drift"}.get(f["name"], "rollback" if f["severity"] == "block" else None)
        if event:
            head, lines = monitor_message(f, report["production"])
            notifier.notify_text(event, head, lines)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"


def format_report(report: dict) -> str:
    lines = [f"production: {report['production']}"]
    c = report.get("counts") or {}
    if c:
        lines.append(f"outcomes: {c.get('labelled')} labelled, {c.get('matched')} matched a prediction (match rate {c.get('match_rate')})")
    lines += [f"note: {n}" for n in report.get("notes", [])]
    lines.append(f"{'version':<10} {'rows':>9} {'outcomes':>9} {'realized AUC (95% CI)':>28} {'estimated':>9} {'holdout':>8}")
    for v in report["versions"]:
        ci = f"{_fmt(v['realized_auc'])} ({_fmt(v['ci_low'])}-{_fmt(v['ci_high'])})"
        lines.append(f"{v['version']:<10} {v['rows']:>9} {v['rows_with_outcome']:>9} {ci:>28} {_fmt(v['estimated_auc']):>9} {_fmt(v.get('holdout_auc')):>8}")
    lines += [f"{f['severity'].upper()} {f['name']}: {f['message']}" for f in report["findings"]]
    lines += [f"ACTION {a['action']}: {a['from']} -> {a['to']}" for a in report["actions"]]
    lines.append("retrain recommended: " + ("; ".join(report["reasons"]) if report["retrain_recommended"] else "no"))
    if report.get("page"):
        lines.append(f"page: {report['page']}")
    return "\n".join(lines)


def _history(registry, as_json: bool) -> int:
    from retraining.monitoring.store import Store

    state = Store(registry.models_dir).load()
    rows = (state.last or {}).get("versions", [])
    if as_json:
        print(json.dumps([{k: v for k, v in r.items() if k != "days"} for r in rows], indent=2))
        return ExitCode.OK
    if not rows:
        print("no monitor results yet: run monitor.py --outcomes SOURCE --id-column ID --label-column LABEL")
        return ExitCode.OK
    print(f"{'version':<10} {'created':<21} {'holdout AUC':>11} {'realized AUC':>12} {'95% CI':>15} {'outcomes':>9} {'estimated':>9}")
    for r in rows:
        ci = f"{_fmt(r['ci_low'])}-{_fmt(r['ci_high'])}"
        print(
            f"{r['version']:<10} {r.get('created_at') or '-'!s:<21} {_fmt(r.get('holdout_auc')):>11} {_fmt(r['realized_auc']):>12} "
            f"{ci:>15} {r['rows_with_outcome']:>9} {_fmt(r['estimated_auc']):>9}"
        )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
