"""``serve.py``'s command line: flags -> ServeConfig -> uvicorn, through the guarded main.

Serve the production model over HTTP; pick up every deploy and rollback without a restart.

    python serve.py                                   # 127.0.0.1:8000, models/ and catboost_model.cbm
    python serve.py --host 0.0.0.0 --port 8080 --workers 4
    python serve.py --challenger v1.3.0 --share 0.1 --id-column customer_id    # live A/B test
    python serve.py --challenger v1.3.0 --shadow --id-column customer_id       # shadow test

POST /predict (or /invocations) with JSON records or MLflow's dataframe_split /
dataframe_records payloads answers the positive-class probabilities and the version that
scored them. The service polls the production file every --reload-interval seconds (and
checks at once on SIGHUP), verifies its sha256 against models/version_log.json and swaps
the new model in without dropping a request. SIGTERM finishes the requests in flight,
flushes the prediction log and exits 0. See docs/serving.md.

Needs ``pip install -r requirements-serve.txt`` (uvicorn, httptools, prometheus-client).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import fields, replace
from pathlib import Path

from retraining.cli.main import guarded_main
from retraining.cli.parser import OneLineParser
from retraining.errors import ExitCode, StateError, UsageError

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
INSTALL = "pip install -r requirements-serve.txt"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="serve.py", description="Serve the production CatBoost model over HTTP, with hot reload and live A/B tests.")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s; 0.0.0.0 for every interface)")
    net.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    net.add_argument("--workers", type=int, default=1, help="server processes; each loads and reloads the model (default: %(default)s)")
    net.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024, metavar="N", help="larger request bodies get 413 (default: 10 MiB)")
    files = p.add_argument_group("model")
    files.add_argument("--models-dir", default="models", metavar="DIR", help="the registry with version_log.json (default: %(default)s)")
    files.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
    files.add_argument("--config", metavar="FLEET.toml", help="serve every model of a fleet under /models/NAME/ (docs/fleet.md)")
    files.add_argument("--reload-interval", type=float, default=2.0, metavar="SECONDS", help="look for a new production file this often (default: %(default)s)")
    ab = p.add_argument_group("live A/B test (same assignment and log as ab_test.py)")
    ab.add_argument("--challenger", metavar="VERSION", help="a version of the registry to test against production")
    ab.add_argument("--share", type=float, default=0.1, help="the challenger's share of entities in split mode (default: %(default)s)")
    ab.add_argument("--shadow", action="store_true", help="score every row with both; serve production's, log both")
    ab.add_argument("--id-column", metavar="NAME", help="entity id column of the requests (needed with --challenger)")
    ab.add_argument("--salt", help="assignment salt (default: the experiment id)")
    ab.add_argument("--experiment-id", help="default: PRODUCTION-vs-CHALLENGER (a deploy starts a new one)")
    ab.add_argument("--log-dir", default="logs", metavar="DIR", help="where the prediction log goes (default: %(default)s)")
    ab.add_argument("--log", type=Path, metavar="PATH", help="the JSON-lines prediction log (default: LOG_DIR/predictions.jsonl)")
    ab.add_argument("--log-flush-interval", type=float, default=0.2, metavar="SECONDS", help="append batched log lines this often (default: %(default)s)")
    ab.add_argument("--shadow-queue", type=int, default=1024, metavar="N", help="requests queued for the shadow model; more are dropped (default: %(default)s)")
    out = p.add_argument_group("output")
    out.add_argument("--metrics-dir", type=Path, metavar="DIR", help="with --workers > 1: prometheus-client's multiprocess folder (default: a temporary one)")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors")
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`~retraining.serving.app.ServeConfig` of the command line; UsageError for nonsense."""
    from retraining.serving.app import ServeConfig

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535 (got {args.port}).")
    if args.workers < 1 or args.max_body_bytes < 1 or args.reload_interval <= 0 or args.shadow_queue < 1 or args.log_flush_interval <= 0:
        raise UsageError("--workers, --max-body-bytes, --shadow-queue, --reload-interval and --log-flush-interval must be positive.")
    given = (("--shadow", args.shadow), ("--id-column", args.id_column), ("--salt", args.salt), ("--experiment-id", args.experiment_id))
    ab_flags = [flag for flag, value in given if value]
    if args.challenger is None and ab_flags:
        raise UsageError(f"{ab_flags[0]} belongs to an A/B test; add --challenger VERSION.")
    if args.challenger is not None:
        if not args.id_column:
            raise UsageError("--challenger needs --id-column NAME: the A/B test assigns each entity by its id.")
        if not 0 < args.share < 1:
            raise UsageError(f"--share must be between 0 and 1 (got {args.share}).")
    log_path = args.log or Path(args.log_dir) / "predictions.jsonl"
    values = {f.name: getattr(args, f.name) for f in fields(ServeConfig) if hasattr(args, f.name)}  # the flags are named as the fields
    values.update(models_dir=str(args.models_dir), production=str(args.production), log_path=str(log_path.resolve()) if args.challenger else None)
    return ServeConfig(**values)


