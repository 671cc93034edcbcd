"""The monitor's state on disk, in the registry folder: ``models/monitoring/``.

::

    models/monitoring/
      state.json                format number, bytes read per log file (by first-line sha256),
                                the prediction parts, the aggregates file, the last results (for --history)
      predictions/part-000001.COLUMN.npy  the production predictions one run read, one file per column
      predictions/part-000001.json        the part's categories (names of the codes) and row count
      aggregates-000001.npz     the sums per version and day over every part (:mod:`.aggregates`)
      monitor.html              the monitoring page

A part holds the columns of :func:`retraining.monitoring.logs.compact`: ``entity``, ``score``,
``day``, ``previous_score`` as arrays, and each categorical column as integer codes (-1 for
none) whose names are in the part's JSON file. A rerun reads only the columns it needs (the
entity and experiment of every row for the join; the rest for the labelled rows).

A run writes its new part (the JSON file last) and its aggregates file first, then ``state.json`` that names both
(all atomically), then removes the aggregates file it replaced; a run killed in between
leaves files no state names, overwritten or ignored next time.

Format 1 (the first monitor) kept Parquet parts and no aggregates: its parts are still read,
and the aggregates are computed from them once, with one log line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.errors import StateError
from retraining.fsutil import atomic_write_json, commit_temp, temp_path_beside
from retraining.monitoring.aggregates import Aggregates

log = logging.getLogger(__name__)
STATE_FORMAT = 2
FOLDER = "monitoring"
CATEGORIES = ("experiment", "model_version", "model_sha256", "previous_version", "previous_sha256")


@dataclass
class State:
    """What earlier runs read and found."""

    offsets: dict[str, int] = field(default_factory=dict)  # first-line sha256 -> bytes read
    files: dict[str, str] = field(default_factory=dict)  # first-line sha256 -> the path it was last seen at
    parts: list[str] = field(default_factory=list)
    last: dict = field(default_factory=dict)  # the last run's versions, findings, actions
    aggregates: str | None = None  # the aggregates file over every part (None: compute it from the parts)
    memo: dict = field(default_factory=dict)  # realized numbers by a fingerprint of their rows (analysis.Memo)
    joined: str | None = None  # the last run's join of the outcomes to every kept row (Store.joined)
    format: int = STATE_FORMAT

    def to_json(self) -> dict:
        out = {"format": self.format, "offsets": self.offsets, "files": self.files, "parts": self.parts, "aggregates": self.aggregates}
        return {**out, "joined": self.joined, "memo": self.memo, "last": self.last}

    @classmethod
    def from_json(cls, raw: dict, where: str) -> State:
        fmt = raw.get("format") if isinstance(raw, dict) else None
        if not isinstance(fmt, int) or fmt > STATE_FORMAT or fmt < 1:
            raise StateError(f"{where} has format {fmt!r}; this program reads formats 1 to {STATE_FORMAT}. Upgrade it, or move the folder aside to start over.")
        state = cls(dict(raw.get("offsets", {})), dict(raw.get("files", {})), list(raw.get("parts", [])), dict(raw.get("last", {})))
        state.aggregates = raw.get("aggregates") if fmt >= 2 else None
        state.memo = dict(raw.get("memo") or {}) if fmt >= 2 else {}
        state.joined = raw.get("joined") if fmt >= 2 else None
        if fmt < STATE_FORMAT and state.parts:
            log.warning("%s: state format %d (an older monitor.py) keeps no sums; computing them once from its %d kept parts.", where, fmt, len(state.parts))
        return state


class Store:
    """``models/monitoring/``: the state, the predictions read so far and their aggregates."""

    def __init__(self, models_dir: Path) -> None:
        self.folder = Path(models_dir) / FOLDER
        self.state_path = self.folder / "state.json"
        self.page_path = self.folder / "monitor.html"

    def load(self) -> State:
        if not self.state_path.is_file():
            return State()
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.state_path} is corrupted ({exc}); move {self.folder} aside and rerun (it rereads every log).") from exc
        return State.from_json(raw, str(self.state_path))

    def part(self, name: str, columns: list[str], rows: np.ndarray | None = None) -> pd.DataFrame:
        """The given columns of one kept part (categorical columns as categoricals); only ``rows`` (positions, ascending) if given."""
        path = self.folder / name
        try:
            if name.endswith(".parquet"):  # format 1
                frame = pd.read_parquet(path, columns=columns)
                return frame if rows is None else frame.iloc[rows].reset_index(drop=True)
            names = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))["categories"]
            return pd.DataFrame({c: _column(path, c, names, rows) for c in columns})
        except (OSError, ValueError, KeyError) as exc:
            raise StateError(f"{path}: a predictions file is missing or damaged ({exc}); move {self.folder} aside and rerun.") from exc

    def rows(self, name: str) -> int:
        """How many predictions a kept part holds."""
        path = self.folder / name
        try:
            if name.endswith(".parquet"):
                import pyarrow.parquet as pq

                return int(pq.ParquetFile(path).metadata.num_rows)
            return int(json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))["rows"])
        except (OSError, ValueError, KeyError) as exc:
            raise StateError(f"{path}: a predictions file is missing or damaged ({exc}); move {self.folder} aside and rerun.") from exc

    def joined(self, state: State) -> dict | None:
        """The last run's join, None if none or unreadable.

        The outcomes' fingerprint, ``y`` of every kept row, ``matched``, ``hashes`` per salt, and
        the labels' ``label_y``, ``counts`` and ``notes`` (what :func:`.analysis.labels_of` gave).

        Only a cache: a damaged or missing file means a full join, never a wrong one (the fingerprint must match).
        """
        if not state.joined:
            return None
        try:
            with np.load(self.folder / state.joined, allow_pickle=False) as z:
                salts = [str(s) for s in z["salts"]]
                return {
                    "fingerprint": str(z["fingerprint"]),
                    "y": z["y"],
                    "matched": z["matched"],
                    "hashes": {s: z[f"hashes_{i}"] for i, s in enumerate(salts)},
                    "label_y": z["label_y"],
                    **json.loads(str(z["found"])),
                }
        except (OSError, ValueError, KeyError):
            log.warning("%s: the last join is unreadable; joining the outcomes to every kept prediction.", self.folder / state.joined)
            return None

    def aggregates(self, state: State) -> Aggregates | None:
        """The kept aggregates over every part (None when the state keeps none: compute them from the parts)."""
        if not state.parts:
            return Aggregates()
        if not state.aggregates:
            return None
        try:
            with np.load(self.folder / state.aggregates, allow_pickle=False) as z:
                return Aggregates.from_arrays(z)
        except (OSError, ValueError, KeyError) as exc:
            where = self.folder / state.aggregates
            raise StateError(f"{where}: the aggregates file is missing or damaged ({exc}); move {self.folder} aside and rerun.") from exc

    def save(self, state: State, new: pd.DataFrame, aggregates: Aggregates, joined: dict | None = None) -> None:
        """Write the new predictions (if any), the aggregates and the join, then the state that names them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if len(new):
            name = f"predictions/part-{len(state.parts) + 1:06d}"
            (self.folder / name).parent.mkdir(exist_ok=True)
            self._write_part(self.folder / name, new)
            state.parts.append(name)
        replaced = state.aggregates
        state.aggregates = f"aggregates-{len(state.parts):06d}.npz"
        self._write_npz(self.folder / state.aggregates, aggregates.to_arrays())
        replaced_join, state.joined = state.joined, None
        if joined is not None:
            state.joined = f"joined-{len(state.parts):06d}.npz"
            hashes = {f"hashes_{i}": h for i, h in enumerate(joined["hashes"].values())}
            arrays = {
                "fingerprint": np.array(joined["fingerprint"]),
                "y": joined["y"],
                "matched": joined["matched"],
                "salts": np.array(list(joined["hashes"]), dtype=str),
                "label_y": joined["label_y"],
                "found": np.array(json.dumps({k: joined.get(k) for k in ("counts", "notes", "source", "salt")})),
            }
            self._write_npz(self.folder / state.joined, {**arrays, **hashes})
        state.format = STATE_FORMAT
        atomic_write_json(self.state_path, state.to_json())
        for old, now in ((replaced, state.aggregates), (replaced_join, state.joined)):
            if old and old != now:
                (self.folder / old).unlink(missing_ok=True)

    @staticmethod
    def _write_npz(target: Path, arrays: dict[str, np.ndarray]) -> None:
        tmp = temp_path_beside(target)
        try:
            with tmp.open("wb") as fh:
                np.savez(fh, **arrays)
            commit_temp(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _write_part(prefix: Path, frame: pd.DataFrame) -> None:
        """One ``.npy`` file per column (codes for categorical ones), then ``PREFIX.json`` with the categories and the row count."""
        categories = {}
        for name in frame.columns:
            if name in CATEGORIES:
                cat = frame[name].astype("category")
                values = cat.cat.codes.to_numpy().astype(np.int32)
                categories[name] = [str(c) for c in cat.cat.categories]
            else:
                values = frame[name].to_numpy()
            target = prefix.with_name(f"{prefix.name}.{name}.npy")
            tmp = temp_path_beside(target)
            try:
                with tmp.open("wb") as fh:
                    np.save(fh, values, allow_pickle=False)
                commit_temp(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        atomic_write_json(prefix.with_name(prefix.name + ".json"), {"format": STATE_FORMAT, "rows": len(frame), "categories": categories})


def _column(prefix: Path, name: str, categories: dict, rows: np.ndarray | None = None):
    path = prefix.with_name(f"{prefix.name}.{name}.npy")
    if rows is None:
        values = np.load(path, allow_pickle=False)  # read, not mapped: no file stays open (Windows)
    else:  # the rows only, copied out of a map that is closed when dropped here
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        values = np.array(mapped[rows])
        del mapped
    if name in CATEGORIES:
        return pd.Categorical.from_codes(np.asarray(values), categories=pd.Index(categories[name], dtype=object))
    return values
