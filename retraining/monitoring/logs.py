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
from retraining.monitoring import fastlog
from retraining.monitoring.aggregates import category_codes, stack, union

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
    buffer = bytearray(min(PIECE_BYTES, max((f.end - f.start for f in planned), default=0)))  # one buffer for every piece
    for f in planned:
        with f.path.open("rb") as fh:
            at = f.start
            while at < f.end:  # pieces of whole lines; the next piece starts after the last newline
                fh.seek(at)
                size = fh.readinto(memoryview(buffer)[: min(len(buffer), f.end - at)])
                block = buffer
                cut = buffer.rfind(b"\n", 0, size) + 1
                if cut == 0:  # one line longer than a piece
                    block = bytes(buffer[:size]) + fh.read(f.end - fh.tell())
                    cut = len(block)
                frames.append(compact(decode(block, f.path, cut), f.path))  # nothing of the buffer outlives compact()
                at += cut
    return stack(frames) if frames else empty()


def empty() -> pd.DataFrame:
    return compact(Lines.of_runs([]), Path("-"))


@dataclass
class Lines:
    """The log's lines as columns: ``served``; experiment, variant, model version and sha as categoricals;
    the entity hash and the day (read for served lines only), the score; the request ids per piece (read when needed)."""

    served: np.ndarray
    cats: dict[str, pd.Categorical]
    entity: np.ndarray
    day: np.ndarray
    score: np.ndarray
    request_id: list

    @classmethod
    def of_runs(cls, pieces: list[Lines]) -> Lines:
        if not pieces:
            none = pd.Categorical([])
            return cls(np.zeros(0, bool), dict.fromkeys(_CATS, none), np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0), [])
        cats = {c: union([p.cats[c] for p in pieces]) for c in _CATS}
        cat = np.concatenate
        return cls(
            cat([p.served for p in pieces]),
            cats,
            cat([p.entity for p in pieces]),
            cat([p.day for p in pieces]),
            cat([p.score for p in pieces]),
            [r for p in pieces for r in p.request_id],
        )

    def request_ids(self, rows: np.ndarray) -> np.ndarray:
        parts = [r.to_numpy(zero_copy_only=False) if hasattr(r, "to_numpy") else np.char.decode(r, "ascii").astype(object) for r in self.request_id]
        return np.concatenate(parts)[rows]


_CATS = ("experiment", "variant", "model_version", "model_sha256")


def decode(block: bytes | bytearray, path: Path, size: int | None = None) -> Lines:
    """The whole lines ``block[:size]`` as :class:`Lines`: the writers' fixed-width runs by :mod:`.fastlog`, the rest by pyarrow's JSON reader."""
    pieces = []
    for a, b, run in fastlog.spans(block, size):
        pieces.append(_of_table(_parse(memoryview(block)[a:b], path), path) if run is None else _of_run(run))
    return Lines.of_runs(pieces)


def _of_run(run: fastlog.Run) -> Lines:
    n, c = run.n, run.constants
    cats = {k: pd.Categorical.from_codes(np.zeros(n, np.int8), categories=pd.Index([c[k]], dtype=object)) for k in _CATS}
    return Lines(np.full(n, c["served"]), cats, run.entities, np.full(n, c["day"], np.int32), run.scores, [run.request_ids])


def _of_table(table, path: Path) -> Lines:
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pc.fill_null(pc.cast(table.column("served"), pa.bool_()), False)
    served = mask.to_numpy(zero_copy_only=False).astype(bool)
    entity = np.zeros(len(served), np.uint64)
    entity[served] = parse_hex64(table.column("entity").filter(mask), path)
    day = np.zeros(len(served), np.int32)
    day[served] = _days(table.filter(mask), path)
    cats = {k: _category(table.column(k)) for k in _CATS}
    return Lines(served, cats, entity, day, table.column("score").to_numpy().astype(float), [table.column("request_id")])


