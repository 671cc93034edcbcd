"""Requests that arrive together are scored together: one CatBoost call for several requests.

Most of the cost of scoring one row is CatBoost's per-call work (building a Pool, starting
the prediction), not the row. When several requests are ready in the same turn of the
event loop (concurrent clients), :class:`Batcher` scores all their rows in one call and
hands each request its slice. A lone request waits for nothing: its scoring is scheduled
with ``call_soon``, after the callbacks already queued, i.e. it runs in the same turn.
CatBoost scores each row on its own, so a row's score does not depend on its batch.
"""

from __future__ import annotations

import asyncio

import numpy as np

from retraining.serving.models import LoadedModel


class Batcher:
    """Collects ``(model, rows)`` of concurrent requests and scores each model's rows at once."""

    def __init__(self) -> None:
        self._pending: list[tuple[LoadedModel, list, asyncio.Future]] = []
        self.calls = self.requests = 0

    async def score(self, model: LoadedModel, rows: list[list]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((model, rows, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        groups: dict[int, list] = {}
        for item in pending:  # a reload between two requests: each keeps its own model
            groups.setdefault(id(item[0]), []).append(item)
        for group in groups.values():
            self._score(group)

    def _score(self, group: list) -> None:
        self.calls += 1
        self.requests += len(group)
        if len(group) > 1:
            try:
                scores = group[0][0].score([row for _, rows, _ in group for row in rows])
            except Exception:  # one request's rows broke the batch: each is scored alone below, so only that one fails
                scores = None
            if scores is not None:
                start = 0
                for _, rows, future in group:
                    _settle(future, result=scores[start : start + len(rows)])
                    start += len(rows)
                return
        for model, rows, future in group:
            try:
                _settle(future, result=model.score(rows))
            except Exception as exc:  # handed to the request that sent these rows
                _settle(future, exc=exc)


def _settle(future: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
