"""Crash-safe file operations: a reader sees the old file or the new one, never half.

Every write goes to a temporary file in the same folder (so ``os.replace`` is a rename
on one file system), is flushed and fsynced, then replaces the target. Temporary files
carry :data:`TMP_SUFFIX` so that a run killed half-way leaves something the next run can
recognise and remove (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from retraining.errors import NoSpaceError

TMP_SUFFIX = ".partial"
_CHUNK = 1 << 20


NO_SPACE_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop always returns


def no_space_error(exc: OSError, folder: Path, needed: int | None) -> NoSpaceError:
    """The one line for a full disk: ``no space left on DIR: X free, Y needed``."""
    try:
        free = human_size(shutil.disk_usage(folder).free)
    except OSError:
        free = "unknown"
    need = f"{human_size(needed)} needed" if needed is not None else "more needed"
    where = Path(folder).absolute()
    return NoSpaceError(f"no space left on {where}: {free} free, {need}; free some space and run again (production stays as it was until a run completes)")


@contextlib.contextmanager
def translating_no_space(folder: Path, needed: int | None = None):
    """Turn ENOSPC/EDQUOT inside the block into :class:`NoSpaceError` (exit 8) naming ``folder``."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE_ERRNOS:
            raise no_space_error(exc, Path(folder), needed) from exc
        raise


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable. Windows cannot open folders: a no-op there."""
    if os.name == "nt":  # pragma: no cover - Windows has no directory fsync
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # elsewhere: set and restore at once (the only portable way to read it)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 minus the umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def _temp_beside(target: Path) -> tuple[int, Path]:
    """A new temporary file next to ``target``, with the mode a plain ``open()`` would give it.

    ``mkstemp`` creates files 0600 whatever the umask; a serving process running as another
    user could then not read the production model, so the mode is set to what the umask allows.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent)
    if os.name != "nt":  # Windows has no POSIX modes; mkstemp's file there is an ordinary one
        try:
            os.fchmod(fd, plain_file_mode())
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
    return fd, Path(name)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically and durably."""
    target = Path(target)
    with translating_no_space(target.parent, len(data)):
        _write_bytes(target, data)


def _write_bytes(target: Path, data: bytes) -> None:
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def atomic_write_json(target: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    atomic_write_bytes(target, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def atomic_copy(src: Path, target: Path) -> None:
    """Copy ``src`` over ``target`` atomically and durably."""
    target = Path(target)
    with translating_no_space(target.parent, Path(src).stat().st_size):
        _copy(Path(src), target)


def _copy(src: Path, target: Path) -> None:
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as out, Path(src).open("rb") as inp:
            shutil.copyfileobj(inp, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def temp_path_beside(target: Path) -> Path:
    """A fresh temporary path next to ``target`` for writers that need a file name."""
    with translating_no_space(Path(target).parent):
        fd, tmp = _temp_beside(Path(target))
    os.close(fd)
    return tmp


def commit_temp(tmp: Path, target: Path) -> None:
    """fsync a finished temporary file and move it over ``target``."""
    with translating_no_space(Path(target).parent), Path(tmp).open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fsync_dir(Path(target).parent)


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temporary files a killed run left in ``folder``; return what was removed.

    Call this only while holding the folder's lock, so no live writer owns them.
    """
    removed = []
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed
