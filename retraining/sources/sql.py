"""Read a table or a query's result from PostgreSQL (ADBC, Arrow-native) or SQLite (stdlib).

``--data postgresql://user@host:5432/db --table features`` or ``--query "SELECT ..."``.
The password may be in the URL, in ``PGPASSWORD`` (libpq reads it), or the whole URL in an
environment variable (``--data env:RETRAIN_DATABASE_URL``); it is masked in everything
shown or written, and scrubbed from driver errors. The connection is only read from, for
real: PostgreSQL runs the query in a read-only transaction (``default_transaction_read_only``,
so a write fails before it runs; the transaction is rolled back, never committed), and SQLite
opens the file read-only with an authorizer that refuses everything but reads (ATTACH and
VACUUM INTO, which write other files, PRAGMA, writes, temp tables).

The fingerprint for the unchanged-data skip is a sha256 over the column names and types
and the sorted 64-bit hashes of the rows: the same rows give the same fingerprint in any
order. A stable ``ORDER BY`` is still advised: CatBoost's model depends on row order, so
only an ordered result gives the same model from the same data.

Why ADBC for PostgreSQL: measured against pandas over SQLAlchemy + psycopg in
bench/bench_sources.py (figures in bench/README.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from retraining.errors import SourceError, SourceUnreachableError
from retraining.sources.base import Table, arrow_to_frame, column_list, first_line, parse_database_url, scrub, suggest

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
_READ_ONLY_OPTION = "-c default_transaction_read_only=on"
_HASH_KEY = "retrain-sources1"  # 16 bytes; changing it changes every SQL fingerprint (one retrain)
_INSTALL = "pip install -r requirements-sql.txt"
# SQLSTATE classes that mean "come back later": connection exception, insufficient resources
# (too many connections), operator intervention (shutting down, starting up).
_RETRY_LATER_STATES = ("08", "53", "57P")
# What libpq says when the server is not there (yet): ADBC gives no SQLSTATE for a failed connect.
_RETRY_LATER_WORDS = (
    "connection refused",
    "timeout expired",
    "timed out",
    "too many clients",
    "remaining connection slots",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "server closed the connection",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "temporary failure in name resolution",
    "terminating connection due to administrator command",
)


def read_sql(url: str, query: str | None, table: str | None) -> Table:
    """Run ``query`` (or ``SELECT * FROM table``) against ``url``; raise :class:`SourceError` on any failure."""
    parsed = parse_database_url(url)  # once: the masked form, the password to scrub, what is wrong with it
    shown = parsed.shown
    if parsed.problem:  # before any driver sees it: libpq would take part of the password for the host and look it up
        raise SourceError(f"{shown}: {parsed.problem}.")
    display = f"{shown} table {table}" if table else f"{shown} query"
    sql = query if query else f"SELECT * FROM {quote_table(table or '')}"
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        frame, notes = _read_sqlite(url, sql, shown, table)
    else:
        frame, notes = _read_postgres(url, sql, shown, table)
    if len(frame) == 0:
        raise SourceError(f"{display}: the {'table' if table else 'query'} returned no rows; nothing to train on.")
    if len(frame.columns) < 2:
        raise SourceError(f"{display}: the result has a single column {str(frame.columns[0])!r}; select the features and the target.")
    return Table(frame=frame, fingerprint=frame_fingerprint(frame), display=display, kind="sql", notes=notes)


def quote_table(name: str) -> str:
    """``schema.table`` -> ``"schema"."table"`` (each part quoted, so any name is safe)."""
    parts = name.split(".")
    if not name.strip() or any(not p for p in parts) or len(parts) > 3:
        raise SourceError(f"--table {name!r} is not a table name (NAME or SCHEMA.NAME).")
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


_PG_TABLES = (
    "SELECT CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END "
    "FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
)
_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"


def _failed(shown: str, table: str | None, detail: str, names: list[str] | None) -> str:
    """The line for a failed read: for ``--table``, the database's tables and views and the closest name."""
    if not table:
        return f"{shown}: the query failed ({detail})."
    if names is None or table.lower() in {n.lower() for n in names}:
        return f"{shown}: reading table {table!r} failed ({detail})."
    listed = f"its tables and views: {column_list(names)}" if names else "it has no tables or views"
    return f"--table {table!r}: no such table or view in {shown}; {listed}.{suggest(table, names)}"


