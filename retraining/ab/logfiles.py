"""The files of one prediction log: rotation by size or by day, and every file in order.

A log keeps its name while it is written (``logs/predictions.jsonl``). When it is due, the
writer renames it, under the log's own lock (``predictions.jsonl.lock``, the lock every
append holds), to ``predictions-YYYYMMDD-HHMMSS.jsonl`` (the UTC time of the rotation; a
``-N`` suffix when two rotations fall in one second), and the next append creates a new
current file. An append opens the file by name only while it holds the lock, so a line
is never lost or written twice, with any number of writers and processes.

:func:`log_files` lists every file of a log, oldest first and the current one last: what
every reader reads (:func:`retraining.ab.predlog.read_prediction_logs`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from retraining.errors import TimedOutError


@dataclass(frozen=True)
class Rotation:
    """When the current file of a log is rotated: once it holds ``max_bytes`` or more, and/or
    (``daily``) when it was last written on an earlier UTC day than today."""

    max_bytes: int | None = None
    daily: bool = False

    def __bool__(self) -> bool:
        return self.max_bytes is not None or self.daily

    def due(self, path: Path, now: dt.datetime | None = None) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size == 0:
            return False
        if self.max_bytes is not None and st.st_size >= self.max_bytes:
            return True
        if self.daily:
            now = now or dt.datetime.now(dt.timezone.utc)
            return dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).date() < now.date()
        return False


def rotated_pattern(path: Path) -> re.Pattern:
    """The names of ``path``'s rotated files: stem-YYYYMMDD-HHMMSS[-N]suffix."""
    return re.compile(rf"^{re.escape(path.stem)}-(\d{{8}})-(\d{{6}})(?:-(\d+))?{re.escape(path.suffix)}$")


def log_files(path: str | Path) -> list[Path]:
    """Every file of the log at ``path``: the rotated ones oldest first, then the current one (if it exists)."""
    path = Path(path)
    pattern = rotated_pattern(path)
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        names = []
    rotated = sorted((m[1], m[2], int(m[3] or 0), name) for name in names if (m := pattern.match(name)))
    return [path.parent / name for *_, name in rotated] + ([path] if path.is_file() else [])


def rotate_if_due(path: Path, rotation: Rotation, timeout: float = 60.0) -> Path | None:
    """Rename the current file aside if ``rotation`` says so; the rotated file's path, or None.

    Looks without the lock first (a stat: the common case costs nothing more), then again
    under the lock, so of several writers that find it due only one rotates.
    """
    if not rotation or not rotation.due(path):
        return None
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(path) + ".lock", timeout=timeout):
            now = dt.datetime.now(dt.timezone.utc)
            if not rotation.due(path, now):
                return None
            target = _free_name(path, now)
            try:
                os.replace(path, target)
            except PermissionError:  # Windows: a reader has the file open; the next append tries again
                return None
            return target
    except Timeout as exc:
        raise TimedOutError(f"{path}: another writer held {path}.lock for {timeout:g} s; if none is running, delete the lock file.") from exc


def _free_name(path: Path, now: dt.datetime) -> Path:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.stem}-{stamp}{path.suffix}"), 1
    while target.exists():
        target, n = path.with_name(f"{path.stem}-{stamp}-{n}{path.suffix}"), n + 1
    return target


def complete_lines(path: Path) -> tuple[bytes, list[int]]:
    """The lines that are whole JSON objects (newline-terminated), and the numbers of the others (torn, invalid)."""
    good, bad = bytearray(), []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                whole = isinstance(json.loads(raw), dict)
            except ValueError:
                whole = False
            if whole:
                good += raw if raw.endswith(b"\n") else raw + b"\n"
            elif raw.strip():
                bad.append(number)
    return bytes(good), bad


def first_bad_line(path: Path) -> str | None:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                json.loads(raw)
            except ValueError:
                return f"line {number} is not valid JSON: {raw[:60]!r}"
    return None
