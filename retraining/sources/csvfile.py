"""CSV files as people really have them: the dialect is detected, numbers stay numbers.

- Delimiter: ``,`` ``;`` tab or ``|``, whichever splits the first lines into the same
  number of fields (``--csv-delimiter`` overrules).
- Encoding: a UTF-8 or UTF-16 byte-order mark is honoured; UTF-8 is the default; bytes
  that are not UTF-8 are read as a legacy code page (cp1251 for Cyrillic text, else
  cp1252), and a note says which (``--encoding`` overrules).
- Decimal mark: ``,`` when the file is ``;``-separated (what Excel writes where the
  comma is the decimal mark), else ``.`` (``--decimal`` overrules).
- A text column whose values nearly all parse as numbers is read as numbers (with a
  warning naming the column when some do not); one that is mostly numbers is warned about
  by name, never made a category silently.

The common case (UTF-8, comma) goes straight to pandas' pyarrow engine, as fast as before.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.errors import DataError
from retraining.fsutil import sha256_file
from retraining.sources.base import Table, check_column_names, first_line, in_background

log = logging.getLogger(__name__)

DELIMITERS = (",", ";", "\t", "|")
_HEAD = 1 << 16
_SAMPLE = 300
# ASCII digits only: pandas reads no other digits as numbers ("༠" is a Unicode digit, not a number to it)
_NUMBER = re.compile(r"^\s*[-+]?(?=[.,]?\d)(\d[\d\s\u00a0\u202f]*)?([.,]\d*)?([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf|infinity)\s*$", re.IGNORECASE | re.ASCII)
NEARLY_ALL = 0.95  # share of values that must be numbers for a text column to be read as numbers
MOSTLY = 0.5  # above this share (but below NEARLY_ALL) the column is kept as text, with a warning
_LEGACY = ("cp1251", "cp1252", "latin-1")


def read_csv_table(
    path: Path, delimiter: str | None = None, decimal: str | None = None, encoding: str | None = None, text_columns: tuple[str, ...] = ()
) -> Table:
    """Read one CSV file; raise :class:`DataError` with one line when it cannot be used.

    ``text_columns`` (e.g. ids like "00042") come every cell as written, as by
    :func:`read_text_column`, but from the same read where they can (no cell that reads as missing).
    """
    head = _head(path)
    notes: list[str] = []
    enc, note = (encoding, None) if encoding else detect_encoding(head)
    if note:
        notes.append(note)
    if b"\x00" in head and not enc.lower().startswith("utf-16"):
        raise DataError(f"{path}: is not a text CSV (binary content). Export the data as a CSV text file, or pass a .parquet file.")
    text = head.decode("utf-8-sig" if enc == "utf-8" else enc, errors="replace")
    lines = text.splitlines()
    lines = (lines[:-1] if len(head) == _HEAD and len(lines) > 1 else lines)[:50]  # the last line of a full sample may be cut
    first = lines[0] if lines else ""
    if not first.strip():
        raise DataError(f"{path}: the first line is blank; the file must start with a header row.")
    sep = delimiter or detect_delimiter(lines)
    names = [h.strip() for h in next(csv.reader(io.StringIO(first), delimiter=sep))]
    if len(names) < 2:
        raise DataError(
            f"{path}: found a single column {first[:60]!r}; this does not look like a CSV "
            "with features and a target (expected a header row separated by commas, semicolons or tabs; or pass --csv-delimiter)."
        )
    check_column_names(names, f"{path}: the header row")
    dec = decimal or ("," if sep == ";" else ".")
    fingerprint = in_background(sha256_file, path)
    raw = next(csv.reader(io.StringIO(first), delimiter=sep))
    types = {r: "str" for r, n in zip(raw, names, strict=False) if n in text_columns}
    frame, enc = _read_any(path, sep, enc, dec, len(names), notes, types)
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no data rows.")
    for name in (c for c in text_columns if c in frame.columns):
        frame[name] = _as_written(frame[name], path, name, delimiter, encoding)
    notes.extend(fix_numeric_text(frame, dec, skip=text_columns))
    if sep != "," or dec != ".":
        notes.insert(0, f"read with delimiter {_show(sep)} and decimal mark {dec!r}")
    return Table(frame=frame, fingerprint=fingerprint(), display=str(path), kind="csv", notes=notes)


def read_text_column(path: Path, column: str, delimiter: str | None = None, encoding: str | None = None) -> pd.Series:
    """One column of a CSV file exactly as written (every cell as text, nothing parsed), e.g. ids like "00000"."""
    head = _head(path)
    enc = encoding or detect_encoding(head)[0]
    lines = head.decode("utf-8-sig" if enc == "utf-8" else enc, errors="replace").splitlines()[:50]
    sep = delimiter or detect_delimiter(lines)
    fast = _arrow_text_column(path, column, sep, lines[0] if lines else "") if enc == "utf-8" else None
    if fast is not None:
        return fast
    try:
        frame = pd.read_csv(
            path, sep=sep, encoding="utf-8-sig" if enc == "utf-8" else enc, dtype=str, keep_default_na=False, usecols=lambda name: str(name).strip() == column
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be parsed as CSV ({first_line(exc)}).") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if column not in frame.columns:
        raise DataError(f"{path}: no column {column!r}.")
    return frame[column]


def _as_written(col: pd.Series, path: Path, name: str, delimiter: str | None, encoding: str | None) -> pd.Series:
    """``col`` if the read kept every cell as text; else the column read again as text (a cell that read as missing, e.g. "" or "NA")."""
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object and not col.isna().any():
        return col
    log.debug("%s: column %r has cells read as missing; reading it again as written", path, name)
    again = read_text_column(path, name, delimiter, encoding)
    if len(again) != len(col):
        raise DataError(f"{path}: column {name!r} reads as {len(again)} cells as text but the table has {len(col)} rows; check quoting and blank lines.")
    return pd.Series(again.to_numpy(), index=col.index, name=name)


def _arrow_text_column(path: Path, column: str, sep: str, header: str) -> pd.Series | None:
    """:func:`read_text_column` with pyarrow's reader (the common case: UTF-8); None when it cannot (then pandas' C reader)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    raw = [name for name in next(csv.reader(io.StringIO(header), delimiter=sep), []) if name.strip() == column]
    if len(raw) != 1:
        return None
    try:
        options = pcsv.ConvertOptions(include_columns=raw, column_types={raw[0]: pa.string()}, strings_can_be_null=False)
        table = pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=sep), convert_options=options)
    except (pa.ArrowInvalid, OSError, ValueError):  # quoted line breaks, ragged rows: the C reader copes or says why
        return None
    return table.column(0).to_pandas().rename(column)


