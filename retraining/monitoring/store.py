"""The monitor's state on disk, in the registry folder: ``models/monitoring/``.

::

    models/monitoring/
      state.json                format number, bytes read per log file (by first-line sha256),
                                the prediction files, the last results (for --history)
      predictions/part-000001.parquet   the production predictions read so far, compact
      monitor.html              the monitoring page

A run writes its new predictions file first, then ``state.json`` that names it (both
atomically); a run killed in between leaves a file no state names, overwritten next time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from retraining.errors import StateError
from retraining.fsutil import atomic_write_json, commit_temp, temp_path_beside

STATE_FORMAT = 1
FOLDER = "monitoring"


@dataclass
class State:
    """What earlier runs read and found."""

    offsets: dict[str, int] = field(default_factory=dict)  # first-line sha256 -> bytes read
    files: dict[str, str] = field(default_factory=dict)  # first-line sha256 -> the path it was last seen at
    parts: list[str] = field(default_factory=list)
    last: dict = field(default_factory=dict)  # the last run's versions, findings, actions
    format: int = STATE_FORMAT

    def to_json(self) -> dict:
        return {"format": self.format, "offsets": self.offsets, "files": self.files, "parts": self.parts, "last": self.last}

    @classmethod
    def from_json(cls, raw: dict, where: str) -> State:
        fmt = raw.get("format") if isinstance(raw, dict) else None
        if not isinstance(fmt, int) or fmt > STATE_FORMAT:
            raise StateError(f"{where} has format {fmt!r}; this program reads format {STATE_FORMAT}. Upgrade it, or move the folder aside to start over.")
        return cls(dict(raw.get("offsets", {})), dict(raw.get("files", {})), list(raw.get("parts", [])), dict(raw.get("last", {})))


class Store:
    """``models/monitoring/``: the state and the predictions read so far."""

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

    def predictions(self, state: State) -> pd.DataFrame | None:
        """Every prediction earlier runs kept (None if none)."""
        if not state.parts:
            return None
        try:
            frames = [pd.read_parquet(self.folder / name) for name in state.parts]
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.folder}: a predictions file is missing or damaged ({exc}); move {self.folder} aside and rerun.") from exc
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def save(self, state: State, new: pd.DataFrame) -> None:
        """Write the new predictions (if any), then the state that names them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if len(new):
            name = f"predictions/part-{len(state.parts) + 1:06d}.parquet"
            target = self.folder / name
            target.parent.mkdir(exist_ok=True)
            tmp = temp_path_beside(target)
            try:
                new.to_parquet(tmp, index=False)
                commit_temp(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            state.parts.append(name)
        atomic_write_json(self.state_path, state.to_json())
