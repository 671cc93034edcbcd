"""Live A/B and shadow tests for serve.py, writing ab_test.py's prediction log.

Split mode assigns each entity with the same sticky rule as ``ab_test.py score``
(:func:`assign_arms` of the salted :func:`retraining.ab.predlog.entity_hashes`), so an entity
lands in the same arm in both, and ``ab_test.py analyze`` reads the live log unchanged.
The champion is whatever production is now (a deploy starts a new experiment, named
``CHAMPION-vs-CHALLENGER`` unless ``--experiment-id`` fixes it); the challenger is fixed.

Nothing here slows a response down more than it must: the request path assigns arms and
scores; hashing for the log, laying out lines and appending happen on the log thread, in
batches (one locked append per ``flush_interval``). In shadow mode the challenger scores on
its own thread from a bounded queue; when the queue is full the job is dropped and counted
(the served lines are still logged; ``analyze`` counts the missing shadow scores).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retraining.ab.experiment import assign_arms  # the one assignment rule, shared with ab_test.py score
from retraining.ab.predlog import CHALLENGER, CHAMPION, append_atomically, entity_hashes, fill_scores, layout
from retraining.errors import RetrainError
from retraining.serving.inputs import BadRequest, Table, rows_for
from retraining.serving.models import LoadedModel, now_iso

log = logging.getLogger(__name__)
ARMS = (CHAMPION, CHALLENGER)
SHADOW_BATCH = 512  # queued requests the shadow model scores in one call, at most
EXACT_FLOAT = 2.0**53  # a float id at or above this (or infinite) may not be the integer the client meant: refused
SHADOW_LINGER = 0.05  # seconds the shadow thread lets requests gather before one call scores them all


def _lower_priority() -> None:
    """Give the calling thread a lower CPU priority than the request path (Linux: threads have their own nice value)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


@dataclass
class _Entry:
    """Predictions waiting for the log: one request's rows (and one experiment's head)."""

    key: tuple  # experiment, share, (champion, challenger) versions, their sha256s, shadow block?
    at: str
    ids: list | None
    hashes: np.ndarray | None
    codes: np.ndarray
    scores: np.ndarray
    shadow: np.ndarray | None = None