def _show(sep: str) -> str:
    return {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(sep, repr(sep))


def _head(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: file not found. Pass the training data with --data PATH.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder with no Parquet files, not a CSV file. Pass the CSV file (or a Parquet folder) with --data PATH.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty. Export the training data as a CSV with a header row.")
    with path.open("rb") as fh:
        return fh.read(_HEAD)


def detect_encoding(head: bytes) -> tuple[str, str | None]:
    """The reader's encoding for a file starting with ``head``, and a note when it is not UTF-8."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", "read as UTF-16 (byte-order mark)"
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) == _HEAD and exc.start >= len(head) - 4:
            return "utf-8", None  # a character cut at the end of the sample
        legacy = guess_legacy(head)
        return legacy, f"not valid UTF-8 (byte {exc.start}); read as {legacy}. Pass --encoding NAME if that is wrong"
    return "utf-8", None  # not "utf-8-sig": pyarrow skips a BOM itself, and any other name makes it transcode in Python


def guess_legacy(data: bytes) -> str:
    """cp1251 when the non-ASCII bytes form words (Cyrillic text), else cp1252 (accents in Latin words)."""
    runs, run = [], 0
    for b in data:
        if b >= 0x80:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    order = _LEGACY if runs and sum(runs) / len(runs) >= 2.0 else _LEGACY[1:]
    for enc in order:
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    return "latin-1"


def detect_delimiter(lines: list[str]) -> str:
    """The delimiter that gives the header most fields and splits the other lines alike."""
    sample = [ln for ln in lines if ln.strip()][:20]

    def score(d: str) -> tuple[bool, int, bool]:
        counts = [len(row) for row in csv.reader(sample, delimiter=d)]
        same = sum(c == counts[0] for c in counts) >= 0.9 * len(counts)
        return (counts[0] > 1 and same, counts[0], d == ",")

    return max(DELIMITERS, key=score)


def _read_any(path: Path, sep: str, enc: str, dec: str, n_fields: int, notes: list[str], types: dict | None = None) -> tuple[pd.DataFrame, str]:
    """pyarrow first, pandas' C reader if it fails; a legacy encoding when "UTF-8" bytes later in the file are not."""
    try:
        frame = _read(path, sep, enc, dec, "pyarrow", types)
    except UnicodeDecodeError as exc:  # a Python codec (a legacy encoding) met a byte it has no character for
        raise DataError(f"{path}: cannot be decoded as {enc} ({first_line(exc)}). Pass the right --encoding NAME.") from exc
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        log.debug("pyarrow CSV reader failed (%s); retrying with pandas' C reader", exc)
        try:
            frame = _read(path, sep, enc, dec, "c", types)
        except UnicodeDecodeError as exc2:
            if enc != "utf-8":
                raise DataError(f"{path}: cannot be decoded as {enc} ({first_line(exc2)}). Pass the right --encoding NAME.") from exc2
            return _legacy(path, sep, dec, n_fields, notes, _around(path, exc2), "", types)
        except (ValueError, pd.errors.ParserError) as exc2:
            raise DataError(f"{path}: cannot be parsed as CSV ({first_line(exc2)}). Check quoting and that every row has {n_fields} fields.") from exc2
    bad = _undecoded(frame) if enc == "utf-8" else None
    if bad is not None:
        return _legacy(path, sep, dec, n_fields, notes, bad[1], f" in column {bad[0]!r}", types)
    return frame, enc


def _legacy(path: Path, sep: str, dec: str, n_fields: int, notes: list[str], sample: bytes, where: str, types: dict | None) -> tuple[pd.DataFrame, str]:
    legacy = guess_legacy(sample)
    notes.append(f"not valid UTF-8{where}; read as {legacy}. Pass --encoding NAME if that is wrong")
    return _read_any(path, sep, legacy, dec, n_fields, notes, types)


def _undecoded(frame: pd.DataFrame) -> tuple[str, bytes] | None:
    """A column pyarrow kept as raw bytes because it is not UTF-8, and a sample of its non-ASCII values."""
    for name, dtype in frame.dtypes.items():
        if dtype.kind != "O" or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype)):
            continue
        col = frame[name]
        first = col.first_valid_index()
        if first is not None and isinstance(col[first], bytes):
            values = [v for v in col.dropna().iloc[:5000] if isinstance(v, bytes) and max(v, default=0) >= 0x80]
            return str(name), b"\n".join(values[:500])
    return None


