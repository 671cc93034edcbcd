"""What every source shares: the spec, the table, locations and passwords, column names.

The one entry is :func:`retraining.sources.read_table`, which takes a :class:`SourceSpec` (or a plain path)
and returns a :class:`Table`: the frame, a fingerprint for the unchanged-data skip, the
location as it may be shown (any password masked), the kind and notes on how it was read.

::

    SourceSpec("featured_dataset.csv")                                   # CSV: dialect detected
    SourceSpec("export.csv", delimiter=";", decimal=",", encoding="cp1251")
    SourceSpec("features.parquet") / SourceSpec("features/")             # Parquet file or directory
    SourceSpec("postgresql://ml@db/prod", table="features")              # SQL (password from PGPASSWORD)
    SourceSpec("env:RETRAIN_DATABASE_URL", query="SELECT ... ORDER BY id")
    SourceSpec("sqlite:///data/features.db", table="features")

Fingerprints: a CSV or a single Parquet file is the sha256 of its bytes; a Parquet
directory hashes each file's bytes in sorted relative-path order; a SQL result is hashed
in a canonical form (see :mod:`retraining.sources.sql`). The layer never writes anything.
Errors: :class:`~retraining.errors.DataError` for files (exit 2),
:class:`~retraining.errors.SourceError` for databases (exit 3), each one line.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from retraining.errors import DataError, UsageError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

SQL_SCHEMES = ("postgresql", "postgres", "sqlite")
ENV_PREFIX = "env:"
DEFAULT_URL_VARIABLE = "RETRAIN_DATABASE_URL"
_DELIMITER_NAMES = {"comma": ",", ",": ",", "semicolon": ";", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "pipe": "|", "|": "|"}
_SHOW_COLUMNS = 30


@dataclass(frozen=True)
class SourceSpec:
    """Where the data is and how to read it; ``None`` means detect."""

    location: str
    query: str | None = None
    table: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "location", str(self.location))
        if self.delimiter is not None:  # "tab", "semicolon", ... as well as the character itself
            d = self.delimiter
            object.__setattr__(self, "delimiter", _DELIMITER_NAMES.get(d.lower() if len(d) > 1 else d, d))

    @property
    def is_sql(self) -> bool:
        return is_database_url(self.location)

    def check(self) -> None:
        """Raise :class:`UsageError` for options that do not fit together."""
        if self.query and self.table:
            raise UsageError("--query and --table exclude each other; give one of them.")
        if self.is_sql:
            if not (self.query or self.table):
                raise UsageError(f"{mask_url(resolve_location(self.location))}: a database needs --table NAME or --query 'SELECT ...'.")
            given = [f for f, v in (("--csv-delimiter", self.delimiter), ("--decimal", self.decimal), ("--encoding", self.encoding)) if v]
            if given:
                raise UsageError(f"{', '.join(given)} apply to CSV files, not to a database.")
        elif self.query or self.table:
            raise UsageError(f"--query and --table need a database URL in --data (postgresql://... or sqlite:///path), not {mask_url(self.location)!r}.")
        if self.delimiter is not None and self.delimiter not in _DELIMITER_NAMES.values():
            raise UsageError(f"--csv-delimiter {self.delimiter!r} is not one of: comma, semicolon, tab, pipe.")
        if self.decimal is not None and self.decimal not in (".", ","):
            raise UsageError(f"--decimal must be '.' or ',' (got {self.decimal!r}).")
        if self.encoding is not None:
            import codecs

            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise UsageError(f"--encoding {self.encoding!r} is not an encoding Python knows (e.g. utf-8, cp1251, cp1252, latin-1).") from None


@dataclass
class Table:
    """One table, whichever source it came from."""

    frame: pd.DataFrame
    fingerprint: str
    display: str
    kind: str
    notes: list[str] = field(default_factory=list)


# -- locations and passwords ----------------------------------------------------------
SUPPORTED_URLS = "postgresql://user@host/db (or postgres://), sqlite:///path/to/file.db, env:NAME (a variable holding such a URL)"


def is_url(location: str) -> bool:
    """``scheme://...`` with a scheme of two letters or more (``C://x`` is a Windows path): never a file path."""
    head, sep, _ = str(location).partition("://")
    return bool(sep) and len(head) > 1 and head[0].isalpha() and all(c.isalnum() or c in "+.-" for c in head)


