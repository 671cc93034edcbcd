"""Everything on disk: the version log, version files, backups, production, the lock.

Layout of a models folder::

    models/
      version_log.json              the history (format number, versions, events)
      history/version_log_0001.json older versions and events, moved out once the log
                                    holds more than 1,000 (written once, never changed)
      catboost_model_v1.0.0.cbm     one file per version, never modified once written
      production_backup_<UTC>.cbm   the production file as it was before each replacement
      metadata/vX.Y.Z.json          everything recorded about a version (the log keeps a summary)
      profiles/, evaluations/,      its training-data profile, holdout scores, HTML report
      reports/, ledgers/            and row ledger (which rows it trained on / held out)
      .retrain.lock                 held by one run or promotion at a time

Crash safety: every file is written to a temporary file in the same folder, fsynced and
renamed over the target (:mod:`retraining.fsutil`). A promotion first records its intent
in the log (``pending_promotion``), then backs up and replaces production, then records
the result. A run killed in between leaves the intent behind, and the next run (or
promotion) finishes it before doing anything else, so production and the log can never
disagree for longer than one interrupted step.

Size: every run reads and rewrites version_log.json, so it must not grow without bound.
When it holds more than ``Registry.archive_at`` versions (or events), all but the newest
``archive_keep`` move into a new file under ``history/``, written before the log that
names it (a run killed in between leaves an unnamed file that the next archiving
overwrites). A run's bookkeeping therefore costs the same at 10 or 100,000 versions;
``--history`` and :meth:`Registry.whole_log` put the archived parts back in front.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from retraining.errors import BusyError, StateError, VersionNotFoundError
from retraining.fsutil import atomic_copy, atomic_write_bytes, atomic_write_json, remove_stale_temp_files, sha256_file
from retraining.records import VERSION_RE, Event, VersionEntry, log_shape_problem, nonfinite_path

log = logging.getLogger(__name__)

LOG_FORMAT = 2  # 2: may name archived parts under history/ ("archive"); 1: everything in one file
LOG_NAME = "version_log.json"
ARCHIVE_DIR = "history"
ARCHIVE_RE = re.compile(r"^history/version_log_\d{4,}\.json$")
LOCK_NAME = ".retrain.lock"
FIRST_VERSION = "v1.0.0"


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a Z, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_version(version: str) -> tuple[int, int, int]:
    """``"v1.2.3"`` -> ``(1, 2, 3)``; :class:`VersionNotFoundError` for anything else."""
    match = VERSION_RE.match(version) if isinstance(version, str) else None
    if not match:
        raise VersionNotFoundError(f"{version!r} is not a version name; versions look like v1.2.0 (see --history).")
    return int(match[1]), int(match[2]), int(match[3])


def bump(latest: str | None, schema_changed: bool) -> str:
    """The version after ``latest``: minor bump, or major bump on a schema change."""
    if latest is None:
        return FIRST_VERSION
    major, minor, _ = parse_version(latest)
    return f"v{major + 1}.0.0" if schema_changed else f"v{major}.{minor + 1}.0"


def entry_schema(entry: dict) -> list[list[str]]:
    """The feature schema of a log entry (older entries stored it; newer ones derive it)."""
    return VersionEntry.from_json(entry).feature_schema


def empty_log() -> dict:
    return {"format": LOG_FORMAT, "production": None, "pending_promotion": None, "versions": [], "events": []}


class Registry:
    """The models folder and the production file, guarded by one lock."""

    archive_at = 1000  # versions (or events) in version_log.json before the oldest move to history/
    archive_keep = 500  # how many of the newest stay in version_log.json when they do

    def __init__(self, models_dir: str | Path, production_path: str | Path, lock_timeout: float = 60.0) -> None:
        self.models_dir = Path(models_dir)
        self.production_path = Path(production_path)
        self.lock_timeout = lock_timeout
        self.log_path = self.models_dir / LOG_NAME
        self.lock_path = self.models_dir / LOCK_NAME
        self._archive_cache: tuple[tuple[str, ...], dict] | None = None

    # -- the lock -------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the models folder's lock; :class:`BusyError` after ``lock_timeout`` s."""
        from filelock import FileLock, Timeout

        self.models_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise BusyError(
                f"{self.models_dir} is busy: another retrain or promotion holds {self.lock_path} "
                f"(waited {self.lock_timeout:g} s). Try again when it has finished, or raise --lock-timeout."
            ) from exc
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def session(self) -> Iterator[dict]:
        """Lock, read the log, finish what a killed run left: what every writer starts with.

        Yields the log (a dict in its on-disk form); the caller writes it through the
        registry's methods while the lock is held.
        """
        with self.locked():
            data = self.read_log()
            self.recover(data)
            yield data

    # -- the log --------------------------------------------------------------------
    def read_log(self) -> dict:
        """The version log, or an empty one; :class:`StateError` if it is damaged."""
        if not self.log_path.exists():
            return empty_log()
        data = self._parse_log(self.log_path.read_bytes())
        fmt = data.get("format")
        if type(fmt) is not int or fmt < 1:
            raise StateError(f"{self.log_path} is corrupted: 'format' must be a whole number >= 1, found {fmt!r:.40}. Restore it from a backup.")
        if fmt > LOG_FORMAT:
            raise StateError(
                f"{self.log_path} has format {fmt!r}; this program reads format {LOG_FORMAT} and older. Upgrade this program, or restore an older log."
            )
        problem = log_shape_problem(data)
        if problem:
            raise StateError(f"{self.log_path} is corrupted: {problem}. Restore it from a backup, or move it aside to start a new history.")
        archive = data.get("archive", [])
        if not isinstance(archive, list) or not all(isinstance(n, str) and ARCHIVE_RE.match(n) for n in archive):
            raise StateError(f"{self.log_path} is corrupted: 'archive' must list files like history/version_log_0001.json. Restore it from a backup.")
        data.setdefault("events", [])
        data.setdefault("pending_promotion", None)
        data.setdefault("production", None)
        return data

    def _parse_log(self, raw: bytes) -> dict:
        """The log's JSON; :class:`StateError` naming where it is not JSON, or where it holds NaN, an infinity or a huge number."""
        try:
            data = _loads(raw)
        except (UnicodeDecodeError, ValueError):
            data = None  # the fast parser says little about where: ask the standard one
        try:
            lenient = json.loads(raw.decode("utf-8")) if data is None else data
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise StateError(
                f"{self.log_path} is corrupted{where}: not valid JSON. Restore it from a backup, "
                "or move it aside to start a new history (version files stay usable)."
            ) from exc
        bad = nonfinite_path(lenient) if data is None else None  # what the fast parser refused and json took
        if bad is not None:
            raise StateError(f"{self.log_path} is corrupted: {bad} holds NaN, an infinity or a number out of range. Restore it from a backup.")
        if not isinstance(lenient, dict):
            raise StateError(f"{self.log_path} is corrupted: it lacks the 'versions' list. Restore it from a backup or move it aside.")
        return lenient

    def write_log(self, data: dict) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._archive_oldest(data)
        data["format"] = LOG_FORMAT if data.get("archive") else 1  # older programs still read a log without archive
        data["updated_at"] = utc_now()
        atomic_write_bytes(self.log_path, dumps_log(data).encode("utf-8"))

    def _archive_oldest(self, data: dict) -> None:
        """Move all but the newest ``archive_keep`` versions and events to a new history/ file."""
        versions, events = data["versions"], data.setdefault("events", [])
        if len(versions) <= self.archive_at and len(events) <= self.archive_at:
            return
        if data.get("pending_promotion") or data.get("mlflow_pending"):  # finish those first (next write)
            return
        nv, ne = max(0, len(versions) - self.archive_keep), max(0, len(events) - self.archive_keep)
        names = data.setdefault("archive", [])
        name = f"{ARCHIVE_DIR}/version_log_{len(names) + 1:04d}.json"
        part = {"format": 1, "archived_from": LOG_NAME, "archived_at": utc_now(), "versions": versions[:nv], "events": events[:ne]}
        (self.models_dir / ARCHIVE_DIR).mkdir(exist_ok=True)
        atomic_write_bytes(self.models_dir / name, dumps_log(part).encode("utf-8"))  # before the log names it
        names.append(name)
        del versions[:nv], events[:ne]
        self._archive_cache = None
        log.info("Moved %d older versions and %d events from %s to %s", nv, ne, LOG_NAME, name)

    def archived(self, data: dict) -> dict:
        """The versions and events of the history/ files the log names, oldest first."""
        names = tuple(data.get("archive") or ())
        if self._archive_cache is None or self._archive_cache[0] != names:
            versions: list[dict] = []
            events: list[dict] = []
            for name in names:
                path = self.models_dir / name
                try:
                    part = _loads(path.read_bytes())
                    versions += part["versions"]
                    events += part["events"]
                except FileNotFoundError as exc:
                    raise StateError(f"{path} is missing; {self.log_path} names it as holding older versions. Restore it from a backup.") from exc
                except (ValueError, KeyError, TypeError) as exc:
                    raise StateError(f"{path} is corrupted (it holds older versions of {self.log_path}). Restore it from a backup.") from exc
            self._archive_cache = (names, {"versions": versions, "events": events})
        return self._archive_cache[1]

    def whole_log(self, data: dict) -> dict:
        """The log with its archived versions and events put back in front."""
        if not data.get("archive"):
            return data
        old = self.archived(data)
        return {**data, "versions": old["versions"] + data["versions"], "events": old["events"] + data["events"]}

    # -- versions -------------------------------------------------------------------
    ARTIFACTS: ClassVar[dict[str, tuple[str, str]]] = {
        "profile": ("profiles", "json"),
        "evaluation": ("evaluations", "npz"),
        "report": ("reports", "html"),
        "metadata": ("metadata", "json"),
        "ledger": ("ledgers", "npz"),  # the row keys it trained on and held out (retraining.guard.ledger)
    }

    def artifact_path(self, kind: str, version: str) -> Path:
        """Where a version's profile, holdout scores or report live (``models/reports/v1.2.0.html``)."""
        parse_version(version)
        folder, ext = self.ARTIFACTS[kind]
        return self.models_dir / folder / f"{version}.{ext}"

    def version_path(self, version: str) -> Path:
        parse_version(version)
        return self.models_dir / f"catboost_model_{version}.cbm"

    @staticmethod
    def latest(data: dict) -> dict | None:
        if not data["versions"]:
            return None
        return max(data["versions"], key=lambda e: parse_version(e["version"]))

    def find(self, data: dict, version: str) -> dict:
        """The log entry of ``version``; a clear error if malformed or unknown."""
        parse_version(version)
        for entry in data["versions"]:
            if entry["version"] == version:
                return entry
        for entry in self.archived(data)["versions"] if data.get("archive") else ():
            if entry["version"] == version:
                return entry
        known = ", ".join(e["version"] for e in data["versions"][-8:]) or "none yet"
        raise VersionNotFoundError(f"{version} is not in {self.log_path} (latest versions: {known}). See --history.")

    def verify(self, entry: dict) -> Path:
        """The version's file, after checking it exists and its sha256 matches the log."""
        path = self.version_path(entry["version"])
        if not path.is_file():
            raise StateError(f"{entry['version']}: its file {path} is missing; it cannot be promoted.")
        if sha256_file(path) != entry["sha256"]:
            raise StateError(f"{entry['version']}: {path} does not match the sha256 in the version log (the file was changed); refusing to promote it.")
        return path

    def full_entry(self, data: dict, version: str) -> dict:
        """Everything recorded about a version: its metadata file, else its log entry."""
        entry = self.find(data, version)
        path = self.artifact_path("metadata", version)
        if path.is_file():
            full = _loads(path.read_bytes())
            full.update({k: v for k, v in entry.items() if k in ("mlflow",)})
            return full
        return entry

    def add_version(self, data: dict, entry: VersionEntry, deploy_reason: str | None = None) -> dict | None:
        """Record a new version; with ``deploy_reason`` also deploy it (one log write fewer).

        The full entry goes to ``models/metadata/VERSION.json`` (written once); the log keeps
        the summary :meth:`VersionEntry.to_log_json` picks, so the log stays small as versions
        pile up. Returns the deploy event, if any. Call with the lock held.
        """
        meta = self.artifact_path("metadata", entry.version)
        meta.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(meta, entry.to_json())
        data["versions"].append(entry.to_log_json())
        if deploy_reason is None:
            self.write_log(data)
            return None
        return self._switch(data, entry.to_log_json(), deploy_reason, "deploy")  # the version and the intent, in one write

    def apply_mirror(self, data: dict, synced) -> None:
        """Record what an MLflow sync pushed (:class:`retraining.mlflow_sync.SyncResult`) and write the log."""
        for entry in data["versions"]:
            info = synced.versions.get(entry["version"])
            if info is not None:
                entry["mlflow"] = info
        if synced.registry_id:
            data["registry_id"] = synced.registry_id
        if synced.aliases is not None:
            data["mlflow_aliases"] = synced.aliases
        if synced.pending is None:
            data.pop("mlflow_pending", None)
        else:
            data["mlflow_pending"] = synced.pending
        self.write_log(data)

    # -- production -----------------------------------------------------------------
    def recover(self, data: dict) -> list[str]:
        """Tidy up after a killed run; call with the lock held. Returns what was done."""
        folders = [self.models_dir, self.models_dir / ARCHIVE_DIR] + [self.models_dir / f for f, _ in self.ARTIFACTS.values()]
        notes = [f"removed leftover temporary file {p.name}" for d in folders for p in remove_stale_temp_files(d)]
        if self.production_path.parent != self.models_dir:
            notes += [f"removed leftover temporary file {p.name}" for p in remove_stale_temp_files(self.production_path.parent)]
        pending = data.get("pending_promotion")
        if pending:
            notes.append(f"finishing the interrupted {pending['kind']} to {pending['to']}")
            self._complete(data, pending, interrupted=True)
        for note in notes:
            log.warning("Recovery: %s", note)
        return notes

    def promote(self, data: dict, version: str, reason: str, kind: str | None = None, details: dict | None = None) -> dict:
        """Make ``version`` production: back up, replace atomically, record the event.

        ``kind`` is ``deploy`` (after a retrain), ``rollback`` (to an older version) or
        ``promotion``; by default it is worked out from the versions. ``details`` (e.g. the
        monitor's numbers behind a rollback) go into the event. Call with the lock held.
        """
        entry = self.find(data, version)
        self.verify(entry)
        current = data.get("production")
        if kind is None:
            older = current is not None and parse_version(version) < parse_version(current)
            kind = "rollback" if older else "promotion"
        return self._switch(data, entry, reason, kind, details)

    def _switch(self, data: dict, entry: dict, reason: str, kind: str, details: dict | None = None) -> dict:
        """Record the intent to make ``entry`` production (one log write), then do it."""
        pending = {"kind": kind, "from": data.get("production"), "to": entry["version"], "sha256": entry["sha256"], "reason": reason, "started_at": utc_now()}
        if details:
            pending["details"] = details
        data["pending_promotion"] = pending
        self.write_log(data)
        return self._complete(data, pending, interrupted=False)

    def _complete(self, data: dict, pending: dict, interrupted: bool) -> dict:
        source = self.version_path(pending["to"])
        backup = None
        prod = self.production_path
        if not (prod.is_file() and sha256_file(prod) == pending["sha256"]):
            if sha256_file(source) != pending["sha256"]:
                raise StateError(f"{source} does not match the sha256 in the version log; restore it or promote another version.")
            if prod.is_file():
                backup = self._backup()
            prod.parent.mkdir(parents=True, exist_ok=True)
            atomic_copy(source, prod)
        event = Event(
            event=pending["kind"],
            from_=pending["from"],
            to=pending["to"],
            at=utc_now(),
            reason=pending["reason"] + (" (completed after an interrupted run)" if interrupted else ""),
            backup=backup.name if backup else None,
            extra={"details": pending["details"]} if pending.get("details") else {},
        ).to_json()
        data["production"] = pending["to"]
        data["pending_promotion"] = None
        data["events"].append(event)
        self.write_log(data)
        log.info("Production is now %s (%s) -> %s", pending["to"], pending["kind"], prod)
        return event

    def _backup(self) -> Path:
        """Copy production to a new timestamped backup, or reuse the newest backup when it is identical (a retry)."""
        newest = max(self.models_dir.glob("production_backup_*.cbm"), key=lambda p: p.stat().st_mtime_ns, default=None)
        same_size = newest is not None and newest.stat().st_size == self.production_path.stat().st_size
        if same_size and sha256_file(newest) == sha256_file(self.production_path):
            log.info("%s is already backed up as %s", self.production_path, newest.name)
            return newest
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self.models_dir / f"production_backup_{stamp}.cbm"
        n = 1
        while target.exists():
            target = self.models_dir / f"production_backup_{stamp}-{n}.cbm"
            n += 1
        atomic_copy(self.production_path, target)
        log.info("Backed up %s to %s", self.production_path, target)
        return target

    def production_entry(self, data: dict) -> dict | None:
        name = data.get("production")
        if not name:
            return None
        try:
            return self.find(data, name)
        except VersionNotFoundError:
            return None


try:  # orjson parses and writes a 10,000-version log several times faster than json
    import orjson

    def _loads(raw: bytes):
        return orjson.loads(raw)

    def _dumps(obj) -> str:
        return orjson.dumps(obj).decode("utf-8")

except ImportError:  # pragma: no cover - the standard library does the same, slower

    def _loads(raw: bytes):
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)

    def _refuse_constant(name: str):
        raise ValueError(f"{name} is not JSON")

    def _dumps(obj) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def dumps_log(data: dict) -> str:
    """The log as JSON with one line per version and per event: compact, yet diff- and grep-able."""
    lines = ["{"]
    head = [k for k in data if k not in ("versions", "events")]
    for key in head:
        lines.append(f"  {json.dumps(key)}: {_dumps(data[key])},")
    for key, last in (("events", False), ("versions", True)):
        items = data.get(key, [])
        body = ",\n".join("    " + _dumps(item) for item in items)
        lines.append(f"  {json.dumps(key)}: [" + ("\n" + body + "\n  ]" if items else "]") + ("" if last else ","))
    lines.append("}")
    return "\n".join(lines) + "\n"