class PredictionLog:
    """Appends predictions to the JSON-lines log from its own thread, in batches."""

    def __init__(self, path: Path, salt_of: Callable[[str], str], flush_interval: float = 0.2, max_rows: int = 1_000_000, on_drop=None) -> None:
        self.path = Path(path)
        self.salt_of = salt_of
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.on_drop = on_drop or (lambda rows: None)
        self.written = self.dropped = 0
        self._pending: list[_Entry] = []
        self._rows = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def put(self, entry: _Entry) -> None:
        with self._cond:
            if self._rows + len(entry.codes) > self.max_rows:
                self.dropped += len(entry.codes)
                self.on_drop(len(entry.codes))
                return
            self._pending.append(entry)
            self._rows += len(entry.codes)

    def close(self) -> None:
        """Write everything still pending, then stop the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stop:
                    self._cond.wait(self.flush_interval)
                batch, self._pending, self._rows = self._pending, [], 0
                stop = self._stop
            if batch:
                try:
                    self._write(batch)
                except (OSError, RetrainError) as exc:  # a full disk must not stop the service
                    self._lost(batch, exc)
                except Exception as exc:  # a bug must not end the logging for good: counted, logged with its traceback
                    log.exception("Unexpected error writing the prediction log")
                    self._lost(batch, exc)
            if stop:
                return

    def _lost(self, batch: list[_Entry], exc: Exception) -> None:
        lost = sum(len(e.codes) for e in batch)
        self.dropped += lost
        self.on_drop(lost)
        log.error("Could not append %d predictions to %s: %s", lost, self.path, exc)

    def _write(self, batch: list[_Entry]) -> None:
        blobs = []
        start = 0
        for end in range(1, len(batch) + 1):  # consecutive entries of one experiment share a head
            if end == len(batch) or batch[end].key != batch[start].key:
                blobs += self._lay_out(batch[start:end])
                start = end
        append_atomically(self.path, blobs)
        self.written += sum(len(e.codes) for e in batch)

    def _lay_out(self, group: list[_Entry]) -> list:
        experiment, share, versions, shas, with_shadow = group[0].key
        if group[0].hashes is not None:  # split mode hashed on the request path (the arms need them)
            hashes_all = np.concatenate([e.hashes for e in group])
        else:  # shadow mode: one hashing of the whole group's ids, here, off the request path
            hashes_all = entity_hashes([i for e in group for i in e.ids], self.salt_of(experiment))
        codes = np.concatenate([e.codes for e in group])
        arms_v, arms_s = dict(zip(ARMS, versions, strict=True)), dict(zip(ARMS, shas, strict=True))
        head = (uuid.uuid4().hex[:16], group[0].at, experiment, share)
        rows, at = layout(head, hashes_all, codes, arms_v, arms_s, [(CHAMPION, True), (CHALLENGER, True)])
        blobs = [fill_scores(rows, at, np.concatenate([e.scores for e in group]))]
        if with_shadow:
            rows, at = layout(head, hashes_all, np.ones_like(codes), arms_v, arms_s, [(CHAMPION, True), (CHALLENGER, False)])
            blobs.append(fill_scores(rows, at, np.concatenate([e.shadow for e in group])))
        return blobs


class LiveAB:
    """Split or shadow test of the production model against one fixed challenger."""

    def __init__(
        self,
        challenger: LoadedModel,
        *,
        share: float,
        shadow: bool,
        id_column: str,
        log: PredictionLog,
        salt: str | None = None,
        experiment_id: str | None = None,
        queue_size: int = 1024,
        count: Callable[[str, int], None] | None = None,
    ) -> None:
        self.challenger = challenger
        self.share, self.shadow, self.id_column = share, shadow, id_column
        self.log = log
        self.salt, self.experiment_id = salt, experiment_id
        self.count = count or (lambda what, n: None)
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._shadow_loop, name="shadow-scorer", daemon=True) if shadow else None
        if self._thread is not None:
            self._thread.start()

    def experiment(self, champion: LoadedModel) -> str:
        return self.experiment_id or f"{champion.version}-vs-{self.challenger.version}"

    def salt_of(self, experiment: str) -> str:
        return self.salt or experiment

    def active(self, champion: LoadedModel) -> bool:
        """False once production is the challenger itself (nothing left to compare)."""
        return champion.sha256 != self.challenger.sha256

    def _key(self, champion: LoadedModel, with_shadow: bool) -> tuple:
        versions = (champion.version, self.challenger.version)
        return (self.experiment(champion), None if self.shadow else self.share, versions, (champion.sha256, self.challenger.sha256), with_shadow)

    def ids(self, table: Table) -> list:
        """The entity ids of the rows; :class:`BadRequest` (422) if a row has none."""
        ids = table.column(self.id_column, "entity id")
        for n, v in enumerate(ids, start=1):
            t = type(v)
            if t is int or t is str:  # any size of int: its decimal text is hashed
                continue
            if t is float and abs(v) < EXACT_FLOAT:  # NaN fails the comparison too
                continue
            if t is float and v == v:
                raise BadRequest(422, f"row {n}: the entity id {self.id_column!r} is {v!r}, a number JSON cannot carry exactly; send ids this large as text.")
            raise BadRequest(422, f"row {n}: the entity id {self.id_column!r} must be a number or text (the A/B test assigns by it).")
        return ids

    def score(self, champion: LoadedModel, table: Table, rows: list[list]) -> tuple[np.ndarray, np.ndarray]:
        """Served scores and arm codes (1 = challenger) of the rows; logs them (and queues the shadow scoring)."""
        ids = self.ids(table)
        if self.shadow:
            scores = champion.score(rows)
            return scores, self.shadowed(champion, table, rows, ids, scores)
        return self.split(champion, table, rows, ids)

    def shadowed(self, champion: LoadedModel, table: Table, rows: list[list], ids: list, scores: np.ndarray) -> np.ndarray:
        """Queue the challenger's scoring of rows the champion scored; the arm codes (all champion)."""
        codes = np.zeros(len(rows), np.int8)
        self._enqueue_shadow(champion, table, rows, ids, scores, codes)
        self.count(CHAMPION, len(rows))
        return codes

    def split(self, champion: LoadedModel, table: Table, rows: list[list], ids: list) -> tuple[np.ndarray, np.ndarray]:
        """Assign each row's entity to an arm, score each arm with its model, log."""
        hashes = entity_hashes(ids, self.salt_of(self.experiment(champion)))
        codes = assign_arms(hashes, self.share)
        scores = np.empty(len(rows))
        for code, model in ((0, champion), (1, self.challenger)):
            index = np.flatnonzero(codes == code)
            if len(index) == 0:
                continue
            part = rows if model is champion or (model.features == champion.features and model.cat_indices == champion.cat_indices) else None
            if part is None:
                part = rows_for(table.take(index.tolist()), model.features, model.cat_indices, model.nan_ok)
            elif len(index) < len(rows):
                part = [part[i] for i in index]
            scores[index] = model.score(part)
            self.count(ARMS[code], len(index))
        self.log.put(_Entry(self._key(champion, False), now_iso(), None, hashes, codes, scores))
        return scores, codes

    # -- shadow ---------------------------------------------------------------------------
    def _enqueue_shadow(self, champion, table, rows, ids, scores, codes) -> None:
        entry = _Entry(self._key(champion, True), now_iso(), ids, None, codes, scores)
        try:
            self._jobs.put_nowait((champion, table, rows, entry))
        except queue.Full:
            self.count("shadow_dropped", len(rows))
            entry.key = self._key(champion, False)
            self.log.put(entry)

    def _shadow_loop(self) -> None:
        _lower_priority()
        while True:
            jobs = [self._jobs.get()]
            if jobs[0] is not None:
                time.sleep(SHADOW_LINGER)  # CatBoost's cost is per call more than per row: let requests gather
            while len(jobs) < SHADOW_BATCH:  # take what is waiting: one CatBoost call for many requests
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            done = None in jobs
            jobs = [job for job in jobs if job is not None]
            if jobs:
                self._score_shadow(jobs)
            if done:
                return

    def _score_shadow(self, jobs: list) -> None:
        """Challenger scores for queued requests, in one call; a request it cannot score is logged served-only."""
        model, ready = self.challenger, []
        for champion, table, rows, entry in jobs:
            try:
                same = model.features == champion.features and model.cat_indices == champion.cat_indices
                ready.append((rows if same else rows_for(table, model.features, model.cat_indices, model.nan_ok), champion, entry))
            except BadRequest as exc:
                self._shadow_failed(champion, entry, exc.message)
        if not ready:
            return
        try:
            scores = model.score([row for rows, _, _ in ready for row in rows])
        except Exception as exc:  # whatever CatBoost says, the service keeps serving: logged and counted
            for _, champion, entry in ready:
                self._shadow_failed(champion, entry, str(exc).strip())
            return
        start = 0
        for rows, _, entry in ready:
            entry.shadow, start = scores[start : start + len(rows)], start + len(rows)
            self.log.put(entry)
        self.count(CHALLENGER, start)

    def _shadow_failed(self, champion: LoadedModel, entry: _Entry, message: str) -> None:
        log.warning("The shadow model %s could not score a request: %s", self.challenger.version, message)
        self.count("shadow_failed", len(entry.codes))
        entry.key = self._key(champion, False)
        self.log.put(entry)

    def close(self) -> None:
        """Score the shadow jobs still queued (the queue is bounded), then stop."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