def check_challenger(config) -> None:
    """Fail before listening if the challenger is unknown or its file does not match the log."""
    if config.challenger is None:
        return
    from retraining.registry import Registry

    registry = Registry(config.models_dir, config.production)
    registry.verify(registry.find(registry.read_log(), config.challenger))


def serve(config, host: str, port: int, workers: int, metrics_dir: Path | None) -> int:
    """Run uvicorn until SIGTERM/SIGINT; 0 after a clean shutdown."""
    try:
        import uvicorn
    except ImportError as exc:
        raise StateError(f"serve.py needs uvicorn: {INSTALL}") from exc
    from retraining.serving.app import CONFIG_ENV

    os.environ[CONFIG_ENV] = config.to_json()  # the workers read it (they start from an import string)
    own_metrics_dir = None
    if workers > 1:
        own_metrics_dir = None if metrics_dir else Path(tempfile.mkdtemp(prefix="catboost-serve-metrics-"))
        folder = metrics_dir or own_metrics_dir
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)  # uvicorn re-raises the signal after its graceful shutdown: exit 0 then
    try:
        uvicorn.run(
            "retraining.serving.cli:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http=_http_parser(),
            lifespan="on",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=30,
        )
    except SystemExit as exc:  # uvicorn's own exit (a port in use, a failed startup): already logged
        return exc.code if isinstance(exc.code, int) else ExitCode.DAMAGED_STATE
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return ExitCode.OK


def _http_parser() -> str:
    try:
        import httptools  # noqa: F401 - the C parser: about 2x the requests of h11 per core
    except ImportError:
        log.warning("httptools is not installed; using h11 (slower). %s", INSTALL)
        return "h11"
    return "httptools"


def create_app():
    """The uvicorn factory, run in each worker: logging as the command line set it, then the app from the environment."""
    import orjson

    from retraining.serving.app import CONFIG_ENV, App, ServeConfig
    from retraining.serving.fleet import FleetApp

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    text = os.environ.get(CONFIG_ENV) or "{}"
    if "fleet" in (data := orjson.loads(text)):
        return FleetApp({name: ServeConfig(**values) for name, values in data["fleet"].items()})
    return App(ServeConfig.from_json(text))


class FleetConfig:
    """Every model's :class:`ServeConfig`, travelling to the workers as one JSON object."""

    def __init__(self, configs: dict) -> None:
        self.configs = configs

    def to_json(self) -> str:
        import json
        from dataclasses import asdict

        return json.dumps({"fleet": {name: asdict(c) for name, c in self.configs.items()}})


def fleet_config(args: argparse.Namespace) -> FleetConfig:
    """``--config fleet.toml``: one ServeConfig per model, from its folders and the flags; no A/B flags."""
    from retraining.cli import retrain as retrain_cli
    from retraining.fleet.config import load_fleet

    ab = [flag for flag, value in (("--challenger", args.challenger), ("--shadow", args.shadow), ("--id-column", args.id_column)) if value]
    if ab:
        raise UsageError(f"{ab[0]} goes with one model: serve it on its own (serve.py --models-dir ... --production ...) for an A/B test.")
    parser = retrain_cli.strict_parser()
    fleet = load_fleet(args.config, retrain_cli.setting_options(parser))
    base = config_from_args(args)
    configs = {name: replace(base, models_dir=str(spec.models_dir), production=str(spec.production)) for name, spec in fleet.models.items()}
    return FleetConfig(configs)


def main(argv: list[str] | None = None) -> int:
    """``serve.py``'s command line; returns the exit code (:class:`~retraining.errors.ExitCode`)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:  # guarded_main prints the error line itself; its log record is for files
        handler.addFilter(lambda record: not getattr(record, "file_only", False))

    def program() -> int:
        try:
            if args.config is not None:
                return serve(fleet_config(args), args.host, args.port, args.workers, args.metrics_dir)
            config = config_from_args(args)
            check_challenger(config)
            return serve(config, args.host, args.port, args.workers, args.metrics_dir)
        except ImportError as exc:
            raise StateError(f"{exc.name or exc} is not installed; {INSTALL}") from exc

    return guarded_main(program, log=log, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
