"""``ab_test.py``'s command line.

A/B and shadow tests of the production model (champion) against a newer version (challenger).

    python ab_test.py score input.csv --id-column ID [--challenger vX.Y.Z] [--share 0.2] [--shadow] \\
        --out scored.csv --log predictions.jsonl
    python ab_test.py score input.csv --id-column ID --production-only --out scored.csv --log predictions.jsonl
    python ab_test.py analyze --log predictions.jsonl --outcomes outcomes.csv --id-column ID \\
        --label-column LABEL [--promote-winner]

A thin command line over :mod:`retraining.ab.experiment` (assignment and scoring),
:mod:`retraining.ab.analysis` (the analysis) and :mod:`retraining.ab.predlog` (the log).
Split mode: each entity is assigned to an arm by a salted hash of its id (sticky across
calls, processes and days); ``--share`` is the challenger's share. Shadow mode: both
models score every row, only the champion's score is served; the comparison is paired.
``analyze`` joins the log with outcomes, leaves out rows either model trained on, and
recommends: promote the challenger, keep the champion, or keep collecting.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from retraining.ab.analysis import analyze, format_report, promotion_refusal
from retraining.ab.experiment import CHALLENGER, CHAMPION, ABTest, assign_arms, promote_winner
from retraining.ab.predlog import entity_hashes, read_prediction_log
from retraining.cli.main import add_output_arguments, guarded_main, setup_logging
from retraining.cli.parser import OneLineParser, nonblank
from retraining.data.keys import written_id_text
from retraining.errors import DataError, ExitCode, UsageError, exit_code_epilog
from retraining.sources.csvfile import read_text_column

__all__ = ["CHALLENGER", "CHAMPION", "ABTest", "analyze", "assign_arms", "entity_hashes", "main", "read_prediction_log"]

log = logging.getLogger(__name__)
EXIT_CODES = (
    ExitCode.OK,
    ExitCode.INTERNAL,
    ExitCode.BAD_INPUT,
    ExitCode.DAMAGED_STATE,
    ExitCode.BUSY,
    ExitCode.SOURCE_UNREACHABLE,
    ExitCode.NO_SPACE,
    ExitCode.TIMED_OUT,
    ExitCode.INTERRUPTED,
)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ab_test.py", description="A/B and shadow tests of the champion against a challenger version.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in ("score", "analyze"):
        sp = sub.add_parser(
            name,
            help="score rows" if name == "score" else "compare the arms on outcomes",
            epilog=exit_code_epilog(EXIT_CODES),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        common = sp.add_argument_group("experiment")
        common.add_argument("--models-dir", default="models", metavar="DIR", help="the registry (default: %(default)s)")
        common.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
        common.add_argument("--id-column", required=True, type=nonblank, metavar="NAME", help="entity id column")
        common.add_argument("--log", required=True, type=Path, metavar="PATH", help="the JSON-lines prediction log")
        common.add_argument("--salt", type=nonblank, help="assignment salt (default: the experiment id)")
        common.add_argument("--json", action="store_true", help="print the result as JSON")
        (_score_arguments if name == "score" else _analyze_arguments)(sp.add_argument_group(name))
        add_output_arguments(sp, quiet=False)
    return p


def _score_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("input", help="rows to score: a CSV or Parquet file or folder, or a database URL with --query/--table")
    g.add_argument("--champion", type=nonblank, metavar="VERSION", help="default: the production version")
    g.add_argument("--challenger", type=nonblank, metavar="VERSION", help="default: the newest version not in production")
    g.add_argument("--share", type=float, default=0.1, help="challenger's share in split mode (default: %(default)s)")
    g.add_argument("--shadow", action="store_true", help="score every row with both; serve the champion's")
    g.add_argument("--experiment-id", type=nonblank, help="default: CHAMPION-vs-CHALLENGER")
    g.add_argument("--production-only", action="store_true", help="no A/B test: score with the champion alone, log production lines (docs/monitoring.md)")
    g.add_argument("--out", required=True, type=Path, metavar="PATH", help="scored CSV to write")
    from retraining.cli.options import add_source_arguments

    add_source_arguments(g)


def _analyze_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--outcomes", required=True, type=Path, metavar="PATH", help="CSV with the id and label columns")
    g.add_argument("--label-column", required=True, type=nonblank, metavar="NAME", help="outcome column")
    g.add_argument("--positive-class", type=nonblank, metavar="VALUE", help="label value that means 1 (if not 0/1, yes/no, ...)")
    g.add_argument("--experiment", type=nonblank, help="which experiment of the log (needed if it holds several)")
    g.add_argument("--promote-winner", action="store_true", help="promote the challenger if it wins (the registry's locked promotion)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(("retraining",), args.verbose)
    program = _score if args.command == "score" else _analyze
    return guarded_main(lambda: program(args), log=log, verbose=args.verbose)


def _score(args: argparse.Namespace) -> int:
    from retraining.cli.options import spec_from_args
    from retraining.sources import column_list, read_table, suggest

    table = read_table(spec_from_args(args, location=args.input))
    frame = table.frame
    if args.id_column not in frame.columns:
        raise DataError(f"{table.display}: no id column {args.id_column!r}; columns are {column_list(frame.columns)}.{suggest(args.id_column, frame.columns)}")
    if args.production_only:
        return _score_production(args, table, frame)
    test = ABTest(args.models_dir, args.production, args.champion, args.challenger, args.share, args.shadow, args.salt, args.experiment_id, args.log)
    log.info("Scoring %d rows of %s: %s, %s mode", len(frame), table.display, test.experiment_id, "shadow" if args.shadow else f"split {args.share:g}")
    ids = _ids_as_written(table, args.id_column, args)
    out = test.predict(frame, ids, _key_frame(table, args.id_column, ids)).rename(columns={"id": args.id_column})
    _write_csv(out, args.out)
    counts = out["variant"].value_counts().to_dict()
    if args.json:
        summary = {
            "experiment": test.experiment_id,
            "rows": len(out),
            "variants": counts,
            "versions": test.versions,
            "out": str(args.out),
            "log": str(args.log),
        }
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(f"scored {len(out)} rows ({test.experiment_id}, {'shadow' if args.shadow else 'split'}): {counts} -> {args.out}")
    return ExitCode.OK


def _score_production(args: argparse.Namespace, table, frame) -> int:
    where = table.display
    from retraining.ab.production import score_production
    from retraining.registry import Registry

    given = [flag for flag, value in (("--challenger", args.challenger), ("--shadow", args.shadow), ("--experiment-id", args.experiment_id)) if value]
    if given:
        raise UsageError(f"{given[0]} belongs to an A/B test; --production-only scores with one version.")
    registry = Registry(args.models_dir, args.production)
    ids = _ids_as_written(table, args.id_column, args)
    out, version = score_production(registry, frame, ids, args.log, version=args.champion, salt=args.salt, key_frame=_key_frame(table, args.id_column, ids))
    _write_csv(out.rename(columns={"id": args.id_column}), args.out)
    if args.json:
        print(json.dumps({"experiment": "production", "rows": len(out), "version": version, "out": str(args.out), "log": str(args.log)}, indent=2))
    else:
        print(f"scored {len(out)} rows of {where} with production {version} -> {args.out}")
    return ExitCode.OK


def _write_csv(frame, path: Path) -> None:
    from retraining.fsutil import commit_temp, temp_path_beside

    tmp = temp_path_beside(path)  # a reader sees the old file or the new one, never half of one
    try:
        frame.to_csv(tmp, index=False)
        commit_temp(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _is_csv(path: Path) -> bool:
    from retraining.sources.parquet import is_parquet

    return Path(path).is_file() and not is_parquet(Path(path))


def _ids_as_written(table, id_column: str, args: argparse.Namespace):
    """The ids in their canonical text (docs/ab-testing.md): a CSV's cells as written ("00000" stays "00000")."""
    if table.kind != "csv":
        return table.frame[id_column].to_numpy()
    cells = read_text_column(Path(args.input), id_column, getattr(args, "csv_delimiter", None), getattr(args, "encoding", None))
    return written_id_text(cells).to_numpy()


