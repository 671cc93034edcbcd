"""The model side of serve.py: load a version, watch the production file, swap atomically.

A :class:`ModelWatcher` runs one thread per server process. Every ``interval`` seconds (and
at once on :meth:`ModelWatcher.wake`, which SIGHUP calls) it compares the production
file's and the version log's stat with the last look. When either changed it reads the
production file once, hashes those bytes and looks the hash up in the version log: it must
be the sha256 of the production version, or of the version a promotion is switching to
(``pending_promotion``: the registry replaces the file between its two log writes). Only
then does CatBoost load those same bytes, a warm-up row is scored, and the new
:class:`LoadedModel` replaces the old one with one reference assignment. A request reads
``watcher.current`` once and scores with it, so requests already running finish on the
model they started with, and every response names the version that scored it.

``on_change(outcome, detail)`` hears of every look that found a change: ``loaded``,
``renamed``, ``failed``, ``recovered``, or ``unchanged`` (the log changed, the production file
did not: the bake period reads the deploy's event from the log then).

A failed load (a torn file, a checksum the log does not know, a file CatBoost refuses)
keeps the old model, is logged, and shows in :attr:`ModelWatcher.last_error` (served by
/health) and in the failed-reload counter. It is retried when the file or the log changes
again, or on SIGHUP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retraining.errors import RetrainError, StateError
from retraining.registry import Registry

log = logging.getLogger(__name__)
BIG_BATCH = 2000  # rows; smaller batches score on one thread (less overhead than waking more)


def now_iso() -> str:
    return iso_time(time.time())


def iso_time(seconds: float) -> str:
    """A ``time.time()`` as UTC text to the millisecond (the request path takes the clock, the log thread writes it)."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LoadedModel:
    """One loaded version: what it needs, and the CatBoost model that scores it."""

    version: str
    sha256: str
    loaded_at: str
    features: tuple[str, ...]
    cat_indices: frozenset[int]
    nan_ok: bool
    model: object = field(repr=False, compare=False)

    @property
    def categorical_features(self) -> list[str]:
        return [f for i, f in enumerate(self.features) if i in self.cat_indices]

    def score(self, rows: list[list]) -> np.ndarray:
        """Positive-class probabilities of rows laid out in ``features`` order."""
        from catboost import Pool

        pool = Pool(rows, cat_features=sorted(self.cat_indices))
        return self.model.predict_proba(pool, thread_count=1 if len(rows) < BIG_BATCH else -1)[:, 1]

    def describe(self) -> dict:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "loaded_at": self.loaded_at,
            "features": list(self.features),
            "categorical_features": self.categorical_features,
        }


def load_blob(blob: bytes, version: str, sha256: str, where: str) -> LoadedModel:
    """CatBoost-load ``blob`` and score one warm-up row; :class:`StateError` if it cannot."""
    from catboost import CatBoostClassifier, CatBoostError

    model = CatBoostClassifier()
    try:
        model.load_model(blob=blob)
    except (CatBoostError, ValueError) as exc:
        raise StateError(f"{where}: CatBoost cannot load it ({str(exc).strip().splitlines()[-1][:160]}).") from exc
    names = tuple(model.feature_names_ or ())
    if not names:
        raise StateError(f"{where}: the model has no feature names; train it from a frame with named columns.")
    cats = frozenset(model.get_cat_feature_indices())
    nan_ok = str(model.get_all_params().get("nan_mode", "Min")) != "Forbidden"
    loaded = LoadedModel(version, sha256, now_iso(), names, cats, nan_ok, model)
    loaded.score([["" if i in cats else 0.0 for i in range(len(names))]])  # the first prediction pays CatBoost's set-up
    return loaded


