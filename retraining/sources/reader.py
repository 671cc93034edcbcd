"""The one entry of the sources room: :func:`read_table` picks the reader for a spec."""

from __future__ import annotations

import logging
from pathlib import Path

from retraining.errors import SourceError
from retraining.sources.base import SourceSpec, Table, is_url, resolve_location, unsupported_url
from retraining.sources.parquet import is_parquet, read_parquet

log = logging.getLogger(__name__)


def read_table(spec: SourceSpec | str | Path, text_columns: tuple[str, ...] = (), log_notes: bool = True) -> Table:
    """Read ``spec`` into a :class:`Table`; raise DataError/SourceError/UsageError with one line.

    ``text_columns`` (ids like "00042") are never read as numbers: a CSV file's keep every cell
    as written; a Parquet file's or a database's keep their own type. ``log_notes=False`` leaves
    the notes on how the table was read to the caller (:func:`log_table_notes`), which logs them
    once it knows the data is usable: bad input is one error line, not warnings and then an error.
    """
    if not isinstance(spec, SourceSpec):
        spec = SourceSpec(str(spec))
    spec.check()
    if spec.is_sql:
        from retraining.sources.sql import read_sql

        table = read_sql(resolve_location(spec.location), spec.query, spec.table)
    elif is_url(spec.location):  # never read as a path: Path("mysql://x") would be "mysql:/x"
        raise SourceError(unsupported_url(spec.location))
    else:
        path = Path(spec.location)
        if is_parquet(path):
            table = read_parquet(path)
        else:
            from retraining.sources.csvfile import read_csv_table

            table = read_csv_table(path, spec.delimiter, spec.decimal, spec.encoding, text_columns)
    if table.kind != "csv":
        from retraining.sources.csvfile import fix_numeric_text

        table.notes.extend(fix_numeric_text(table.frame, ".", skip=text_columns))
    if log_notes:
        log_table_notes(table)
    return table


def log_table_notes(table: Table) -> None:
    """Log how ``table`` was read: "warning: ..." notes name a column that may not be what the user meant."""
    for note in table.notes:
        if note.startswith("warning: "):
            log.warning("%s: %s", table.display, note.removeprefix("warning: "))
        else:
            log.info("%s: %s", table.display, note)
