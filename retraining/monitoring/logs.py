"""Reading the production prediction log incrementally: only what was appended since the last run.

A log is ``predictions.jsonl`` plus its rotated files ``predictions-YYYYMMDD-HHMMSS.jsonl``
beside it (all are read, :func:`retraining.ab.logfiles.log_files`). A file is known by the sha256 of its first line, not by its
name, so a rotation (a rename) does not make the monitor read it again: the state keeps,
per first line, how many bytes were read (:class:`retraining.monitoring.store.State`).

The lines are the A/B log's (:data:`retraining.ab.predlog.LOG_FIELDS`). Production traffic
is every served line; a line of experiment ``production[:SALT]``, variant ``previous`` and not
served is the bake shadow of the production line with the same ``request_id``. A/B shadow
lines of a challenger (not served) are not production and are skipped.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.ab.logfiles import log_files as files_of_log
from retraining.ab.predlog import LOG_FIELDS, PREVIOUS, parse_hex64, production_salt
from retraining.errors import DataError

log = logging.getLogger(__name__)
_PARSE = None  # pyarrow's parse options with the log's schema, made on first use
PIECE_BYTES = 1 << 27  # parse at most 128 MiB of log text at a time


@dataclass
class LogFile:
    """One file of the log: where, its identity (first line's sha256), what is new in it."""

    path: Path
    head: str
    start: int  # bytes already read by earlier runs
    end: int  # bytes complete now (up to the last newline)


def log_files(paths: list[Path]) -> list[Path]:
    """Each given log with its rotated files (``NAME-*.jsonl`` beside ``NAME.jsonl``), oldest first."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out += sorted(p for p in path.glob("*.jsonl") if p.is_file())
            continue
        found = files_of_log(path)
        out += found
        if not found:
            raise DataError(f"{path}: no prediction log there; start serve.py with --id-column ID (it logs every prediction) or pass --log PATH.")
    return list(dict.fromkeys(out))


def plan(files: list[Path], offsets: dict[str, int]) -> list[LogFile]:
    """What to read of each file, given the bytes read before (``offsets`` by first-line sha)."""
    planned = []
    for path in files:
        with path.open("rb") as fh:
            first = fh.readline()
            if not first:
                continue
            if not first.endswith(b"\n"):
                raise DataError(
                    f"{path}: its only line is torn (no newline at byte {len(first)}); a writer was killed mid-line. Remove the file or end the line."
                )
            head = hashlib.sha256(first).hexdigest()
            start = offsets.get(head, 0)
            size = _size_between_appends(path)
            if size < start:
                raise DataError(f"{path}: shorter ({size} bytes) than when the monitor last read it ({start}); a log is only appended to. Restore it.")
            fh.seek(max(size - 1, 0))
            if fh.read(1) != b"\n":
                raise DataError(
                    f"{path}: the last line is torn (no newline at the end of the file, {size} bytes); a writer was killed mid-line. "
                    "Cut the file after its last newline, then rerun."
                )
        planned.append(LogFile(path, head, start, size))
    return planned


def _size_between_appends(path: Path) -> int:
    """The file's size while no writer appends (writers hold ``PATH.lock`` for each batch)."""
    lock = path.with_name(path.name + ".lock")
    if not lock.exists():
        return path.stat().st_size
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(lock), timeout=30):
            return path.stat().st_size
    except Timeout as exc:
        raise DataError(f"{path}: a writer has held {lock} for 30 s; if none is running, delete the lock file.") from exc


def read_new(planned: list[LogFile]) -> pd.DataFrame:
    """The new production lines of every planned file, one compact frame (see :func:`compact`)."""
    frames = []
    for f in planned:
        with f.path.open("rb") as fh:
            fh.seek(f.start)
            left = f.end - f.start
            carry = b""
            while left > 0:
                block = carry + fh.read(min(PIECE_BYTES, left))
                left = f.end - fh.tell()
                cut = block.rfind(b"\n") + 1
                block, carry = block[:cut], block[cut:]
                if block:
                    frames.append(compact(_parse(block, f.path), f.path))
    return pd.concat(frames, ignore_index=True) if frames else empty()