def _key_frame(table, id_column: str, ids):
    """The rows with a CSV's id column as written, as training keys ids now (None: the frame as read)."""
    return table.frame.assign(**{id_column: ids}) if table.kind == "csv" else None


def _analyze(args: argparse.Namespace) -> int:
    from retraining.data.dataset import read_csv
    from retraining.registry import Registry

    if not args.outcomes.is_file():
        raise DataError(f"{args.outcomes}: file not found; pass the outcomes CSV with --outcomes PATH.")
    registry = Registry(args.models_dir, args.production)
    outcomes = read_csv(args.outcomes)
    id_text = written_id_text(read_text_column(args.outcomes, args.id_column)) if args.id_column in outcomes.columns and _is_csv(args.outcomes) else None
    if id_text is not None and len(id_text) != len(outcomes):  # the two readers disagree on the rows: keep the parsed ids
        log.warning("%s: could not read %r as written (%d rows vs %d); ids are matched as parsed", args.outcomes, args.id_column, len(id_text), len(outcomes))
        id_text = None
    report = analyze(
        args.log, outcomes, args.id_column, args.label_column, args.experiment, args.salt, args.positive_class, str(args.outcomes), registry, id_text=id_text
    )
    refusal = promotion_refusal(report) if args.promote_winner else None
    if args.promote_winner and refusal is None:
        report["promoted"] = _promote(registry, report)
    print(json.dumps(report, indent=2, default=float, ensure_ascii=False) if args.json else format_report(report))
    if refusal:
        raise UsageError(refusal)
    if args.promote_winner and not args.json:
        print(f"promoted {report['promoted']['to']} to production" if report["promoted"] else "nothing promoted: the challenger did not win")
    return ExitCode.OK


def _promote(registry, report: dict) -> dict | None:
    """The challenger through the registry's locked promotion, if the analysis says it won."""
    if report["recommendation"]["action"] != "promote challenger":
        return None
    winner = report["versions"][CHALLENGER]
    return promote_winner(registry, winner, reason=f"A/B test {report['experiment']}: winner {winner}: {report['recommendation']['reason']}")


if __name__ == "__main__":
    sys.exit(main())
