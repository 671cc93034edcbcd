"""The production log of serve.py, the bake period after a deploy, sampled features.

With ``--id-column`` and no A/B test running, every prediction is logged in the A/B log's
line layout (:mod:`retraining.ab.predlog`) with experiment ``production``, variant
``production``, share null and the entity hashed with the salt ``production`` (or
``--salt``); the contract with the monitor is docs/monitoring.md.

The bake period: for ``bake_hours`` after the production version was deployed (the time of
the newest event of the version log that made it production), each request is also scored
by the version it replaced (the event's ``from``), in shadow, off the request path
(:class:`retraining.serving.shadow.Shadow`). Its lines have variant ``previous``, served
false, and the request ids of the production lines of the same rows. The window comes from
the version log, so a server (re)started inside it shadows too. The previous version's file
is checked against its sha256 in the log; if it is missing or changed there is no shadow,
and a warning says why.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retraining.ab.predlog import PREVIOUS, PRODUCTION, production_experiment
from retraining.errors import RetrainError
from retraining.records import Event
from retraining.registry import Registry
from retraining.serving.ab import Entry, PredictionLog, entity_ids
from retraining.serving.inputs import Table
from retraining.serving.models import LoadedModel, load_version
from retraining.serving.shadow import Shadow

log = logging.getLogger(__name__)
DEFAULT_BAKE_HOURS = 72.0
ARMS = (PRODUCTION, PREVIOUS)


@dataclass(frozen=True)
class Bake:
    """The bake window of one production version: the version it replaced, loaded, and the window's end."""

    version: str  # the production version that is baking
    sha256: str
    previous: LoadedModel
    started: float  # epoch seconds: the deploy's time in the version log
    until: float


def bake_event(registry: Registry, version: str) -> Event | None:
    """The newest event of the version log that made ``version`` production (deploy, promotion or rollback).

    A promotion of the version already in production (``from`` == ``to``) changed no model and
    is passed over: the bake window runs from the event that brought the version in.
    """
    data = registry.read_log()
    for raw in reversed(registry.whole_log(data)["events"]):
        if raw.get("to") == version and raw.get("from") != version:
            return Event.from_json(raw)
    return None


def epoch(at: str) -> float:
    """Seconds since the epoch of a version log time (``2026-12-06T02:00:00Z``)."""
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


class ProductionLogger:
    """Logs production predictions; during a bake window also the previous version's, in shadow."""

    def __init__(
        self,
        registry: Registry,
        plog: PredictionLog,
        *,
        id_column: str,
        salt: str | None = None,
        bake_hours: float = DEFAULT_BAKE_HOURS,
        features_rate: float = 0.0,
        queue_size: int = 1024,
        count: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry, self.log, self.id_column = registry, plog, id_column
        self.experiment = production_experiment(salt)
        self.bake_hours, self.features_rate, self.clock = bake_hours, features_rate, clock
        self.count = count or (lambda what, n: None)
        self.bake: Bake | None = None
        self._shadow = Shadow(plog.put, self.count, (PREVIOUS, "dropped", "failed"), queue_size, name="bake-shadow") if bake_hours > 0 else None

    def ids(self, table: Table) -> list:
        """The entity ids of the rows; a 422 if a row has none."""
        return entity_ids(table, self.id_column, "serve.py --id-column logs every prediction by it")

    def _key(self, model: LoadedModel, previous: LoadedModel | None) -> tuple:
        other = previous or model
        return (self.experiment, None, (model.version, other.version), (model.sha256, other.sha256), previous is not None, ARMS)

    def record(self, model: LoadedModel, table: Table, rows: list[list], ids: list, scores: np.ndarray) -> None:
        """Log the rows ``model`` scored (on the request path: no hashing, no I/O here)."""
        features = (model.version, model.features, rows, self.features_rate) if self.features_rate > 0 else None
        plain = self._key(model, None)
        entry = Entry(plain, time.time(), ids, None, np.zeros(len(rows), np.int8), scores, fallback=plain, features=features, table=table)
        bake = self.baking(model)
        if bake is None:
            self.log.put(entry)
            return
        entry.key = self._key(model, bake.previous)
        self._shadow.submit(bake.previous, model, table, rows, entry)

    def baking(self, model: LoadedModel) -> Bake | None:
        """The bake of the model being served, while its window lasts."""
        bake = self.bake
        if bake is None or bake.sha256 != model.sha256:
            return None
        if self.clock() >= bake.until:
            self.bake = None
            log.info("The bake window of %s is over: %s is no longer scored in shadow", bake.version, bake.previous.version)
            return None
        return bake

    def describe(self, model: LoadedModel) -> dict | None:
        """The bake window now (for /health): the version baking, the previous one in shadow, the window's end."""
        bake = self.baking(model)
        if bake is None:
            return None
        until = dt.datetime.fromtimestamp(bake.until, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"version": bake.version, "previous": bake.previous.version, "previous_sha256": bake.previous.sha256, "until": until}

    def production_changed(self, model: LoadedModel | None) -> None:
        """After a reload or a change of the version log: find the bake window of ``model`` (watcher thread)."""
        if self._shadow is None or model is None:
            return
        bake = self.bake
        if bake is not None and bake.sha256 == model.sha256:
            return  # already baking this one
        try:
            self.bake = self._find_bake(model)
        except RetrainError as exc:
            log.warning("No bake shadow for %s: %s", model.version, exc)
            self.bake = None

    def _find_bake(self, model: LoadedModel) -> Bake | None:
        event = bake_event(self.registry, model.version)
        if event is None or not event.from_ or event.from_ == model.version:
            return None
        started = epoch(event.at)
        until = started + self.bake_hours * 3600
        if self.clock() >= until:
            return None
        try:
            previous = load_version(self.registry, event.from_)
        except RetrainError as exc:
            log.warning("No bake shadow for %s: the previous version cannot be used: %s", model.version, exc)
            return None
        left = (until - self.clock()) / 3600
        log.info("Bake window of %s (%s at %s): scoring %s in shadow for %.3g more hours", model.version, event.event, event.at, previous.version, left)
        return Bake(model.version, model.sha256, previous, started, until)

    def close(self) -> None:
        """Score the shadow jobs still queued, then stop (the log is closed by its owner)."""
        if self._shadow is not None:
            self._shadow.close()
