"""A second model scoring requests that were already answered: a bounded queue and one thread.

Used by the live shadow test (the challenger, :mod:`retraining.serving.ab`) and by the bake
period after a deploy (the previous production version, :mod:`retraining.serving.production`).
The request path only queues a job; the thread, at a lower CPU priority, lets jobs gather
for ``linger`` seconds and scores up to ``batch`` requests in one CatBoost call, then hands
each request's log entry (now holding the shadow scores) to the prediction log. A full
queue drops the job, and a request the shadow model cannot score is logged without its
shadow block (``entry.fallback`` is the key of the served lines alone); both are counted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable

from retraining.serving.inputs import BadRequest, rows_for

log = logging.getLogger(__name__)
SHADOW_BATCH = 512  # queued requests the shadow model scores in one call, at most
SHADOW_LINGER = 0.05  # seconds the shadow thread lets requests gather before one call scores them all


def lower_priority() -> None:
    """Give the calling thread a lower CPU priority than the request path (Linux: threads have their own nice value)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class Shadow:
    """Scores queued requests with a shadow model, off the request path, and logs them.

    ``labels`` name what :meth:`count` counts: (rows scored, jobs dropped, jobs failed).
    """

    def __init__(self, put: Callable, count: Callable[[str, int], None], labels: tuple[str, str, str], queue_size: int = 1024, name: str = "shadow") -> None:
        self.put = put
        self.count = count
        self.labels = labels
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, model, champion, table, rows: list[list], entry) -> None:
        """Queue ``model``'s scoring of ``rows`` (which ``champion`` scored); never waits."""
        try:
            self._jobs.put_nowait((model, champion, table, rows, entry))
        except queue.Full:
            self.count(self.labels[1], len(rows))
            entry.key = entry.fallback
            self.put(entry)

    def close(self) -> None:
        """Score the jobs still queued (the queue is bounded), then stop."""
        self._jobs.put(None)
        self._thread.join()

    def _loop(self) -> None:
        lower_priority()
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
            by_model: dict = {}
            for job in jobs:
                if job is not None:
                    by_model.setdefault(id(job[0]), []).append(job)
            for group in by_model.values():
                self._score(group[0][0], group)
            if done:
                return

    def _score(self, model, jobs: list) -> None:
        """Shadow scores for queued requests, in one call; a request it cannot score is logged served-only."""
        ready = []
        for _, champion, table, rows, entry in jobs:
            try:
                same = model.features == champion.features and model.cat_indices == champion.cat_indices
                ready.append((rows if same else rows_for(table, model.features, model.cat_indices, model.nan_ok), entry))
            except BadRequest as exc:
                self._failed(model, entry, exc.message)
        if not ready:
            return
        try:
            scores = model.score([row for rows, _ in ready for row in rows])
        except Exception as exc:  # whatever CatBoost says, the service keeps serving: logged and counted
            for _, entry in ready:
                self._failed(model, entry, str(exc).strip())
            return
        start = 0
        for rows, entry in ready:
            entry.shadow, start = scores[start : start + len(rows)], start + len(rows)
            self.put(entry)
        self.count(self.labels[0], start)

    def _failed(self, model, entry, message: str) -> None:
        log.warning("The shadow model %s could not score a request: %s", model.version, message)
        self.count(self.labels[2], len(entry.codes))
        entry.key = entry.fallback
        self.put(entry)
