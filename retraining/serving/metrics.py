"""Prometheus metrics of serve.py (prometheus-client).

With one worker the metrics live in the process. With ``--workers N`` serve.py points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start: every worker
writes its values there, and /metrics (answered by whichever worker gets the request)
sums counters and histograms over all workers. Gauges carry a ``pid`` label then, one
series per live worker (``catboost_serve_model_info`` shows which version each serves).
"""

from __future__ import annotations

import os

PREFIX = "catboost_serve"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """Every metric the service exports, with cached label children for the request path."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests, by endpoint and status code", ["endpoint", "status"], registry=r)
        self.errors = Counter(f"{PREFIX}_request_errors", "Requests answered 4xx/5xx, by endpoint and status", ["endpoint", "status"], registry=r)
        self.latency = Histogram(f"{PREFIX}_request_duration_seconds", "Request to response, by endpoint", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.rows = Counter(f"{PREFIX}_rows_scored", "Rows scored, by the version that scored them", ["version"], registry=r)
        self.reloads = Counter(f"{PREFIX}_reloads", "Production models loaded after the first (hot reloads)", registry=r)
        self.failed_reloads = Counter(f"{PREFIX}_failed_reloads", "Production files that could not be loaded (torn, wrong sha256, refused)", registry=r)
        self.ab_rows = Counter(f"{PREFIX}_ab_rows", "A/B rows by arm (champion, challenger) and shadow jobs dropped or failed", ["arm"], registry=r)
        self.bake_rows = Counter(f"{PREFIX}_bake_rows", "Bake period: rows the previous version scored in shadow, or dropped or failed", ["what"], registry=r)
        self.log_dropped = Counter(f"{PREFIX}_prediction_log_dropped", "Predictions that could not be written to the prediction log", registry=r)
        self.model_info = Gauge(f"{PREFIX}_model_info", "1 for the version this process serves", ["version", "sha256"], multiprocess_mode="liveall", registry=r)
        self.reload_failing = Gauge(f"{PREFIX}_last_reload_failed", "1 while the newest production file is refused", multiprocess_mode="liveall", registry=r)
        self._request_children: dict = {}
        self._served: tuple[str, str] | None = None

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        children = self._request_children.get((endpoint, status))
        if children is None:
            errors = self.errors.labels(endpoint, str(status)) if status >= 400 else None
            children = (self.requests.labels(endpoint, str(status)), errors, self.latency.labels(endpoint))
            self._request_children[(endpoint, status)] = children
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        children[2].observe(seconds)

    def serving(self, version: str, sha256: str) -> None:
        if self._served is not None:
            self.model_info.labels(*self._served).set(0)
        self._served = (version, sha256)
        self.model_info.labels(version, sha256).set(1)
        self.reload_failing.set(0)

    def reload_failed(self) -> None:
        self.failed_reloads.inc()
        self.reload_failing.set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @staticmethod
    def process_exited() -> None:
        """Drop this worker's live gauges (multiprocess mode)."""
        if multiprocess_dir() is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
