"""Sources are only read, for real: a query that writes fails before it runs, and the data afterwards is unchanged.

SQLite: a real file opened read-only (URI ``mode=ro``, ``query_only``) with an authorizer that
refuses everything but reads (ATTACH, VACUUM INTO, PRAGMA, writes, temp tables). PostgreSQL:
the throwaway server of tests/pg.py; the query runs in a read-only transaction.
"""

from __future__ import annotations

import sqlite3

import pytest
from helpers import make_frame, sha
from pg import postgres  # noqa: F401 - the session fixture
from test_sources import pg_table

from retraining.errors import SourceError
from retraining.sources import SourceSpec, read_table

SQLITE_WRITES = [
    "VACUUM INTO 'copy.db'",
    "ATTACH DATABASE 'attached.db' AS a",
    "ATTACH 'file:attached.db?mode=rwc' AS a",
    "DELETE FROM features",
    "DELETE FROM features RETURNING *",
    "UPDATE features SET target = 1 RETURNING *",
    "INSERT INTO features SELECT * FROM features RETURNING *",
    "DROP TABLE features",
    "CREATE TABLE t2 AS SELECT * FROM features",
    "CREATE TEMP TABLE t2 AS SELECT * FROM features",
    "PRAGMA journal_mode = WAL",
    "PRAGMA user_version = 7",
    "VACUUM",
    "SELECT load_extension('x')",
    "REINDEX",
    "ANALYZE",
]


@pytest.mark.parametrize("sql", SQLITE_WRITES)
def test_a_sqlite_query_that_writes_fails_and_changes_no_file(tmp_path, sql):
    db = tmp_path / "d.db"
    frame = make_frame(50)
    with sqlite3.connect(db) as conn:
        frame.to_sql("features", conn, index=False)
    conn.close()
    before = sha(db), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SourceError, match=r"the query (failed|returned no columns)") as err:
        read_table(SourceSpec(f"sqlite:///{db}", query=sql))
    assert "\n" not in str(err.value)
    assert (sha(db), sorted(p.name for p in tmp_path.iterdir())) == before  # no copy.db, no attached.db, no -wal
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT count(*), sum(target) FROM features").fetchone() == (50, int(frame.target.sum()))
        assert check.execute("PRAGMA user_version").fetchone() == (0,)
    check.close()


def test_sqlite_reads_still_work_with_ctes_functions_and_joins(tmp_path):
    db = tmp_path / "d.db"
    with sqlite3.connect(db) as conn:
        make_frame(80).to_sql("features", conn, index=False)
    conn.close()
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
        "SELECT f.*, lower(f.c1) AS c1_low, abs(f.x1) AS ax FROM features f JOIN n ON n.i = 1 ORDER BY customer_id"
    )
    table = read_table(SourceSpec(f"sqlite:///{db}", query=sql))
    assert len(table.frame) == 80 and (table.frame["ax"] >= 0).all()


PG_WRITES = [
    "DELETE FROM ro_features RETURNING *",
    "UPDATE ro_features SET target = 1 - target RETURNING *",
    "INSERT INTO ro_features SELECT * FROM ro_features RETURNING *",
    "DROP TABLE ro_features",
    "CREATE TABLE ro_copy AS SELECT * FROM ro_features",
    "WITH gone AS (DELETE FROM ro_features RETURNING *) SELECT * FROM gone",
    "SELECT * FROM ro_features FOR UPDATE",
]


@pytest.mark.parametrize("sql", PG_WRITES)
def test_a_postgres_query_that_writes_fails_in_a_read_only_transaction(postgres, sql):  # noqa: F811
    frame = make_frame(60)
    pg_table(postgres, "ro_features", frame)
    with pytest.raises(SourceError, match="read-only transaction") as err:
        read_table(SourceSpec(postgres.url(), query=sql))
    assert "\n" not in str(err.value)
    assert f"{len(frame)},{int(frame.target.sum())}" in postgres.psql("SELECT count(*) || ',' || sum(target) FROM ro_features")
    assert " 0\n" in postgres.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'ro_copy'")