def load_version(registry: Registry, version: str) -> LoadedModel:
    """A version of the registry (a challenger), checked against its sha256 in the log."""
    entry = registry.find(registry.read_log(), version)
    path = registry.version_path(version)
    if not path.is_file():
        raise StateError(f"{version}: its file {path} is missing; it cannot be served.")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise StateError(f"{version}: {path} does not match the sha256 in the version log (the file was changed); refusing to serve it.")
    return load_blob(blob, version, entry["sha256"], f"{path} ({version})")


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class ModelWatcher:
    """The production model of one server process, reloaded when the file changes."""

    def __init__(self, registry: Registry, interval: float = 2.0, on_change: Callable[[str, str | None], None] | None = None) -> None:
        self.registry = registry
        self.interval = interval
        self.on_change = on_change or (lambda outcome, detail: None)
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.last_check_at: str | None = None
        self.reloads = 0
        self.failed_reloads = 0
        self._seen: tuple | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one check at a time (the thread, SIGHUP, startup)
        self._thread: threading.Thread | None = None

    # -- the loop ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        """Check now (SIGHUP), even if nothing seems to have changed."""
        self._seen = None
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:  # a bug must not end the watching: logged with its traceback
                log.exception("The model watcher hit an unexpected error; it keeps watching")

    # -- one look ------------------------------------------------------------------------
    def check(self) -> bool:
        """Load the production file if it or the log changed; True if a new model was swapped in."""
        with self._lock:
            seen = (_stat(self.registry.production_path), _stat(self.registry.log_path))
            self.last_check_at = now_iso()
            if seen == self._seen:
                return False
            self._seen = seen
            try:
                loaded = self._load_production()
            except RetrainError as exc:
                self._failed(str(exc))
                return False
            if loaded is None:  # the file we serve (again): a torn or foreign file was put right, or only the log changed
                recovered = self.last_error is not None
                self.last_error = self.last_error_at = None
                self.on_change("recovered" if recovered else "unchanged", self.current.version if self.current else None)
                return False
            previous, self.current = self.current, loaded
            self.last_error = self.last_error_at = None
            if previous is not None:
                self.reloads += 1
            was = f", was {previous.version}" if previous else ""
            log.info("Serving %s (sha256 %s) from %s%s", loaded.version, loaded.sha256[:12], self.registry.production_path, was)
            self.on_change("loaded", loaded.version)
            return True

    def _failed(self, message: str) -> None:
        self.failed_reloads += 1
        self.last_error, self.last_error_at = message, now_iso()
        keep = f"; still serving {self.current.version}" if self.current else "; no model is being served yet"
        log.error("Reload failed: %s%s", message, keep)
        self.on_change("failed", message)

    def _load_production(self) -> LoadedModel | None:
        path = self.registry.production_path
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise StateError(f"{path} does not exist; deploy a model with retrain_model.py first.") from exc
        except OSError as exc:
            raise StateError(f"{path} cannot be read: {exc.strerror or exc}.") from exc
        sha = hashlib.sha256(blob).hexdigest()
        version = self._version_of(sha)
        current = self.current
        if current is not None and current.sha256 == sha:
            if current.version != version:  # the same bytes registered under a new name
                self.current = LoadedModel(version, sha, now_iso(), current.features, current.cat_indices, current.nan_ok, current.model)
                log.info("Serving %s: the same file as %s", version, current.version)
                self.on_change("renamed", version)
            return None
        return load_blob(blob, version, sha, f"{path} ({version})")

    def _version_of(self, sha: str) -> str:
        """The version whose sha256 the log records for the production file; StateError if none."""
        data = self.registry.read_log()
        pending = data.get("pending_promotion") or {}
        if pending.get("sha256") == sha:
            return pending["to"]
        name = data.get("production")
        if name is None:
            raise StateError(f"{self.registry.log_path} names no production version; deploy with retrain_model.py (or --promote VERSION).")
        entry = self.registry.find(data, name)
        if entry["sha256"] != sha:
            raise StateError(
                f"{self.registry.production_path} has sha256 {sha[:12]}..., but the version log says production is {name} "
                f"with {entry['sha256'][:12]}... (a torn or foreign file); restore it with retrain_model.py --promote {name}"
            )
        return name
