"""A fast path for the lines serve.py and ab_test.py write: fixed-width rows read with numpy.

The writers lay out every batch as lines of one width from one template
(:func:`retraining.ab.predlog.layout`): only the request id, the entity hash, the score and
(format 2) the row's ledger key differ from line to line; the key is checked, not read. :func:`spans` cuts a block of the log into runs of consecutive
lines of equal length that match their first line (the template) outside those three
values; each run is then a matrix of bytes, decoded column-wise without a JSON parser.

Only what is certain is taken: the template must match :data:`TEMPLATE` exactly (every
field of the log in the writers' order, strings without escapes, the score as ``D.DDD…``),
every varying byte must lie in the three values and be a valid byte there (hex for the
entity, digits for the score, printable ASCII other than ``"`` and ``\\`` in the request
id). Lines that are not certain (other writers, hand edits, damage) go to pyarrow's JSON
reader, which gives the same values for the lines the fast path takes, or the error.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

MIN_RUN = 64  # shorter runs go to the JSON reader (the per-run cost is not worth it)
_STR = rb'"[^"\\\x00-\x1f]*"'
_NUMBER = rb"null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?"
TEMPLATE = re.compile(  # format 2 lines (retraining.ab.predlog.LOG_FORMAT) lead with "format" and carry "key" after the entity
    rb'\{(?:"format":\d+,)?"request_id":"([!#-\[\]-~]*)","time":"(\d{4}-\d{2}-\d{2})[^"\\\x00-\x1f]*","experiment":('
    + _STR
    + rb'),"share":('
    + _NUMBER
    + rb"),"
    rb'"entity":"([0-9a-f]{16})",(?:"key":("[0-9a-f]{16}"|null {14}),)?"variant":(' + _STR + rb') *,"model_version":(' + _STR + rb") *,"
    rb'"model_sha256":(' + _STR + rb'),"score":(\d\.\d{1,15}),"served":(true |false)\}\n\Z'
)
_NULL_KEY = np.frombuffer(b"null" + b" " * 14, dtype=np.uint8)
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class Run:
    """Lines taken by the fast path: their varying values, decoded, and the template's constant values."""

    n: int
    entities: np.ndarray  # uint64
    scores: np.ndarray  # float64, as pyarrow's JSON reader gives them
    request_ids: np.ndarray  # bytes (S)
    constants: dict  # experiment, variant, model_version, model_sha256 (text), served (bool), day (int)


def spans(raw: bytes | bytearray, size: int | None = None) -> list[tuple[int, int, Run | None]]:
    """The whole lines of ``raw[:size]`` in order as byte spans ``[a, b)``, each a :class:`Run` or None (for the JSON reader).

    No scan for every newline: a run's rows are the first line's width apart, so only their
    last bytes are checked (a row that matches the template has no newline inside).
    """
    size = len(raw) if size is None else size  # the lines are raw[:size]
    arr = np.frombuffer(raw, dtype=np.uint8, count=size)
    out: list[tuple[int, int, Run | None]] = []
    at = 0
    while at < size:
        width = raw.find(b"\n", at, size) + 1 - at
        ends = arr[at + width - 1 :: width] == 10
        k = int(np.argmin(ends)) if not ends.all() else len(ends)
        run = _run(arr[at : at + k * width].reshape(k, width)) if k >= MIN_RUN else None
        if run is not None and run.n >= MIN_RUN:
            out.append((at, at + run.n * width, run))
            at += run.n * width
            continue
        stop = at
        for _ in range(MIN_RUN):  # these lines to the JSON reader, then look for a run again
            stop = raw.find(b"\n", stop, size) + 1
            if stop == 0 or stop >= size:
                stop = size
                break
        out.append((at, stop, None))
        at = stop
    return _merged(out)


def _merged(spans_: list) -> list:
    """Consecutive spans for the JSON reader as one."""
    out: list = []
    for i, j, run in spans_:
        if run is None and out and out[-1][2] is None and out[-1][1] == i:
            out[-1] = (out[-1][0], j, None)
        else:
            out.append((i, j, run))
    return out