def _around(path: Path, exc: UnicodeDecodeError) -> bytes:
    """The bytes that failed to decode (pandas reports offsets within a block), for guessing the code page."""
    data = exc.object if isinstance(exc.object, bytes) else b""
    sample = data[max(0, exc.start - 4096) : exc.start + 4096]
    if not sample:
        with path.open("rb") as fh:
            sample = fh.read(1 << 20)
    return sample


def _read(path: Path, sep: str, enc: str, dec: str, engine: str, types: dict | None = None) -> pd.DataFrame:
    kwargs: dict = {"sep": sep, "engine": engine, "encoding": enc}
    if types:
        kwargs["dtype"] = types
    if dec != ".":
        kwargs["decimal"] = dec
    if engine == "c":
        kwargs["low_memory"] = False
    return pd.read_csv(path, **kwargs)


# -- numbers written as text -------------------------------------------------------------------
def fix_numeric_text(frame: pd.DataFrame, decimal: str, skip: tuple[str, ...] = ()) -> list[str]:
    """Read text columns that are (nearly) all numbers as numbers, in place; return notes naming them (not the ``skip`` ones)."""
    notes = []
    for name, dtype in frame.dtypes.items():
        if dtype.kind in "iufcbmM" or isinstance(dtype, pd.CategoricalDtype) or name in skip:
            continue  # numbers, booleans, dates, categories
        col = frame[name]
        if _looks_numeric(_ends(col, 10)) == 0 or _looks_numeric(_spread(col, _SAMPLE)) < MOSTLY:
            continue  # quick tests on values spread over the column: most text columns stop here
        present = col.dropna()
        parsed = as_numbers(col, decimal)
        bad = present[parsed[present.index].isna()]
        share = 1 - len(bad) / len(present)
        examples = ", ".join(repr(str(v)) for v in pd.unique(bad.astype(str))[:3])
        if share >= NEARLY_ALL:
            frame[name] = parsed
            if len(bad):
                notes.append(f"warning: column {name!r}: {len(bad)} of {len(present)} values are not numbers ({examples}); read as numbers, those as missing")
            else:
                notes.append(f"column {name!r}: numbers written as text, read as numbers")
        else:
            notes.append(
                f"warning: column {name!r}: {share:.0%} of the values are numbers but {len(bad)} are not ({examples}); "
                f"it is used as a category. Fix those values, or leave it out with --drop-columns {name}"
            )
    return notes


def as_numbers(col: pd.Series, decimal: str) -> pd.Series:
    """Text -> float64 (NaN where not a number); spaces as thousands separators are allowed."""
    text = col.astype("string").str.strip().str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _ends(col: pd.Series, n: int) -> list:
    """The first, middle and last ``n`` values (slices are cheap; a sorted column shows its numbers at one end)."""
    arr, mid = col.array, len(col) // 2
    return arr[:n].tolist() + arr[mid : mid + n].tolist() + arr[-n:].tolist()


def _spread(col: pd.Series, n: int) -> list:
    """Up to ``n`` values taken evenly from the whole column (so sorted data is sampled fairly)."""
    if len(col) <= n:
        return col.array.tolist()
    return col.array.take(np.linspace(0, len(col) - 1, n).astype(np.int64)).tolist()


def _looks_numeric(values: list) -> float:
    """Share of the present ``values`` that look like numbers (each distinct value tested once)."""
    counts = Counter(v for v in values if isinstance(v, str))
    total = sum(counts.values())
    return sum(n for v, n in counts.items() if _NUMBER.match(v)) / total if total else 0.0
