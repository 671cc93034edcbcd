"""The outcome ids at C speed: deduplicated, hashed and looked up without a Python string per id.

Each function gives exactly what the plain pandas expression in its docstring gives; it
only takes a faster road where the ids allow one (integers; text of ASCII letters and
digits, which has nothing to strip and no number to rewrite), and the plain one otherwise.
A rerun with new outcomes hashes and deduplicates every outcome id and joins them with
every kept prediction (10M lookups at 10M lines), so these are its cost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retraining.ab.entity import text_hashes


def duplicated(ids: pd.Series) -> np.ndarray:
    """``ids.astype(str).str.strip().duplicated(keep="last")`` as a numpy array.

    Distinct integers have distinct decimal text; ASCII letters and digits are their own
    stripped text, compared here as the words of their zero-padded bytes (no NUL in them,
    so equal words mean equal text).
    """
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":
        return pd.Series(ids.to_numpy()).duplicated(keep="last").to_numpy()
    laid = text_matrix(ids)
    if laid is None:
        return pd.Series(ids.to_numpy()).astype(str).str.strip().duplicated(keep="last").to_numpy()
    words = laid[0].view("<u8")
    if words.shape[1] == 1:
        return pd.Series(words[:, 0]).duplicated(keep="last").to_numpy()
    return pd.DataFrame(words).duplicated(keep="last").to_numpy()


def text_matrix(ids) -> tuple[np.ndarray, np.ndarray] | None:
    """The ids' bytes as :func:`retraining.ab.entity.entity_hashes` lays out their text, or None.

    Only when every id is text of ASCII letters and digits (an Arrow or Python string column
    without missing cells), whose hashed text is the string itself: an (n, 8k) uint8 matrix,
    left-aligned and zero-padded, and the lengths, built from the Arrow buffers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = ids.array if isinstance(ids, pd.Series) else ids
    if isinstance(values, np.ndarray) and values.dtype != object:
        return None
    try:
        text = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, UnicodeError):
        return None
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)) or text.null_count or not len(text):
        return None
    if not pc.all(pc.ascii_is_alnum(text)).as_py():
        return None
    width = np.int32 if pa.types.is_string(text.type) else np.int64
    offsets = np.frombuffer(text.buffers()[1], dtype=width)[text.offset : text.offset + len(text) + 1].astype(np.int64)
    lengths = np.diff(offsets)
    words = max(1, -(-int(lengths.max()) // 8))
    data = np.zeros(int(offsets[-1]) + 8 * words, dtype=np.uint8)  # the bytes, then zeros to read past the last id
    data[: offsets[-1]] = np.frombuffer(text.buffers()[2], dtype=np.uint8)[: offsets[-1]]
    at = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))  # the 8 bytes from each byte on
    out = np.empty((len(text), words), dtype="<u8")
    for w in range(words):
        out[:, w] = at[offsets[:-1] + 8 * w] & _KEEP[np.clip(lengths - 8 * w, 0, 8)]
    return out.view(np.uint8).reshape(len(text), 8 * words), lengths


_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # the low k bytes of a word


def hashes(ids, salt: str) -> np.ndarray | None:
    """``entity_hashes(ids, salt)`` when :func:`text_matrix` lays the ids out; None otherwise."""
    laid = text_matrix(ids)
    return None if laid is None else text_hashes(*laid, salt)


def lookup(keys: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """``pd.Index(keys).get_indexer(probes)`` for unique uint64 hashes, without a hash table of every key where it can.

    Few probes (a run's new lines): the keys are looked up among the distinct probes
    instead. Many probes (every kept prediction): the hashes are uniformly random, so a
    bitmap of their low bits, 16 slots a key, rules out most probes that have no key with
    one gather; only the rest go through the index.
    """
    if keys.dtype != np.uint64 or probes.dtype != np.uint64 or len(keys) > 1 << 22:
        return pd.Index(keys).get_indexer(probes)
    if 8 * len(probes) < len(keys):
        distinct = np.unique(probes)
        found = pd.Index(distinct).get_indexer(keys)
        place = np.full(len(distinct) + 1, -1, dtype=np.intp)
        place[found[found >= 0]] = np.flatnonzero(found >= 0)
        return place[np.searchsorted(distinct, probes)] if len(distinct) else np.full(len(probes), -1, dtype=np.intp)
    if len(probes) < 4 * len(keys):
        return pd.Index(keys).get_indexer(probes)
    bits = max(16, int(len(keys) * 16 - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    seen = np.zeros(1 << bits, dtype=bool)
    seen[(keys & low).view(np.int64)] = True
    maybe = np.flatnonzero(seen[(probes & low).view(np.int64)])
    out = np.full(len(probes), -1, dtype=np.intp)
    out[maybe] = pd.Index(keys).get_indexer(probes[maybe])
    return out