def _read_postgres(url: str, sql: str, shown: str, table: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    try:
        import adbc_driver_postgresql.dbapi as pgdb
    except ImportError:
        raise SourceError(f"{shown}: reading PostgreSQL needs adbc-driver-postgresql; {_INSTALL}.") from None
    uri = _libpq_uri(url)
    try:
        conn = pgdb.connect(uri)
    except pgdb.Error as exc:
        error = SourceUnreachableError if _retry_may_help(exc) else SourceError
        raise error(f"{shown}: cannot connect ({_detail(exc, url)}). Check the host, port, user and password (PGPASSWORD).") from None
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            arrow = cur.fetch_arrow_table()
        conn.rollback()
    except pgdb.Error as exc:
        error = SourceUnreachableError if _retry_may_help(exc) else SourceError
        raise error(_failed(shown, table, _detail(exc, url), _pg_tables(conn, pgdb.Error) if table else None)) from None
    finally:
        conn.close()
    return arrow_to_frame(arrow)


def _pg_tables(conn, error: type[Exception]) -> list[str] | None:
    """The tables and views a user can name (None if even that cannot be read)."""
    try:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(_PG_TABLES)
            return [str(r[0]) for r in cur.fetchall()]
    except error:  # only a hint for the message: the read's own error is what is raised
        return None


def _retry_may_help(exc: BaseException) -> bool:
    """True when the server did not answer or said to come back later (exit 7), not a refused login or a bad query (3)."""
    state = str(getattr(exc, "sqlstate", None) or "")
    text = str(exc).lower()
    return state.startswith(_RETRY_LATER_STATES) or any(words in text for words in _RETRY_LATER_WORDS)


def _libpq_uri(url: str) -> str:
    """Drop a SQLAlchemy driver suffix (``postgresql+psycopg``), bound the connect time, make every transaction read-only.

    ``default_transaction_read_only`` is set by the server at the session's start, before the
    query: a DELETE, DROP, CREATE or ``DELETE ... RETURNING`` fails before it runs
    ("cannot execute ... in a read-only transaction") instead of being rolled back afterwards.
    """
    rest = url.split("://", 1)[1]
    uri = "postgresql://" + rest
    if "connect_timeout=" not in rest:
        uri += ("&" if "?" in uri else "?") + f"connect_timeout={CONNECT_TIMEOUT_S}"
    read_only = quote(f"{_READ_ONLY_OPTION} ", safe="")
    if re.search(r"[?&]options=", uri):  # the user's own server options stay, after ours
        return re.sub(r"([?&]options=)", lambda m: m.group(1) + read_only, uri, count=1)
    return uri + "&options=" + read_only.removesuffix("%20")


def _detail(exc: BaseException, url: str) -> str:
    """The driver's message in one line, without a password, libpq's prefixes or the echoed query."""
    text = " ".join(str(exc).replace("\t", " ").split("\n")[:2]).strip()
    for prefix in ("IO: ", "INVALID_ARGUMENT: ", "[libpq] ", "Failed to connect: ", "Failed to prepare query: ", "Failed to execute query: "):
        text = text.replace(prefix, "")
    text = " ".join(text.replace("ERROR:", "").replace("FATAL:", "").split())
    return scrub(text, url)[:300] or type(exc).__name__


def _read_sqlite(url: str, sql: str, shown: str, table: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    rest = url.split("://", 1)[1]
    path = Path(rest[1:] if rest.startswith("/") else rest)  # sqlite:///rel.db, sqlite:////abs.db, sqlite:///C:/x.db
    if not path.is_file():
        raise SourceError(f"{shown}: no SQLite database at {str(path)!r}. Use sqlite:///relative/path.db or sqlite:////absolute/path.db.")
    try:
        conn = sqlite3.connect(f"file:{quote(path.resolve().as_posix())}?mode=ro", uri=True)  # read-only: never creates or changes a file
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise SourceError(f"{shown}: cannot open the database ({first_line(exc)}).") from None
    conn.set_authorizer(_sqlite_reads_only)  # after the pragma: from here on only reads are authorized
    try:
        cur = conn.execute(sql)
        names = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "")  # a writer held the file longer than the busy timeout
        locked = name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or str(exc).startswith(("database is locked", "database table is locked"))
        if "not authorized" in str(exc):
            hint = "; a source is only read: one SELECT (or WITH ... SELECT), no ATTACH, VACUUM, PRAGMA or writes"
            raise SourceError(f"{shown}: the query failed ({first_line(exc)}{hint}).") from None
        names = None if locked or not table else [r[0] for r in _sqlite_quietly(conn, _SQLITE_TABLES)]
        raise (SourceUnreachableError if locked else SourceError)(_failed(shown, table, first_line(exc), names)) from None
    finally:
        conn.close()
    if not names:
        raise SourceError(f"{shown}: the query returned no columns; use a SELECT.")
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=True), []


def _sqlite_quietly(conn, sql: str) -> list:
    import sqlite3

    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


# What a query that only reads asks SQLite to authorize; anything else (ATTACH, which VACUUM INTO also
# asks for, a transaction, PRAGMA, any write, temp tables) is refused before it runs.
_SQLITE_READ_ACTIONS = frozenset(getattr(sqlite3, name) for name in ("SQLITE_SELECT", "SQLITE_READ", "SQLITE_FUNCTION", "SQLITE_RECURSIVE"))
_SQLITE_REFUSED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


def _sqlite_reads_only(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """SQLite authorizer: allow reading tables and calling ordinary functions, refuse everything else."""
    if action not in _SQLITE_READ_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_REFUSED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the column names and types and the sorted row hashes (row order does not matter)."""
    rows = np.sort(pd.util.hash_pandas_object(frame, index=False, hash_key=_HASH_KEY).to_numpy())
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()
