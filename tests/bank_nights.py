"""Growing nightly files made from the shipped bank data (featured_dataset.csv), for the data-guard tests.

The shipped file is in time order, and its base rate climbs from 2 % to 50 % over the last
third while month and day shift with the season: real drift. "Clean nights" must show
only sampling noise, so the rows are shuffled once with a fixed seed; each night's file is
the previous night's file plus the next rows. Every file is written under the caller's folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "featured_dataset.csv"
TARGET = "target"


@lru_cache(maxsize=4)
def _shuffled(seed: int) -> pd.DataFrame:
    frame = pd.read_csv(SHIPPED)
    order = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def bank(seed: int = 0, rows: int | None = None) -> pd.DataFrame:
    """The shipped bank data, shuffled with ``seed`` (a fresh copy), optionally the first ``rows``."""
    frame = _shuffled(seed)
    return (frame if rows is None else frame.iloc[:rows]).copy()


def with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ``customer_id`` column (the row's position in the shuffled data)."""
    return frame.assign(customer_id=np.arange(len(frame)))


def flip_labels(frame: pd.DataFrame, rows: slice, share: float, seed: int = 1) -> pd.DataFrame:
    """Flip the labels of ``share`` of the rows in ``rows`` (a broken label feed)."""
    out = frame.copy()
    idx = np.arange(len(out))[rows]
    chosen = np.random.default_rng(seed).choice(idx, size=round(share * len(idx)), replace=False)
    out.loc[chosen, TARGET] = 1 - out.loc[chosen, TARGET]
    return out


def write(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    path = Path(folder) / name
    frame.to_csv(path, index=False)
    return path