def unsupported_url(location: str) -> str:
    """The one line for a URL whose scheme no reader here takes."""
    scheme = location.split("://", 1)[0]
    return f"--data {mask_url(location)}: {scheme}:// is not supported; supported: {SUPPORTED_URLS}, or a CSV/Parquet file path."


def is_database_url(location: str) -> bool:
    """True for ``postgresql://...``, ``sqlite:///...`` (driver suffixes allowed) and ``env:NAME``."""
    if location.startswith(ENV_PREFIX):
        return True
    scheme = location.split("://", 1)[0].split("+", 1)[0].lower() if "://" in location else ""
    return scheme in SQL_SCHEMES


def resolve_location(location: str) -> str:
    """``env:NAME`` -> the URL in environment variable NAME (so no password is on the command line)."""
    if not location.startswith(ENV_PREFIX):
        return location
    name = location[len(ENV_PREFIX) :] or DEFAULT_URL_VARIABLE
    value = os.environ.get(name, "").strip()
    if not value:
        from retraining.errors import SourceError

        raise SourceError(f"--data {location}: environment variable {name} is not set; set it to the database URL (postgresql://user@host/db).")
    if not is_database_url(value) or value.startswith(ENV_PREFIX):
        from retraining.errors import SourceError

        raise SourceError(f"--data {location}: environment variable {name} does not hold a database URL (postgresql://... or sqlite:///...).")
    return value


@dataclass(frozen=True)
class DatabaseURL:
    """A database URL split once, on the raw string (no URL parser's idea of where the password ends).

    ``shown`` is the URL with the password masked; ``password`` the decoded password (for
    scrubbing driver errors); ``problem`` says what is wrong when the password (or the user)
    holds an unencoded ``@``, ``:`` or ``/``, which libpq would read as part of the host.
    """

    raw: str
    shown: str
    password: str | None
    problem: str | None


def parse_database_url(url: str) -> DatabaseURL:
    """``scheme://user:password@host/...`` -> :class:`DatabaseURL`; the userinfo ends at the last ``@`` before any ``?``."""
    import re
    from urllib.parse import unquote

    if "://" not in url:
        return DatabaseURL(url, url, None, None)
    scheme, rest = url.split("://", 1)
    head, query_sep, query = rest.partition("?")
    at = head.rfind("@")
    password = problem = None
    if at >= 0:
        user, colon, raw_password = head[:at].partition(":")
        if colon:
            password = unquote(raw_password) or None
            head = f"{user}:***{head[at:]}"
        odd = [c for c in "@:/" if c in raw_password] + [c for c in "@/" if c in user]
        if odd:
            where = "password" if any(c in raw_password for c in odd) else "user name"
            codes = ", ".join(f"{c!r} as {quote_char(c)}" for c in dict.fromkeys(odd))
            problem = (
                f"the {where} holds an unencoded {' and '.join(map(repr, dict.fromkeys(odd)))}; percent-encode it ({codes}) or give the password in PGPASSWORD"
            )
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", query)
    head = re.sub(r"(?i)(password=)[^&]*", r"\1***", head)
    return DatabaseURL(url, f"{scheme}://{head}{query_sep}{query}", password, problem)


def quote_char(char: str) -> str:
    return "%" + format(ord(char), "02X")


def url_password(url: str) -> str | None:
    """The password in ``scheme://user:password@host/...`` (decoded), or None."""
    return parse_database_url(url).password