def _run(rows: np.ndarray) -> Run | None:
    """The leading rows that match the first one's template (None if the first row is no template)."""
    template = rows[0].tobytes()
    m = TEMPLATE.match(template)
    if m is None:
        return None
    try:
        texts = [m.group(g).decode("utf-8") for g in (3, 7, 8, 9)]
        day = (dt.date.fromisoformat(m.group(2).decode()) - _EPOCH).days
    except ValueError:
        return None
    rid, ent, sc, key = m.span(1), m.span(5), m.span(10), m.span(6)
    fixed = np.ones(rows.shape[1], dtype=bool)
    for a, b in (rid, ent, sc, key if m.group(6) else (0, 0)):
        fixed[a:b] = False
    fixed[sc[0] + 1] = True  # the decimal point stays put
    rows = rows[: _matching(rows, fixed)]
    values = _decoded(rows, rid, ent, sc)
    if values is None or (m.group(6) and not _keys_valid(rows[:, key[0] : key[1]])):
        return None
    constants = dict(zip(("experiment", "variant", "model_version", "model_sha256"), (t[1:-1] for t in texts), strict=True))
    constants.update(served=m.group(11) == b"true ", day=day)
    return Run(len(rows), *values, constants)


def _keys_valid(keys: np.ndarray) -> bool:
    """Every row's ledger key (the monitor does not read it) is ``"<16 hex>"`` or ``null`` padded with spaces."""
    quoted = keys[:, 0] == ord('"')
    hexes = keys[quoted]
    if len(hexes) and ((hexes[:, 17] != ord('"')).any() or (_HEX[hexes[:, 1:17]] == 255).any()):
        return False
    return bool((keys[~quoted] == _NULL_KEY).all())


def _decoded(rows: np.ndarray, rid: tuple[int, int], ent: tuple[int, int], sc: tuple[int, int]) -> tuple | None:
    """The entities, scores and request ids of the rows; None if a varying byte is not what its value allows.

    A score ``D.DDD`` (f decimals) is its digits as an integer over ``10**f``: both exact in a
    double, so the one division rounds as a correct decimal parse does.
    """
    nibbles = _HEX[rows[:, ent[0] : ent[1]]]
    if (nibbles == 255).any():
        return None
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    entities = np.ascontiguousarray(packed).view(">u8").ravel().astype(np.uint64)
    digits = rows[:, sc[0] : sc[1]] - np.uint8(48)  # the decimal point (fixed, checked) weighs nothing
    if (digits[:, :1] > 9).any() or (digits[:, 2:] > 9).any():
        return None
    places = sc[1] - sc[0] - 2
    powers = np.concatenate([[10.0**places, 0.0], 10.0 ** np.arange(places - 1, -1, -1)])
    scores = (digits.astype(np.float64) @ powers) / 10.0**places
    ids = np.ascontiguousarray(rows[:, rid[0] : rid[1]])
    if not ((ids - np.uint8(0x21)) < 0x5E).all() or (ids == 0x22).any() or (ids == 0x5C).any():  # printable ASCII, no quote or backslash
        return None
    request_ids = ids.view(f"S{ids.shape[1]}").ravel() if ids.shape[1] else np.full(len(rows), b"", dtype="S1")
    return entities, scores, request_ids


def _matching(rows: np.ndarray, fixed: np.ndarray) -> int:
    """How many leading rows equal the first one at the ``fixed`` columns.

    Eight rows at a time as 64-bit words (eight rows of width ``w`` are ``w`` words), so the
    check costs a few passes over the bytes at word speed.
    """
    n, width = rows.shape
    groups = n // 8
    template = np.tile(rows[0], 8).view(np.uint64)
    mask = np.tile(np.where(fixed, 255, 0).astype(np.uint8), 8).view(np.uint64)
    if groups:
        words = rows[: groups * 8].reshape(-1).view(np.uint64).reshape(groups, width)
        diff = np.bitwise_xor(words, template)
        np.bitwise_and(diff, mask, out=diff)
        bad = np.flatnonzero(diff.any(axis=1))
        first = int(bad[0]) * 8 if len(bad) else groups * 8
    else:
        first = 0
    tail = rows[first : first + 8] if first < groups * 8 else rows[first:]
    same = (tail[:, fixed] == rows[0, fixed]).all(axis=1)
    return first + (int(np.argmin(same)) if not same.all() else len(tail))