def _days(table, path: Path) -> np.ndarray:
    """The day (days since 1970-01-01) of each line's ``time``; DataError naming the first line whose date is missing or impossible."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_slice_codeunits(table.column("time"), 0, 10)
    try:
        days = pc.cast(pc.cast(text, pa.date32()), pa.int32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        days = None
    if days is None or days.null_count:
        values = table.column("time").to_pylist()
        bad = next((i for i, v in enumerate(values) if not _is_date(v)), 0)
        request = table.column("request_id")[bad].as_py()
        raise DataError(
            f"{path}: the line with request_id {request!r} has time {values[bad]!r}, not a date (YYYY-MM-DD...); "
            "the line is damaged or not written by serve.py or ab_test.py. Correct or delete that line."
        )
    return days.to_numpy(zero_copy_only=False).astype(np.int32)


def _is_date(value) -> bool:
    import datetime as dt
    import re

    try:
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)[:10]) is not None and dt.date.fromisoformat(str(value)[:10]) is not None
    except ValueError:
        return False


def _schema():
    import pyarrow as pa

    types = {"score": pa.float64(), "served": pa.bool_(), "share": pa.float64()}
    return pa.schema([(k, types.get(k, pa.string())) for k in LOG_FIELDS])


def _parse(block, path: Path):
    import pyarrow as pa
    import pyarrow.json as pj

    global _PARSE
    _PARSE = _PARSE or pj.ParseOptions(explicit_schema=_schema(), unexpected_field_behavior="ignore")

    try:
        table = pj.read_json(pa.BufferReader(pa.py_buffer(block)), read_options=pj.ReadOptions(block_size=1 << 24, use_threads=True), parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path}: not a JSON-lines prediction log ({str(exc).splitlines()[0]}).") from exc
    missing = [f for f in LOG_FIELDS if f not in table.column_names]
    if missing:
        raise DataError(f"{path}: not a prediction log of serve.py or ab_test.py (fields missing: {', '.join(missing)}).")
    return table


def compact(lines: Lines, path: Path) -> pd.DataFrame:
    """One row per production prediction: entity, experiment (the salt), version, sha, score, day, and the bake shadow's score."""
    exp_codes, exp_names = category_codes(lines.cats["experiment"])
    production = [k for k, e in enumerate(exp_names) if production_salt(e) is not None]
    var_codes, var_names = category_codes(lines.cats["variant"])
    previous = var_names.index(PREVIOUS) if PREVIOUS in var_names else -2
    shadow_rows = np.flatnonzero(~lines.served & np.isin(exp_codes, production) & (var_codes == previous))
    rows = np.flatnonzero(lines.served)
    out = pd.DataFrame(
        {
            "entity": lines.entity[rows],
            "experiment": _take(lines.cats["experiment"], rows),
            "model_version": _take(lines.cats["model_version"], rows),
            "model_sha256": _take(lines.cats["model_sha256"], rows),
            "score": lines.score[rows].astype(np.float32),
            "day": lines.day[rows].astype(np.int32),
        }
    )
    out["previous_version"] = pd.Categorical.from_codes(np.full(len(out), -1, np.int8), categories=pd.Index([], dtype=object))
    out["previous_sha256"] = out["previous_version"]
    out["previous_score"] = np.full(len(out), np.nan, dtype=np.float32)
    if len(shadow_rows):
        _shadow(out, lines, rows, shadow_rows, path)
    return out


def _shadow(out: pd.DataFrame, lines: Lines, rows: np.ndarray, shadow_rows: np.ndarray, path: Path) -> None:
    """The bake shadow's version, sha and score beside the production line with the same request id."""
    index = pd.Series(np.arange(len(out)), index=lines.request_ids(rows))
    wanted = lines.request_ids(shadow_rows)
    if not index.index.is_unique:
        repeated = index.index[index.index.duplicated()]
        clash = pd.Index(wanted)[pd.Index(wanted).isin(repeated)]
        if len(clash):
            raise DataError(
                f"{path}: {len(repeated)} production lines repeat another's request_id, and bake-shadow lines refer to them "
                f"(first: {clash[0]!r}), so their shadow scores cannot be paired; the log holds repeated lines (a file appended twice?). "
                "Remove the repeated lines, or leave that file out of --log."
            )
        index = index[~index.index.duplicated()]  # no shadow line refers to a repeated id: the pairing is the same without them
    at = index.reindex(wanted).to_numpy()
    ok = ~np.isnan(at)
    if (~ok).any():
        log.warning("%s: %d bake-shadow lines have no production line with their request_id; left out.", path, int((~ok).sum()))
    target = at[ok].astype(np.int64)
    for col, src in (("previous_version", "model_version"), ("previous_sha256", "model_sha256")):
        codes = np.full(len(out), -1, np.int32)
        cat = lines.cats[src]
        codes[target] = cat.codes[shadow_rows[ok]]
        out[col] = _drop_unused(pd.Categorical.from_codes(codes, categories=cat.categories))
    score = out["previous_score"].to_numpy().copy()
    score[target] = lines.score[shadow_rows[ok]].astype(np.float32)
    out["previous_score"] = score


def _category(column) -> pd.Categorical:
    import pyarrow.compute as pc

    encoded = column.combine_chunks().dictionary_encode() if column.num_chunks else column.dictionary_encode()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return pd.Categorical.from_codes(codes, categories=pd.Index([str(v) for v in encoded.dictionary.to_pylist()], dtype=object))


def _take(cat: pd.Categorical, rows: np.ndarray) -> pd.Categorical:
    return _drop_unused(pd.Categorical.from_codes(cat.codes[rows], categories=cat.categories))


def _drop_unused(cat: pd.Categorical) -> pd.Categorical:
    """Without the categories no row has (cheaply, by the codes)."""
    codes = cat.codes
    used = np.bincount(codes[codes >= 0], minlength=len(cat.categories)) > 0
    if used.all():
        return cat
    remap = np.full(len(used) + 1, -1, np.int32)
    remap[np.flatnonzero(used)] = np.arange(int(used.sum()))
    return pd.Categorical.from_codes(remap[codes], categories=cat.categories[used])
