"""The entity hash of the A/B and production logs: a salted 64-bit hash of an id's canonical text.

:func:`entity_hashes` is the one definition (re-exported by :mod:`retraining.ab.predlog`);
its docstring says how another system reproduces it.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from retraining.errors import UsageError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def entity_hashes(ids, salt: str) -> np.ndarray:
    """Salted 64-bit hashes of entity ids, by their text: 42, 42.0 and "42" are one entity.

    The text is the id in UTF-8 without surrounding spaces (integers in decimal, also whole
    floats of any size: 2.0**70 is ``1180591620717411303424``; text that is not valid Unicode,
    a lone surrogate such as ``"\\ud800"``, by its UTF-8 bytes with ``surrogatepass``). Defined
    so that any system can reproduce an assignment: ``k`` = the first 8 bytes of
    ``blake2b(salt)`` as a little-endian uint64; the text, zero-padded to a multiple of 8
    bytes, is read as little-endian uint64 words ``w``; ``h = k``, then ``h = fmix64(h ^ w)``
    for each word, and finally ``fmix64(h ^ (len(text) * 0x9E3779B97F4A7C15))``, where
    fmix64 is MurmurHash3's 64-bit finalizer. Vectorised with numpy, which lets the
    hashing of integer ids run beside the Pool construction of :meth:`ABTest.predict`.
    """
    return text_hashes(*_id_text(ids), salt)


def text_hashes(text: np.ndarray, lengths: np.ndarray, salt: str) -> np.ndarray:
    """:func:`entity_hashes` of ids already laid out as their text: an (n, 8k) uint8 matrix, left-aligned and zero-padded, and the lengths."""
    key = np.frombuffer(hashlib.blake2b(salt.encode("utf-8"), digest_size=8).digest(), dtype="<u8")[0]
    words = text.view("<u8")
    h = np.full(len(lengths), key, dtype=np.uint64)
    for j in range(words.shape[1]):
        h = np.where(lengths > 8 * j, _fmix64(h ^ words[:, j]), h)
    return _fmix64(h ^ (lengths.astype(np.uint64) * _GOLDEN))


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _S33)
    h = h * _M1
    h = h ^ (h >> _S33)
    h = h * _M2
    return h ^ (h >> _S33)


def _id_text(ids) -> tuple[np.ndarray, np.ndarray]:
    """The ids' text as an (n, 8k) uint8 matrix, left-aligned and zero-padded, and its lengths."""
    try:
        values = pd.Series(ids)
    except UnicodeError:  # pandas' text dtype cannot hold a lone surrogate: keep the Python strings
        values = pd.Series(list(ids), dtype=object)
    values = _whole_as_int(values)
    if values.isna().any():
        missing = values.isna().to_numpy()
        what = "1 row has" if missing.sum() == 1 else f"{int(missing.sum())} rows have"
        raise UsageError(f"{what} no entity id (first: row {int(np.argmax(missing)) + 1}); every row needs one.")
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values) and (len(values) == 0 or values.min() >= 0):
        return _decimal_text(values.to_numpy(dtype=np.uint64))
    encoded = [str(v).strip().encode("utf-8", "surrogatepass") for v in values.tolist()]  # a lone surrogate: its own bytes
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    width = max(8, -(-int(lengths.max(initial=0)) // 8) * 8)
    text = np.array(encoded, dtype=f"S{width}") if encoded else np.zeros(0, dtype=f"S{width}")
    return text.view(np.uint8).reshape(len(encoded), width), lengths


def _whole_as_int(values: pd.Series) -> pd.Series:
    """Whole-number floats as integers, however large (2.0**70 is "1180591620717411303424"); the rest as they are."""
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        if ((present % 1 == 0) & (present.abs() < 2.0**63)).all():
            return values.astype("Int64")  # the common case, vectorised
    elif values.dtype != object:
        return values
    return pd.Series([_whole(v) for v in values.tolist()], index=values.index, dtype=object)  # object: pandas' text dtype refuses lone surrogates


def _whole(v):
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and v == math.floor(v):
        return int(v)
    return v


def _decimal_text(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative integers, left-aligned (n x 8k uint8), and their counts."""
    n = len(v)
    digits = len(str(int(v.max()))) if n else 1
    lengths = np.ones(n, dtype=np.int64)
    for k in range(1, digits):
        lengths += v >= np.uint64(10**k)
    right = np.empty((n, digits), dtype=np.uint8)  # right-aligned, leading zeros
    x = v.copy()
    for k in range(digits - 1, -1, -1):
        right[:, k] = x % np.uint64(10) + np.uint64(48)
        x //= np.uint64(10)
    width = max(8, -(-digits // 8) * 8)
    out = np.zeros((n, width), dtype=np.uint8)
    src = np.arange(digits)[None, :] + (digits - lengths)[:, None]
    out[:, :digits] = np.where(src < digits, np.take_along_axis(right, np.minimum(src, digits - 1), axis=1), 0)
    return out, lengths
