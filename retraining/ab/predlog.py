"""The prediction log of A/B tests: entity hashing, line layout, appending, reading.

Public for every writer of the log (``ab_test.py`` and a live server): :func:`entity_hashes`,
:func:`log_predictions` (lay out and append one batch), or its parts
:func:`lay_out_predictions`, :func:`filled` and :func:`append_atomically` (several
batches in one locked write) or :func:`append_predictions`; :func:`read_prediction_log` (one
file) and :func:`read_prediction_logs` (every file of a rotated log), :func:`read_feature_logs`. Production lines (experiment
``production``, docs/monitoring.md): :func:`lay_out_production`, :func:`production_experiment`,
:func:`production_salt`.

One JSON line per prediction (issue #5)::

    {"format":2,"request_id":"<16 hex>-<index hex>","time":"2026-11-28T03:00:00.123Z","experiment":"v1.0.0-vs-v1.1.0",
     "share":0.1,"entity":"<16 hex>","key":"<16 hex>","variant":"champion","model_version":"v1.0.0",
     "model_sha256":"<64 hex>","score":0.123456789,"served":true}

``key`` (format 2) is the row's ledger key as the training of the line's version computed it
(:mod:`retraining.ab.rowkeys`), or null when it cannot be computed; format 1 lines (no
``format``, no ``key``) still read, with every key missing.

Lines are built as fixed-width byte rows with numpy (no Python loop per prediction): a
template per arm, with request index, entity hash and score written into their columns.
JSON allows spaces between tokens, so values of different lengths are padded after their
closing quote. Appends hold a lock file, so concurrent writers never interleave lines.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.ab.entity import entity_hashes  # noqa: F401  (the one entity hash; every writer imports it from here)
from retraining.ab.logfiles import complete_lines, first_bad_line, log_files
from retraining.errors import DataError, TimedOutError

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
PRODUCTION, PREVIOUS = "production", "previous"  # the variants of the production log (docs/monitoring.md)
LOG_FIELDS = ("request_id", "time", "experiment", "share", "entity", "variant", "model_version", "model_sha256", "score", "served")
LOG_FORMAT = 2  # 2: each line carries "format" and "key" (the row's ledger key); 1: neither
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width lower-case hex of unsigned integers (n x width uint8), from their bytes."""
    nbytes = width // 2
    raw = values.astype(f">u{nbytes}").view(np.uint8).reshape(-1, nbytes)  # big-endian bytes
    out = np.empty((len(values), width), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _decimal(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width decimal digits of non-negative integers below 10**9 (n x width uint8)."""
    v = values.astype(np.int32)
    out = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = v % 10 + 48
        v //= 10
    return out


def layout(head, hashes, codes, versions, shas, served, keys=None) -> tuple[np.ndarray, int]:
    """One JSON line per prediction, built as fixed-width rows with numpy (no Python loop).

    Everything but the score is filled in; returns the rows and the score's column, for
    :func:`fill_scores` once the model has scored. ``keys``: per arm, every row's ledger key
    under that arm's version and whether it is known (:func:`retraining.ab.rowkeys.frame_keys`);
    a row takes its arm's; an arm not in it (or None) logs null keys.

    JSON allows spaces between tokens, so values of different lengths are padded after
    their closing quote and every line of a batch has the same width.
    """
    prefix, now, experiment, share = head
    n = len(hashes)
    width = 8 if n <= 1 << 32 else 16
    pad = max(len(json.dumps(versions[a])) for a in versions) + 1
    templates = []
    for arm, is_served in served:
        t = (
            f'{{"format":{LOG_FORMAT},"request_id":"{prefix}-{"#" * width}","time":"{now}","experiment":{json.dumps(experiment)},'
            f'"share":{json.dumps(share)},"entity":"{"$" * 16}","key":{"&" * 18},"variant":{json.dumps(arm):<13},'
            f'"model_version":{json.dumps(versions[arm]):<{pad}},'
            f'"model_sha256":"{shas[arm]}","score":{"%" * 11},"served":{"true " if is_served else "false"}}}\n'
        )
        templates.append(np.frombuffer(t.encode("utf-8"), dtype=np.uint8))
    rows = np.stack(templates)[codes]
    text = templates[0].tobytes().decode("utf-8")
    # by the field names, which no value can contain unescaped (an experiment named "a$b" must not move a column)
    i, e, s = text.index("#"), text.index('"entity":"') + 10, text.index('"score":') + 8
    rows[:, i : i + width] = _hex(np.arange(n, dtype=np.uint32 if width == 8 else np.uint64), width)  # request index, hex
    rows[:, e : e + 16] = _hex(hashes, 16)
    _fill_keys(rows, text.index('"key":') + 6, _pick(keys, [arm for arm, _ in served], codes))
    return rows, s


def _pick(keys: dict | None, arms: list, codes: np.ndarray) -> tuple | None:
    """Each row's (key, known) under the version of the arm its code names."""
    if not keys:
        return None
    values, known = np.zeros(len(codes), np.uint64), np.zeros(len(codes), bool)
    for code, arm in enumerate(arms):
        if arm in keys:
            rows = codes == code
            values[rows], known[rows] = np.asarray(keys[arm][0], np.uint64)[rows], np.asarray(keys[arm][1], bool)[rows]
    return values, known


def fill_keys(lines: list, keys: dict, arms: list, codes: list) -> None:
    """Write each arm's ledger keys into laid-out blocks of lines (whose key :func:`layout` left null).

    ``arms`` and ``codes``: per block, the arm names its codes index and the rows' codes.
    """
    for (rows, _), block_arms, block_codes in zip(lines, arms, codes, strict=True):
        if len(rows):
            _fill_keys(rows, rows[0].tobytes().index(b'"key":') + 6, _pick(keys, block_arms, block_codes))


def _fill_keys(rows: np.ndarray, k: int, keys) -> None:
    """The key column: ``"<16 hex>"`` where the key is known, ``null`` padded with spaces where not."""
    null = np.frombuffer(b"null" + b" " * 14, dtype=np.uint8)
    rows[:, k : k + 18] = null
    if keys is None:
        return
    values, known = np.asarray(keys[0], dtype=np.uint64), np.asarray(keys[1], dtype=bool)
    at = np.flatnonzero(known)
    rows[at, k] = rows[at, k + 17] = ord('"')
    rows[at, k + 1 : k + 17] = _hex(values[at], 16)


def fill_scores(rows: np.ndarray, s: int, scores: np.ndarray) -> np.ndarray:
    """Write ``scores`` (0 to 1, 9 decimals) into the score column of laid-out lines."""
    fixed = np.rint(np.clip(scores, 0, 1) * 1e9).astype(np.int64)
    rows[:, s] = 48 + (fixed // 1_000_000_000)
    rows[:, s + 1] = ord(".")
    rows[:, s + 2 : s + 11] = _decimal(fixed % 1_000_000_000, 9)
    return rows


def lay_out_predictions(
    hashes: np.ndarray,
    codes: np.ndarray,
    *,
    experiment: str,
    share: float | None,
    versions: dict,
    shas: dict,
    shadow: bool = False,
    at: str | None = None,
    keys: dict | None = None,
) -> list:
    """The lines of one batch with the scores left blank, for :func:`append_predictions`.

    ``codes`` are the arms (1 = challenger, :func:`retraining.ab.experiment.assign_arms`);
    ``versions`` and ``shas`` map each arm to its version and model sha256; ``at`` is the
    lines' time (default: now). In shadow mode a second block of lines (the challenger's,
    not served) follows the served block. ``keys``: each arm's ledger keys of the rows (see :func:`layout`).
    """
    now = at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = (uuid.uuid4().hex[:16], now, experiment, None if shadow else share)
    lines = [layout(head, hashes, codes, versions, shas, [(CHAMPION, True), (CHALLENGER, True)], keys)]
    if shadow:
        lines.append(layout(head, hashes, np.ones_like(codes), versions, shas, [(CHAMPION, True), (CHALLENGER, False)], keys))
    return lines


def filled(lines: list, *scores: np.ndarray) -> list[np.ndarray]:
    """Each laid-out block of lines with its scores written in: what :func:`append_atomically` takes."""
    return [fill_scores(rows, at, s) for (rows, at), s in zip(lines, scores, strict=True)]


def append_predictions(path: Path, lines: list, *scores: np.ndarray, durable: bool = False) -> None:
    """Fill each laid-out block of lines with its scores and append them in one locked write."""
    append_atomically(Path(path), filled(lines, *scores), durable=durable)


def log_predictions(
    path: Path, hashes: np.ndarray, codes: np.ndarray, scores: np.ndarray, *, shadow_scores: np.ndarray | None = None, durable: bool = False, **experiment
) -> None:
    """Lay out and append one batch of predictions (``experiment``: see :func:`lay_out_predictions`)."""
    shadow = shadow_scores is not None
    lines = lay_out_predictions(hashes, codes, shadow=shadow, **experiment)
    append_predictions(path, lines, *([scores] if not shadow else [scores, shadow_scores]), durable=durable)


def production_experiment(salt: str | None = None) -> str:
    """The experiment name of production lines: ``production``, or ``production:SALT`` with a salt of one's own."""
    return PRODUCTION if salt in (None, PRODUCTION) else f"{PRODUCTION}:{salt}"


def production_salt(experiment: str) -> str | None:
    """The salt of a production line's entity hash, from its experiment name; None if it is no production line."""
    if experiment == PRODUCTION:
        return PRODUCTION
    return experiment[len(PRODUCTION) + 1 :] if experiment.startswith(PRODUCTION + ":") else None


def lay_out_production(
    hashes: np.ndarray,
    *,
    version: str,
    sha: str,
    salt: str | None = None,
    previous: tuple[str, str] | None = None,
    at: str | None = None,
    keys: dict | None = None,
) -> list:
    """The lines of production predictions with the scores left blank (see :func:`lay_out_predictions`).

    ``previous`` (version, sha256) adds a second block: the previous version's scores of
    the same rows in shadow (``variant`` previous, ``served`` false, the same request ids).
    ``keys``: the ledger keys of the rows per arm, ``production`` and ``previous`` (see :func:`layout`).
    """
    now = at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = (uuid.uuid4().hex[:16], now, production_experiment(salt), None)
    versions = {PRODUCTION: version, PREVIOUS: previous[0] if previous else version}
    shas = {PRODUCTION: sha, PREVIOUS: previous[1] if previous else sha}
    arms = [(PRODUCTION, True), (PREVIOUS, False)]
    codes = np.zeros(len(hashes), np.int8)
    lines = [layout(head, hashes, codes, versions, shas, arms, keys)]
    if previous is not None:
        lines.append(layout(head, hashes, np.ones_like(codes), versions, shas, arms, keys))
    return lines


def feature_sampled(hashes: np.ndarray, rate: float) -> np.ndarray:
    """Which entities the feature log samples: the low 53 bits of the hash, read as a number in [0, 1), below ``rate``.

    By the entity, so a rerun samples the same rows; the low bits, so the sample is independent
    of an A/B assignment (which reads the top 53 bits).
    """
    mask = np.uint64((1 << 53) - 1)
    return (np.asarray(hashes, dtype=np.uint64) & mask).astype(np.float64) / float(1 << 53) < rate


def feature_lines(at: str, version: str, hashes: np.ndarray, names, rows, rate: float) -> np.ndarray:
    """The feature log's lines of the sampled rows (bytes as uint8, for :func:`append_atomically`)::

    {"time": "...Z", "model_version": "v1.2.0", "entity": "<16 hex>", "features": {"x1": 0.5, "c1": "red"}}
    """
    import orjson

    picked = np.flatnonzero(feature_sampled(hashes, rate))
    hexes = _hex(np.asarray(hashes, dtype=np.uint64)[picked], 16)
    opt = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    entities = [h.tobytes().decode() for h in hexes]
    lines = [{"time": at, "model_version": version, "entity": entities[k], "features": dict(zip(names, rows[i], strict=True))} for k, i in enumerate(picked)]
    text = b"".join(orjson.dumps(line, option=opt) for line in lines)
    return np.frombuffer(text, dtype=np.uint8)


def append_atomically(path: Path, blobs: list, durable: bool = False, timeout: float = 60.0) -> None:
    """Append whole batches under a lock, so concurrent writers never interleave lines.

    With ``durable`` the batch is fsynced before the lock is released (slower; survives a
    power cut, not only a crash of this process).
    """
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(path) + ".lock", timeout=timeout):
            _append_blobs(path, blobs, durable)
    except Timeout as exc:
        raise TimedOutError(f"{path}: another writer held {path}.lock for {timeout:g} s; if none is running, delete the lock file.") from exc


def _append_blobs(path: Path, blobs: list, durable: bool) -> None:
    """Append under the caller's lock; a torn last line (a writer killed mid-line, a full disk) is fenced off first.

    The fence is a newline after the torn bytes: they become a line of their own that readers
    skip with a warning, and the batch starts on a line boundary instead of gluing onto them.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                os.write(fd, b"\n")
                log.warning("%s: its last line was torn (a writer stopped mid-line); fenced it off with a newline", path)
        for blob in blobs:
            view = memoryview(np.ascontiguousarray(blob)).cast("B")
            while view:
                view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_prediction_log(path: Path) -> pd.DataFrame:
    """The prediction log as a frame; a clear error naming the first bad line."""
    import pyarrow as pa
    import pyarrow.json as pj

    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: no prediction log there (missing or empty); score something with `ab_test.py score --log {path}` first.")
    skipped = 0
    try:
        table = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 24))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        good, bad = complete_lines(path)
        if not bad or not good:
            raise DataError(f"{path}: {first_bad_line(path) or 'not a JSON-lines prediction log'} ({str(exc).splitlines()[0]}).") from exc
        skipped = len(bad)
        log.warning("%s: skipped %d torn or invalid line(s) (first: line %d); kept the %d complete lines", path, skipped, bad[0], good.count(b"\n"))
        try:
            table = pj.read_json(io.BytesIO(good), read_options=pj.ReadOptions(block_size=1 << 24))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as again:
            raise DataError(f"{path}: not a JSON-lines prediction log ({str(again).splitlines()[0]}).") from again
    missing = [f for f in LOG_FIELDS if f not in table.column_names]
    if missing:
        raise DataError(f"{path}: not a prediction log of ab_test.py (fields missing: {', '.join(missing)}).")
    entity = parse_hex64(table.column("entity").combine_chunks(), path)
    frame = table.select([f for f in LOG_FIELDS if f != "entity"]).to_pandas()
    frame["entity"] = entity
    frame["key"], frame["key_known"], frame["format"] = _read_keys(table, path)
    frame.attrs["skipped_lines"] = skipped  # torn or invalid lines left out (a killed writer, a full disk)
    return frame


def _read_keys(table, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's ledger ``key`` (uint64), whether it has one (format 1 lines and null keys do not), and its format."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    formats = np.ones(n, np.int64)
    if "format" in table.column_names and pa.types.is_integer(table.column("format").type):
        formats = pc.fill_null(table.column("format"), 1).to_numpy().astype(np.int64)
        newest = int(formats.max(initial=1))
        if newest > LOG_FORMAT:
            raise DataError(f"{path}: prediction-log format {newest} is newer than this program reads ({LOG_FORMAT}); upgrade the tool.")
    values, known = np.zeros(n, np.uint64), np.zeros(n, bool)
    if "key" in table.column_names and not pa.types.is_null(table.column("key").type):
        column = table.column("key").combine_chunks()
        known = column.is_valid().to_numpy(zero_copy_only=False)
        values[known] = parse_hex64(column.filter(column.is_valid()), path)
    return values, known, formats


def read_prediction_logs(path: Path) -> pd.DataFrame:
    """Every file of the log at ``path`` (rotated ones first, :func:`log_files`) as one frame."""
    files = [f for f in log_files(path) if f.stat().st_size > 0]
    if len(files) <= 1:
        return read_prediction_log(files[0] if files else Path(path))
    frames = [read_prediction_log(f) for f in files]
    out = pd.concat(frames, ignore_index=True)
    out.attrs["skipped_lines"] = sum(int(f.attrs.get("skipped_lines", 0)) for f in frames)
    return out


def read_feature_logs(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sampled feature log (``features.jsonl`` and its rotated files, docs/monitoring.md).

    Returns two frames of the same rows: ``time``, ``model_version``, ``entity`` (uint64),
    and the features (one column per feature name; a feature a version lacks is missing).
    A torn or invalid line (a writer killed mid-line, fenced off by the next append) is
    skipped with a warning, as :func:`read_prediction_log` does; ``head.attrs["skipped_lines"]``
    counts them.
    """
    import orjson

    records, skipped = [], 0
    for f in log_files(path):
        bad = []
        with f.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    records.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    bad += [number] if raw.strip() else []
        if bad:
            log.warning("%s: skipped %d torn or invalid line(s) (first: line %d)", f, len(bad), bad[0])
        skipped += len(bad)
    if not records:
        raise DataError(f"{path}: no feature log there (missing or empty); serve with `serve.py --id-column ID --log-features RATE` first.")
    try:
        head = pd.DataFrame({"time": [r["time"] for r in records], "model_version": [r["model_version"] for r in records]})
        head["entity"] = np.array([int(r["entity"], 16) for r in records], dtype=np.uint64)
        features = pd.DataFrame.from_records([r["features"] for r in records])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a feature log of serve.py (a line lacks time, model_version, entity or features).") from exc
    head.attrs["skipped_lines"] = skipped
    return head, features


def parse_hex64(column, path: Path) -> np.ndarray:
    """16-character lower-case hex strings (an Arrow array or chunked array) to uint64, vectorised over the raw buffer."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(column) == 0:
        return np.zeros(0, dtype=np.uint64)
    if column.null_count or not pa.types.is_string(column.type):
        raise DataError(f"{path}: some lines have no entity hash, or it is not text.")
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    if len(column) and not (np.diff(offsets) == 16).all():
        raise DataError(f"{path}: an entity hash is not 16 hex characters (line {int(np.argmax(np.diff(offsets) != 16)) + 1}).")
    raw = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 16)
    lookup = np.full(256, 255, dtype=np.uint8)
    lookup[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
    nibbles = lookup[raw]
    if (nibbles == 255).any():
        raise DataError(f"{path}: an entity hash holds characters that are not lower-case hex.")
    value = np.zeros(len(raw), dtype=np.uint64)
    for k in range(16):
        value = (value << np.uint64(4)) | nibbles[:, k].astype(np.uint64)
    return value
