"""``serve.py --config fleet.toml``: every model of a fleet behind one server.

One :class:`~retraining.serving.app.App` per model (its own registry, watcher, batcher
and metrics), composed under per-model routes, as multi-model servers (SageMaker
multi-model endpoints, Triton, MLServer) do::

    POST /models/NAME/predict, /models/NAME/invocations   the same bodies and answers as /predict
    GET  /models/NAME/version, /models/NAME/ready, /models/NAME/health, /models/NAME/metrics
    GET  /models                                           every model: version, ready, last error
    GET  /health                                           200 while the process lives, every model's state
    GET  /ready                                            200 while some model is loaded (per model: /models/NAME/ready)

Each model hot-swaps on its own deploys and rollbacks. A model whose new production file
is bad keeps serving its last good version and reports ``ready: false`` (with the error)
in ``/models``; the others are untouched. An unknown model is a 404 that lists the models.
A fleet of one model keeps the plain routes as well (``/predict``, ``/version``, ...).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

import orjson

from retraining.serving.app import JSON, App, ServeConfig

log = logging.getLogger(__name__)


class FleetApp:
    """Route ``/models/NAME/...`` to that model's :class:`App`; answer the fleet-wide endpoints."""

    def __init__(self, configs: dict[str, ServeConfig]) -> None:
        self.apps = {name: App(config) for name, config in configs.items()}

    # -- life cycle -----------------------------------------------------------------------
    def startup(self) -> None:
        for name, app in self.apps.items():
            try:
                app.startup()
            except Exception:  # one model's start-up trouble is that model's: it answers 503, the others serve
                log.exception("Model %s could not start; it answers 503 until its production file loads.", name)

    def shutdown(self) -> None:
        for app in self.apps.values():
            app.shutdown()

    def listen_for_sighup(self) -> None:
        """SIGHUP: every model checks its production file now (polling only on Windows)."""
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda signum, frame: [app.watcher.wake() for app in self.apps.values()])

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
                await asyncio.to_thread(self.startup)
                self.listen_for_sighup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        path = scope["path"]
        if path.startswith("/models/"):
            name, _, rest = path[len("/models/") :].partition("/")
            app = self.apps.get(name)
            if app is None:
                await _send(send, 404, {"error": f"no model {name!r}; the models are: {', '.join(self.apps)} (GET /models)."})
                return
            await app(dict(scope, path="/" + rest), receive, send)
            return
        if path in ("/models", "/health", "/ready") and scope["method"] != "GET":
            await _send(send, 405, {"error": f"{path} takes GET, not {scope['method']}."})
        elif path == "/models":
            await _send(send, 200, {"models": [self.describe(name) for name in self.apps]})
        elif path == "/health":
            states = {name: self.describe(name) for name in self.apps}
            await _send(send, 200, {"status": "ok" if all(s["ready"] for s in states.values()) else "degraded", "models": states})
        elif path == "/ready":  # the process can serve: some model is loaded (per model: /models/NAME/ready)
            loaded = [name for name, app in self.apps.items() if app.watcher.current is not None]
            missing = [name for name in self.apps if name not in loaded]
            await _send(send, 200 if loaded else 503, {"ready": not missing, "loaded": loaded, "not_loaded": missing})
        elif len(self.apps) == 1:  # a fleet of one keeps the plain routes
            await next(iter(self.apps.values()))(scope, receive, send)
        else:
            await _send(
                send, 404, {"error": f"no endpoint {path}; a fleet answers /models/NAME/predict (or /invocations, /version), GET /models, /health, /ready."}
            )

    def describe(self, name: str) -> dict:
        """One model's state: its version, whether it is ready (serving its newest production file), the last error."""
        app = self.apps[name]
        current, watcher = app.watcher.current, app.watcher
        return {
            "name": name,
            "version": current.version if current else None,
            "sha256": current.sha256 if current else None,
            "ready": current is not None and watcher.last_error is None,
            "last_error": watcher.last_error,
            "last_check_at": watcher.last_check_at,
            "production": app.config.production,
        }


async def _send(send, status: int, body: dict) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [JSON, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