def mask_url(url: str) -> str:
    """``postgresql://ml:secret@db/prod`` -> ``postgresql://ml:***@db/prod`` (also any ``password=`` query value).

    Works on the raw string: a password with an unencoded ``@``, ``:`` or ``/`` is masked whole.
    """
    return parse_database_url(url).shown


def mask_argv(argv: list[str]) -> list[str]:
    """A command line as it may be logged: every database URL in it with the password masked."""
    return [mask_url(a) if "://" in a and is_database_url(a) else a for a in argv]


def scrub(text: str, url: str) -> str:
    """Remove the URL's password (raw and percent-encoded) from ``text``, e.g. a driver's error."""
    from urllib.parse import quote

    parsed = parse_database_url(url)
    text = text.replace(url, parsed.shown)
    if parsed.password:
        raw = url.split("://", 1)[-1].partition("?")[0]
        raw = raw[: raw.rfind("@")].partition(":")[2]  # as typed (encoded or not)
        for form in sorted({parsed.password, quote(parsed.password, safe=""), raw} - {""}, key=len, reverse=True):
            text = text.replace(form, "***")
    return text


def files_fingerprint(root: Path, files: list[Path]) -> str:
    """sha256 of one file's bytes; for a directory, of each file's relative path and sha256, in order."""
    from retraining.fsutil import sha256_file

    if len(files) == 1 and files[0] == root:
        return sha256_file(root)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(root).as_posix()}\0{sha256_file(f)}\n".encode())
    return digest.hexdigest()


def arrow_to_frame(arrow: pa.Table) -> tuple[pd.DataFrame, list[str]]:
    """Arrow -> pandas with types the rest of the run understands.

    Decimals become float64 (numbers, not categories); dates become timestamps;
    dictionary columns stay pandas categoricals.
    """
    import pyarrow as pa

    notes: list[str] = []
    columns = []
    for name, col in zip(arrow.column_names, arrow.columns, strict=True):
        t = col.type
        if isinstance(t, pa.ExtensionType):  # e.g. ADBC's PostgreSQL numeric: opaque, stored as text
            kind = getattr(t, "type_name", t.extension_name)
            col = pa.chunked_array([c.storage for c in col.chunks], type=t.storage_type)
            t = col.type
            if kind == "numeric" and pa.types.is_string(t):
                col = col.cast(pa.float64())
                notes.append(f"column {name!r}: numeric values read as float64")
                t = col.type
        if pa.types.is_decimal(t):
            col = col.cast(pa.float64())
            notes.append(f"column {name!r}: decimal values read as float64")
        elif pa.types.is_date(t):
            col = col.cast(pa.timestamp("ms"))
        columns.append(col)
    frame = pa.table(columns, names=[str(n) for n in arrow.column_names]).to_pandas()
    check_column_names(list(frame.columns), "data")
    return frame, notes


def in_background(fn, *args):
    """Run ``fn(*args)`` in a thread (hashing overlaps the read: both release the GIL); call the result to join."""
    import threading

    box: dict = {}

    def work() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller, raised there
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


# -- column names in messages -----------------------------------------------------------------
def column_list(names, limit: int = _SHOW_COLUMNS) -> str:
    """Every name, or the first ``limit`` and ``... (M in all)``."""
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def suggest(name: str, names) -> str:
    """`` Did you mean 'y'?`` for the closest name, or an empty string."""
    names = [str(n) for n in names]
    lowered = {n.lower(): n for n in names}
    match = lowered.get(name.strip().lower()) or next(iter(difflib.get_close_matches(name, names, n=1, cutoff=0.6)), None)
    if match is None:
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        match = lowered[close[0]] if close else None
    return f" Did you mean {match!r}?" if match and match != name else ""


def check_column_names(names: list[str], where: str) -> None:
    """Refuse duplicate or empty column names."""
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    if dupes:
        raise DataError(f"{where}: duplicate column names {column_list(dupes)}; give every column a unique name.")
    if any(not n.strip() for n in names):
        raise DataError(f"{where}: a column has an empty name (column {[n.strip() for n in names].index('') + 1}); name every column.")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