def empty() -> pd.DataFrame:
    import pyarrow as pa

    types = {"score": pa.float64(), "served": pa.bool_()}
    return compact(pa.table({k: pa.array([], types.get(k, pa.string())) for k in LOG_FIELDS}), Path("-"))


def _schema():
    import pyarrow as pa

    types = {"score": pa.float64(), "served": pa.bool_(), "share": pa.float64()}
    return pa.schema([(k, types.get(k, pa.string())) for k in LOG_FIELDS])


def _parse(block: bytes, path: Path):
    import pyarrow as pa
    import pyarrow.json as pj

    global _PARSE
    _PARSE = _PARSE or pj.ParseOptions(explicit_schema=_schema(), unexpected_field_behavior="ignore")

    try:
        table = pj.read_json(pa.BufferReader(block), read_options=pj.ReadOptions(block_size=1 << 24, use_threads=True), parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path}: not a JSON-lines prediction log ({str(exc).splitlines()[0]}).") from exc
    missing = [f for f in LOG_FIELDS if f not in table.column_names]
    if missing:
        raise DataError(f"{path}: not a prediction log of serve.py or ab_test.py (fields missing: {', '.join(missing)}).")
    return table


def compact(table, path: Path) -> pd.DataFrame:
    """One row per production prediction: entity, experiment (the salt), version, sha, score, day, and the bake shadow's score.

    ``table`` is the log's lines as an Arrow table (or a frame); the work stays in Arrow.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    served_mask = pc.fill_null(pc.cast(table.column("served"), pa.bool_()), False)
    served = table.filter(served_mask)
    experiments = pc.unique(table.column("experiment")).to_pylist()
    production = [e for e in experiments if e is not None and production_salt(str(e)) is not None]
    is_shadow = pc.and_(
        pc.and_(pc.invert(served_mask), pc.is_in(table.column("experiment"), pa.array(production, pa.string()))), pc.equal(table.column("variant"), PREVIOUS)
    )
    shadow = table.filter(pc.fill_null(is_shadow, False))
    day = pc.cast(pc.cast(pc.utf8_slice_codeunits(served.column("time"), 0, 10), pa.date32()), pa.int32())
    out = pd.DataFrame(
        {
            "entity": parse_hex64(served.column("entity"), path),
            "experiment": _category(served.column("experiment")),
            "model_version": _category(served.column("model_version")),
            "model_sha256": _category(served.column("model_sha256")),
            "score": served.column("score").to_numpy().astype(np.float32),
            "day": day.to_numpy().astype(np.int32),
        }
    )
    out["previous_version"] = pd.Categorical([None] * len(out))
    out["previous_sha256"] = pd.Categorical([None] * len(out))
    out["previous_score"] = np.full(len(out), np.nan, dtype=np.float32)
    if shadow.num_rows:
        index = pd.Series(np.arange(len(out)), index=served.column("request_id").to_numpy(zero_copy_only=False))
        at = index.reindex(shadow.column("request_id").to_numpy(zero_copy_only=False)).to_numpy()
        ok = ~np.isnan(at)
        if (~ok).any():
            log.warning("%s: %d bake-shadow lines have no production line with their request_id; left out.", path, int((~ok).sum()))
        rows = at[ok].astype(np.int64)
        out["previous_version"] = _set_at(len(out), rows, shadow.column("model_version").to_numpy(zero_copy_only=False)[ok])
        out["previous_sha256"] = _set_at(len(out), rows, shadow.column("model_sha256").to_numpy(zero_copy_only=False)[ok])
        out.loc[rows, "previous_score"] = shadow.column("score").to_numpy().astype(np.float32)[ok]
    return out


def _category(column) -> pd.Categorical:
    encoded = column.combine_chunks().dictionary_encode() if column.num_chunks else column.dictionary_encode()
    return pd.Categorical.from_codes(encoded.indices.to_numpy(zero_copy_only=False), categories=encoded.dictionary.to_pylist())


def _set_at(n: int, rows: np.ndarray, values: np.ndarray) -> pd.Categorical:
    col = np.full(n, None, dtype=object)
    col[rows] = values
    return pd.Categorical(col)
