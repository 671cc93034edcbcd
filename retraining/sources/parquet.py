"""Parquet: one file or a (hive-partitioned) directory of them, via ``pyarrow.dataset``."""

from __future__ import annotations

from pathlib import Path

from retraining.errors import DataError
from retraining.sources.base import Table, arrow_to_frame, files_fingerprint, first_line, in_background


def is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq", ".parq"):
        return True
    if path.is_dir():
        return any(path.rglob("*.parquet"))
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def parquet_files(path: Path) -> list[Path]:
    """The data files of a Parquet file or directory, in sorted relative-path order."""
    if path.is_file():
        return [path]
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def read_parquet(path: Path) -> Table:
    """A ``.parquet`` file or a (hive-partitioned) directory of them, via ``pyarrow.dataset``."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if not path.exists():
        raise DataError(f"{path}: not found. Pass the Parquet file or directory with --data PATH.")
    files = parquet_files(path)
    if not files:
        raise DataError(f"{path}: the directory holds no Parquet files.")
    fingerprint = in_background(files_fingerprint, path, files)
    try:
        if path.is_dir():
            dataset = pads.dataset([str(f) for f in files], format="parquet", partitioning=pads.partitioning(flavor="hive"), partition_base_dir=str(path))
        else:
            dataset = pads.dataset(str(path), format="parquet")
        arrow = dataset.to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet ({first_line(exc)}). Check that every file is Parquet with the same columns.") from exc
    frame, notes = arrow_to_frame(arrow)
    if len(frame) == 0:
        raise DataError(f"{path}: the Parquet data has no rows.")
    if len(files) > 1:
        notes.insert(0, f"read {len(files)} Parquet files")
    return Table(frame=frame, fingerprint=fingerprint(), display=str(path), kind="parquet", notes=notes)
