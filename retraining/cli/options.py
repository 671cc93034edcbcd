"""Flags that several command lines share: the data source's options."""

from __future__ import annotations

import argparse
from pathlib import Path

from retraining.sources import SourceSpec


def add_source_arguments(group: argparse._ArgumentGroup) -> None:
    """Add --query, --table, --csv-delimiter, --decimal, --encoding to an argparse group."""
    group.add_argument("--query", metavar="SQL", help="with a database URL as the data: read the result of this SELECT (use a stable ORDER BY)")
    group.add_argument("--table", metavar="NAME", help="with a database URL as the data: read this table (schema.name allowed)")
    group.add_argument("--csv-delimiter", metavar="CHAR", help="CSV field separator: comma, semicolon, tab or pipe (default: detected)")
    group.add_argument("--decimal", metavar="CHAR", choices=[".", ","], help="decimal mark in CSV numbers (default: ',' for ;-separated files, else '.')")
    group.add_argument("--encoding", metavar="NAME", help="CSV text encoding, e.g. utf-8, cp1251 (default: UTF-8, else a detected legacy encoding)")


def spec_from_args(args: argparse.Namespace, location: str | Path | None = None) -> SourceSpec:
    """The :class:`SourceSpec` of parsed arguments: ``location`` (default ``args.data``) plus the flags above."""
    spec = SourceSpec(
        location=str(args.data if location is None else location),
        query=getattr(args, "query", None),
        table=getattr(args, "table", None),
        delimiter=getattr(args, "csv_delimiter", None),
        decimal=getattr(args, "decimal", None),
        encoding=getattr(args, "encoding", None),
    )
    spec.check()
    return spec
