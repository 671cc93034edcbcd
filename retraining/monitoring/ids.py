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
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    longest = int(lengths.max())
    out = np.zeros((len(text), max(8, -(-longest // 8) * 8)), dtype=np.uint8)
    starts, last = offsets[:-1], max(len(data) - 1, 0)
    for j in range(longest):
        out[:, j] = np.where(lengths > j, data[np.minimum(starts + j, last)], 0)
    return out, lengths


def hashes(ids, salt: str) -> np.ndarray | None:
    """``entity_hashes(ids, salt)`` when :func:`text_matrix` lays the ids out; None otherwise."""
    laid = text_matrix(ids)
    return None if laid is None else text_hashes(*laid, salt)


def lookup(keys: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """``pd.Index(keys).get_indexer(probes)`` for unique uint64 hashes.

    The hashes are uniformly random, so a bitmap of their low bits, 16 slots a key, rules
    out most probes that have no key with one gather; only the rest go through the index.
    """
    index = pd.Index(keys)
    if keys.dtype != np.uint64 or probes.dtype != np.uint64 or len(probes) < 4 * len(keys) or len(keys) > 1 << 22:
        return index.get_indexer(probes)
    bits = max(16, int(len(keys) * 16 - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    seen = np.zeros(1 << bits, dtype=bool)
    seen[(keys & low).view(np.int64)] = True
    maybe = np.flatnonzero(seen[(probes & low).view(np.int64)])
    out = np.full(len(probes), -1, dtype=np.intp)
    out[maybe] = index.get_indexer(probes[maybe])
    return out
