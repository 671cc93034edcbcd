"""The HTTP service of serve.py: a plain ASGI application run by uvicorn.

Endpoints::

    POST /predict, /invocations   rows -> {"predictions": [...], "version": ...} (+ arms under A/B)
    GET  /health                  200 while the process lives (what the last reload did, the bake window)
    GET  /ready, /ping            200 once a model is loaded, else 503
    GET  /version                 version, sha256, loaded_at, features (and the challenger)
    GET  /metrics                 Prometheus text

No framework: measured on this project's 2-core machine, a trivial endpoint as a Starlette
route answered 1.4-2.1x fewer requests than as a plain ASGI app (bench/README.md,
"Serving"), and five routes need none of Starlette's routing. Every response is JSON built with orjson; every refusal is a 4xx with
``{"error": "..."}`` naming the problem; a bug is logged with its traceback and answered 500.

With ``--id-column`` every production prediction is logged, and after a deploy the previous
version scores in shadow for the bake window (:mod:`retraining.serving.production`).

Each server process (uvicorn worker) builds one :class:`App` from the :class:`ServeConfig`
that serve.py hands over in the environment (``CATBOOST_SERVE_CONFIG``), and runs its own
:class:`~retraining.serving.models.ModelWatcher`, so every worker reloads by itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import orjson

from retraining.ab.logfiles import Rotation
from retraining.ab.predlog import production_experiment, production_salt
from retraining.ab.rowkeys import KeyBook
from retraining.errors import RetrainError
from retraining.registry import Registry
from retraining.serving.ab import ARMS, LiveAB, PredictionLog
from retraining.serving.batch import Batcher
from retraining.serving.guard import pool_stats
from retraining.serving.inputs import BadRequest, Table, decode, rows_for
from retraining.serving.metrics import Metrics
from retraining.serving.models import LoadedModel, ModelWatcher, load_version, now_iso
from retraining.serving.production import DEFAULT_BAKE_HOURS, ProductionLogger

log = logging.getLogger(__name__)
CONFIG_ENV = "CATBOOST_SERVE_CONFIG"
SWITCH_INTERVAL = 0.0005  # s; a request waits at most this for the GIL a background thread holds (Python's default: 0.005)
THREAD_BYTES = 256 * 1024  # bodies at least this big are parsed and scored off the event loop
JSON = (b"content-type", b"application/json")
ROUTES = {
    "/predict": ("predict", "POST"),
    "/invocations": ("predict", "POST"),
    "/health": ("health", "GET"),
    "/ready": ("ready", "GET"),
    "/ping": ("ready", "GET"),
    "/version": ("version", "GET"),
    "/metrics": ("metrics", "GET"),
}


@dataclass
class ServeConfig:
    """Everything a server process needs; plain values, so it travels as JSON to the workers."""

    models_dir: str = "models"
    production: str = "catboost_model.cbm"
    reload_interval: float = 2.0
    max_body_bytes: int = 10 * 1024 * 1024
    challenger: str | None = None
    share: float = 0.1
    shadow: bool = False
    id_column: str | None = None
    salt: str | None = None
    experiment_id: str | None = None
    log_path: str | None = None
    log_flush_interval: float = 0.2
    shadow_queue: int = 1024
    bake_hours: float = DEFAULT_BAKE_HOURS  # 0: no bake shadow
    log_features: float = 0.0
    log_rotate_bytes: int | None = None
    log_rotate_daily: bool = False

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**orjson.loads(text))


class App:
    """One server process: the production model, the optional A/B test, the endpoints."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.registry = Registry(config.models_dir, config.production)
        self.metrics = Metrics()
        self.watcher = ModelWatcher(self.registry, config.reload_interval, self._model_changed)
        self.batcher = Batcher()
        self.ab: LiveAB | None = None
        self.plog: PredictionLog | None = None
        self.production: ProductionLogger | None = None  # the production log (--id-column), when no A/B test is active
        self.started_at = now_iso()

    # -- life cycle -----------------------------------------------------------------------
    def startup(self) -> None:
        """Load production (a failure leaves /ready at 503 and the watcher retrying), start watching."""
        sys.setswitchinterval(SWITCH_INTERVAL)
        if self.config.id_column:
            self._start_log()
        self.watcher.check()
        self.watcher.start()
        if self.config.challenger:
            self._start_ab()

    def listen_for_sighup(self) -> None:
        """SIGHUP: check the production file now. Windows has no SIGHUP: polling only there."""
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda signum, frame: self.watcher.wake())

    def _start_log(self) -> None:
        c = self.config
        rotation = Rotation(c.log_rotate_bytes, c.log_rotate_daily)
        self.plog = PredictionLog(
            Path(c.log_path), self._salt_of, c.log_flush_interval, on_drop=self.metrics.log_dropped.inc, rotation=rotation, keys=KeyBook(self.registry)
        )
        self.production = ProductionLogger(
            self.registry,
            self.plog,
            id_column=c.id_column,
            salt=c.salt,
            bake_hours=c.bake_hours,
            features_rate=c.log_features,
            queue_size=c.shadow_queue,
            count=lambda what, n: self.metrics.bake_rows.labels(what).inc(n),
        )

    def _start_ab(self) -> None:
        c = self.config
        challenger = load_version(self.registry, c.challenger)
        self.ab = LiveAB(
            challenger,
            share=c.share,
            shadow=c.shadow,
            id_column=c.id_column,
            log=self.plog,
            salt=c.salt,
            experiment_id=c.experiment_id,
            queue_size=c.shadow_queue,
            count=lambda arm, n: self.metrics.ab_rows.labels(arm).inc(n),
        )

    def _salt_of(self, experiment: str) -> str:
        if experiment == production_experiment(self.config.salt):
            return production_salt(experiment)
        return self.ab.salt_of(experiment) if self.ab else experiment

    def shutdown(self) -> None:
        """After the last request: stop watching, score queued shadow jobs, flush the log."""
        self.watcher.stop()
        if self.ab is not None:
            self.ab.close()
        if self.production is not None:
            self.production.close()
        if self.plog is not None:
            self.plog.close()
            log.info("Prediction log flushed: %d predictions written to %s this run", self.plog.written, self.plog.path)
        self.metrics.process_exited()

    def _model_changed(self, outcome: str, detail: str | None) -> None:
        if outcome == "failed":
            self.metrics.reload_failed()
            return
        current = self.watcher.current
        if self.production is not None:
            self.production.production_changed(current)
        if outcome == "unchanged":
            return
        if outcome == "loaded" and self.watcher.reloads:
            self.metrics.reloads.inc()
        if current is not None:
            self.metrics.serving(current.version, current.sha256)

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self.startup)
                except RetrainError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.listen_for_sighup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        route = ROUTES.get(path)
        try:
            status, payload, headers = await self._route(scope, receive, route)
        except asyncio.CancelledError:  # SIGTERM's graceful timeout ran out while this request waited (a slow upload)
            status, payload = 503, orjson.dumps({"error": "the service is shutting down; send the request again."})
            headers = [JSON, (b"connection", b"close")]  # and the task ends here: uvicorn cancelled it to exit, nothing awaits it
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        self.metrics.observe(path if route else "other", status, time.perf_counter() - started)

    async def _route(self, scope, receive, route) -> tuple[int, bytes, list]:
        """The answer to one request: a 4xx for what the client got wrong, a 500 (logged) for a bug."""
        path = scope["path"]
        try:
            if route is None:
                raise BadRequest(404, f"no endpoint {path}; the service answers POST /predict (or /invocations), GET /health, /ready, /version, /metrics.")
            if scope["method"] != route[1]:
                raise BadRequest(405, f"{path} takes {route[1]}, not {scope['method']}.")
            if route[0] == "predict":
                body = await _read_body(scope, receive, self.config.max_body_bytes)
                return await self._predict(body)
            return self._get(route[0])
        except BadRequest as exc:
            return exc.status, orjson.dumps({"error": exc.message}), [JSON]
        except Exception:  # a bug: logged with its traceback, answered 500, and the process keeps serving
            log.exception("Unexpected error answering %s %s", scope["method"], path)
            return 500, orjson.dumps({"error": "internal error (logged by the service)"}), [JSON]

    # -- POST /predict --------------------------------------------------------------------
    async def _predict(self, body: bytes) -> tuple[int, bytes, list]:
        model = self.watcher.current
        if model is None:
            why = f": {self.watcher.last_error}" if self.watcher.last_error else ""
            raise BadRequest(503, f"no model is loaded yet{why}")
        if len(body) >= THREAD_BYTES:  # big: parse and score on a thread, so the loop keeps answering
            return await asyncio.to_thread(self._predict_here, model, body)
        table = decode(body)
        rows = rows_for(table, model.features, model.cat_indices, model.nan_ok)
        ab = self._ab(model)
        if ab is not None and not ab.shadow:
            return self._answer(model, table, *_catboost(ab.score, model, table, rows), ab)
        ids = ab.ids(table) if ab is not None else self.production.ids(table) if self.production is not None else None
        scores = await _scored(self.batcher.score(model, rows))
        codes = ab.shadowed(model, table, rows, ids, scores) if ab is not None else None
        if ab is None and self.production is not None:
            self.production.record(model, table, rows, ids, scores)
        return self._answer(model, table, scores, codes, ab)

    def _predict_here(self, model: LoadedModel, body: bytes) -> tuple[int, bytes, list]:
        table = decode(body)
        rows = rows_for(table, model.features, model.cat_indices, model.nan_ok)
        ab = self._ab(model)
        if ab is None:
            ids = self.production.ids(table) if self.production is not None else None
            scores = _catboost(model.score, rows)
            if self.production is not None:
                self.production.record(model, table, rows, ids, scores)
            return self._answer(model, table, scores, None, None)
        return self._answer(model, table, *_catboost(ab.score, model, table, rows), ab)

    def _ab(self, model: LoadedModel) -> LiveAB | None:
        return self.ab if self.ab is not None and self.ab.active(model) else None

    def _answer(self, model: LoadedModel, table: Table, scores: np.ndarray, codes: np.ndarray | None, ab: LiveAB | None) -> tuple[int, bytes, list]:
        self.metrics.rows.labels(model.version).inc(len(scores))
        out: dict = {"predictions": scores, "version": model.version}
        scored_by = model.version
        if ab is not None:
            out["experiment"] = ab.experiment(model)
            out["arms"] = np.array(ARMS)[codes].tolist()
            if ab.shadow:
                out["shadow"] = ab.challenger.version
            else:
                out["versions"] = np.array([model.version, ab.challenger.version])[codes].tolist()
                scored_by = ",".join(sorted(set(out["versions"])))
        headers = [JSON, (b"x-model-version", scored_by.encode())]
        ignored = self._ignored(table, model)
        if ignored:
            headers.append((b"x-ignored-columns", quote(",".join(ignored), safe=",").encode()))
        return 200, orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), headers

    def _ignored(self, table: Table, model: LoadedModel) -> list[str]:
        used = set(model.features)
        if self.ab is not None:
            used.update(self.ab.challenger.features)
        if self.config.id_column:
            used.add(self.config.id_column)
        return sorted(str(c) for c in table.names() - used)

    # -- GET ------------------------------------------------------------------------------
    def _get(self, what: str) -> tuple[int, bytes, list]:
        if what == "metrics":
            text, content_type = self.metrics.render()
            return 200, text, [(b"content-type", content_type.encode())]
        model = self.watcher.current
        if what == "health":
            return 200, orjson.dumps(self.health()), [JSON]
        if model is None:
            raise BadRequest(503, f"no model is loaded yet{': ' + self.watcher.last_error if self.watcher.last_error else ''}")
        if what == "ready":
            return 200, orjson.dumps({"ready": True, "version": model.version}), [JSON]
        info = model.describe()
        if self.ab is not None:
            info["ab_test"] = {
                "mode": "shadow" if self.ab.shadow else "split",
                "share": None if self.ab.shadow else self.ab.share,
                "experiment": self.ab.experiment(model),
                "active": self.ab.active(model),
                "challenger": self.ab.challenger.describe(),
            }
        return 200, orjson.dumps(info), [JSON, (b"x-model-version", model.version.encode())]

    def health(self) -> dict:
        w, model = self.watcher, self.watcher.current
        return {
            "status": "ok" if model is not None and w.last_error is None else "degraded",
            "version": model.version if model else None,
            "sha256": model.sha256 if model else None,
            "loaded_at": model.loaded_at if model else None,
            "reloads": w.reloads,
            "failed_reloads": w.failed_reloads,
            "scoring_calls": {"calls": self.batcher.calls, "requests": self.batcher.requests},  # requests > calls: batched
            "last_error": w.last_error,
            "last_error_at": w.last_error_at,
            "last_check_at": w.last_check_at,
            "connections": pool_stats(),  # closed at the cap: idle ones evicted, new ones refused (503)
            "pid": os.getpid(),
            "started_at": self.started_at,
            "bake": self.production.describe(model) if self.production is not None and model is not None else None,
        }


def _catboost(fn, *args):
    """``fn(*args)``, with CatBoost's refusal of the rows as a 422."""
    from catboost import CatBoostError

    try:
        return fn(*args)
    except CatBoostError as exc:
        raise BadRequest(422, _refusal(exc)) from exc


async def _scored(scores):
    """Await ``scores``, with CatBoost's refusal of the rows as a 422."""
    from catboost import CatBoostError

    try:
        return await scores
    except CatBoostError as exc:
        raise BadRequest(422, _refusal(exc)) from exc


def _refusal(exc: Exception) -> str:
    return f"CatBoost could not score the rows: {str(exc).strip().splitlines()[-1][:200]}"


async def _read_body(scope, receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BadRequest(413, f"the body is {int(value)} bytes; the limit is {limit} (--max-body-bytes). Send fewer rows per request.")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if scope.get("state", {}).get("body_timed_out"):  # the protocol answered 408 (retraining.serving.guard)
                raise BadRequest(408, "the body stopped arriving (--body-timeout).")
            raise BadRequest(400, "the client went away before sending the whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the body is over the limit of {limit} bytes (--max-body-bytes). Send fewer rows per request.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
