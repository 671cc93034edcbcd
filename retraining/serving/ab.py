"""Live A/B and shadow tests for serve.py, writing ab_test.py's prediction log.

Split mode assigns each entity with the same sticky rule as ``ab_test.py score``
(:func:`assign_arms` of the salted :func:`retraining.ab.predlog.entity_hashes`), so an entity
lands in the same arm in both, and ``ab_test.py analyze`` reads the live log unchanged.
The champion is whatever production is now (a deploy starts a new experiment, named
``CHAMPION-vs-CHALLENGER`` unless ``--experiment-id`` fixes it); the challenger is fixed.

Nothing here slows a response down more than it must: the request path assigns arms and
scores; hashing for the log, laying out lines and appending happen on the log thread, in
batches (one locked append per ``flush_interval``). In shadow mode the challenger scores on
its own thread from a bounded queue (:class:`retraining.serving.shadow.Shadow`); when the
queue is full the job is dropped and counted (the served lines are still logged;
``analyze`` counts the missing shadow scores).

:class:`PredictionLog` is also the writer of the production log
(:mod:`retraining.serving.production`): an :class:`Entry` names its arms, so the same
thread, lock and layout write production and bake shadow lines, and sampled features.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retraining.ab.experiment import assign_arms  # the one assignment rule, shared with ab_test.py score
from retraining.ab.logfiles import Rotation, rotate_if_due
from retraining.ab.predlog import CHALLENGER, CHAMPION, append_atomically, entity_hashes, feature_lines, fill_scores, layout
from retraining.ab.rowkeys import KeyBook, columns_in_every_row, table_keys
from retraining.errors import RetrainError
from retraining.serving.inputs import BadRequest, Table, rows_for
from retraining.serving.models import LoadedModel, iso_time
from retraining.serving.shadow import Shadow

log = logging.getLogger(__name__)
ARMS = (CHAMPION, CHALLENGER)
EXACT_FLOAT = 2.0**53  # a float id at or above this (or infinite) may not be the integer the client meant: refused


@dataclass
class Entry:
    """Predictions waiting for the log: one request's rows (and one experiment's head)."""

    key: tuple  # experiment, share, versions of the arms, their sha256s, shadow block?, the arms' names
    at: float  # time.time() when scored; the log thread writes it as text (iso_time)
    ids: list | None
    hashes: np.ndarray | None
    codes: np.ndarray
    scores: np.ndarray
    shadow: np.ndarray | None = None
    fallback: tuple | None = None  # the key without the shadow block, if the shadow scores never come
    features: tuple | None = None  # (version, feature names, rows, sampling rate): sampled feature lines
    table: Table | None = None  # the request's rows, for each line's ledger key (computed on the log thread)


def entity_ids(table: Table, column: str, why: str) -> list:
    """The entity ids of the rows; :class:`BadRequest` (422) if a row has none."""
    ids = table.column(column, "entity id")
    for n, v in enumerate(ids, start=1):
        t = type(v)
        if t is int or t is str:  # any size of int: its decimal text is hashed
            continue
        if t is float and abs(v) < EXACT_FLOAT:  # NaN fails the comparison too
            continue
        if t is float and v == v:
            raise BadRequest(422, f"row {n}: the entity id {column!r} is {v!r}, a number JSON cannot carry exactly; send ids this large as text.")
        raise BadRequest(422, f"row {n}: the entity id {column!r} must be a number or text ({why}).")
    return ids


class PredictionLog:
    """Appends predictions to the JSON-lines log from its own thread, in batches.

    With ``rotation`` the log (and the sampled feature log ``features_path``) is rotated
    before an append when due (:mod:`retraining.ab.logfiles`).
    """

    def __init__(
        self,
        path: Path,
        salt_of: Callable[[str], str],
        flush_interval: float = 0.2,
        max_rows: int = 1_000_000,
        on_drop=None,
        rotation: Rotation | None = None,
        features_path: Path | None = None,
        keys: KeyBook | None = None,
    ) -> None:
        self.path = Path(path)
        self.keys = keys  # the versions' row-key specs: each line's "key" (None: every key null)
        self.salt_of = salt_of
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.on_drop = on_drop or (lambda rows: None)
        self.rotation = rotation or Rotation()
        self.features_path = Path(features_path) if features_path else self.path.with_name("features.jsonl")
        self.written = self.dropped = 0
        self._pending: list[Entry] = []
        self._rows = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def put(self, entry: Entry) -> None:
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

    def _lost(self, batch: list[Entry], exc: Exception) -> None:
        lost = sum(len(e.codes) for e in batch)
        self.dropped += lost
        self.on_drop(lost)
        log.error("Could not append %d predictions to %s: %s", lost, self.path, exc)

    def _write(self, batch: list[Entry]) -> None:
        blobs: list = []
        features: list = []
        start = 0
        for end in range(1, len(batch) + 1):  # consecutive entries of one experiment share a head
            if end == len(batch) or batch[end].key != batch[start].key:
                blobs += self._lay_out(batch[start:end], features)
                start = end
        rotate_if_due(self.path, self.rotation)
        append_atomically(self.path, blobs)
        self.written += sum(len(e.codes) for e in batch)
        if features:
            rotate_if_due(self.features_path, self.rotation)
            append_atomically(self.features_path, features)

    def _lay_out(self, group: list[Entry], features: list) -> list:
        experiment, share, versions, shas, with_shadow, arms = group[0].key
        if group[0].hashes is not None:  # split mode hashed on the request path (the arms need them)
            hashes_all = np.concatenate([e.hashes for e in group])
        else:  # shadow and production: one hashing of the whole group's ids, here, off the request path
            hashes_all = entity_hashes([i for e in group for i in e.ids], self.salt_of(experiment))
        codes = np.concatenate([e.codes for e in group])
        arms_v, arms_s = dict(zip(arms, versions, strict=True)), dict(zip(arms, shas, strict=True))
        head = (uuid.uuid4().hex[:16], iso_time(group[0].at), experiment, share)
        keys = self._row_keys(group, arms_v)
        rows, at = layout(head, hashes_all, codes, arms_v, arms_s, [(arms[0], True), (arms[1], True)], keys)
        blobs = [fill_scores(rows, at, np.concatenate([e.scores for e in group]))]
        if with_shadow:
            rows, at = layout(head, hashes_all, np.ones_like(codes), arms_v, arms_s, [(arms[0], True), (arms[1], False)], keys)
            blobs.append(fill_scores(rows, at, np.concatenate([e.shadow for e in group])))
        offset = 0
        for e in group:
            if e.features is not None:
                features.append(feature_lines(iso_time(e.at), e.features[0], hashes_all[offset : offset + len(e.codes)], *e.features[1:]))
            offset += len(e.codes)
        return blobs

    def _row_keys(self, group: list[Entry], versions: dict) -> dict | None:
        """Each arm's ledger key of the group's rows under its version (None without a key book)."""
        if self.keys is None or any(e.table is None for e in group):
            return None
        tables = [e.table for e in group]
        done: dict = {}
        for version in set(versions.values()):
            spec = self.keys.spec(version)
            if spec.rule not in done:  # both versions usually key rows alike: hashed once
                done[spec.rule] = table_keys(spec, tables)
            if not done[spec.rule][1].all():
                self.keys.warn_unkeyed(spec, columns_in_every_row(tables), done[spec.rule][1])
        return {arm: done[self.keys.spec(version).rule] for arm, version in versions.items()}


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
        self._shadow = Shadow(log.put, self.count, (CHALLENGER, "shadow_dropped", "shadow_failed"), queue_size) if shadow else None

    def experiment(self, champion: LoadedModel) -> str:
        return self.experiment_id or f"{champion.version}-vs-{self.challenger.version}"

    def salt_of(self, experiment: str) -> str:
        return self.salt or experiment

    def active(self, champion: LoadedModel) -> bool:
        """False once production is the challenger itself (nothing left to compare)."""
        return champion.sha256 != self.challenger.sha256

    def _key(self, champion: LoadedModel, with_shadow: bool) -> tuple:
        versions = (champion.version, self.challenger.version)
        return (self.experiment(champion), None if self.shadow else self.share, versions, (champion.sha256, self.challenger.sha256), with_shadow, ARMS)

    def ids(self, table: Table) -> list:
        """The entity ids of the rows; :class:`BadRequest` (422) if a row has none."""
        return entity_ids(table, self.id_column, "the A/B test assigns by it")

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
        self.log.put(Entry(self._key(champion, False), time.time(), None, hashes, codes, scores, table=table))
        return scores, codes

    # -- shadow ---------------------------------------------------------------------------
    def _enqueue_shadow(self, champion, table, rows, ids, scores, codes) -> None:
        entry = Entry(self._key(champion, True), time.time(), ids, None, codes, scores, fallback=self._key(champion, False), table=table)
        self._shadow.submit(self.challenger, champion, table, rows, entry)

    def close(self) -> None:
        """Score the shadow jobs still queued (the queue is bounded), then stop."""
        if self._shadow is not None:
            self._shadow.close()
