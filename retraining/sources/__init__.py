"""Every way training data comes in, as one table: CSV files, Parquet, SQL databases.

May import: the ground modules (errors, fsutil). Nothing here writes anything.

The room's public names; :func:`read_table` is the one entry::

    SourceSpec("featured_dataset.csv")                                   # CSV: dialect detected
    SourceSpec("export.csv", delimiter=";", decimal=",", encoding="cp1251")
    SourceSpec("features.parquet") / SourceSpec("features/")             # Parquet file or directory
    SourceSpec("postgresql://ml@db/prod", table="features")              # SQL (password from PGPASSWORD)
    SourceSpec("env:RETRAIN_DATABASE_URL", query="SELECT ... ORDER BY id")
    SourceSpec("sqlite:///data/features.db", table="features")

Modules: ``base`` (spec, table, locations and passwords, column names), ``reader``
(:func:`read_table`), ``csvfile`` (CSV dialects), ``parquet``, ``sql`` (SQLite, PostgreSQL).
"""

from retraining.sources.base import SourceSpec, Table, column_list, is_database_url, is_url, mask_argv, mask_url, suggest
from retraining.sources.reader import log_table_notes, read_table

__all__ = ["SourceSpec", "Table", "column_list", "is_database_url", "is_url", "log_table_notes", "mask_argv", "mask_url", "read_table", "suggest"]
