"""``serve.py``'s command line: flags -> ServeConfig -> uvicorn, through the guarded main.

Serve the production model over HTTP; pick up every deploy and rollback without a restart.

    python serve.py                                   # 127.0.0.1:8000, models/ and catboost_model.cbm
    python serve.py --host 0.0.0.0 --port 8080 --workers 4
    python serve.py --challenger v1.3.0 --share 0.1 --id-column customer_id    # live A/B test
    python serve.py --challenger v1.3.0 --shadow --id-column customer_id       # shadow test
    python serve.py --id-column customer_id --log-features 0.05                # production log, bake shadow

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
import threading
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
    limits = p.add_argument_group("limits per connection and per worker (see docs/serving.md, 'Hostile clients')")
    limits.add_argument("--header-timeout", type=float, default=10.0, metavar="S", help="the head must arrive within this, else 408 (default: %(default)s)")
    limits.add_argument("--max-header-bytes", type=int, default=64 * 1024, metavar="N", help="larger request lines and headers get 431 (default: 64 KiB)")
    limits.add_argument("--body-timeout", type=float, default=10.0, metavar="S", help="a body that stops arriving this long gets 408 (default: %(default)s)")
    limits.add_argument("--max-connections", type=int, metavar="N", help="connections per worker; idle ones closed, then 503 (default: file limit - 64)")
    limits.add_argument("--graceful-timeout", type=float, default=30.0, metavar="S", help="SIGTERM: requests in flight get this, then 503 (default: 30)")
    files = p.add_argument_group("model")
    files.add_argument("--models-dir", default="models", metavar="DIR", help="the registry with version_log.json (default: %(default)s)")
    files.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
    files.add_argument("--config", metavar="FLEET.toml", help="serve every model of a fleet under /models/NAME/ (docs/fleet.md)")
    files.add_argument("--reload-interval", type=float, default=2.0, metavar="SECONDS", help="look for a new production file this often (default: %(default)s)")
    ab = p.add_argument_group("live A/B test (same assignment and log as ab_test.py)")
    ab.add_argument("--challenger", metavar="VERSION", help="a version of the registry to test against production")
    ab.add_argument("--share", type=float, default=0.1, help="the challenger's share of entities in split mode (default: %(default)s)")
    ab.add_argument("--shadow", action="store_true", help="score every row with both; serve production's, log both")
    ab.add_argument("--id-column", metavar="NAME", help="entity id column of the requests: log every prediction by it (needed with --challenger)")
    ab.add_argument("--salt", help="entity hash salt (default: the experiment id; production lines: production)")
    ab.add_argument("--experiment-id", help="default: PRODUCTION-vs-CHALLENGER (a deploy starts a new one)")
    ab.add_argument("--log-dir", default="logs", metavar="DIR", help="where the prediction log goes (default: %(default)s)")
    ab.add_argument("--log", type=Path, metavar="PATH", help="the JSON-lines prediction log (default: LOG_DIR/predictions.jsonl)")
    ab.add_argument("--log-flush-interval", type=float, default=0.2, metavar="SECONDS", help="append batched log lines this often (default: %(default)s)")
    ab.add_argument("--shadow-queue", type=int, default=1024, metavar="N", help="requests queued for the shadow model; more are dropped (default: %(default)s)")
    prod = p.add_argument_group("production log and bake period (with --id-column; docs/monitoring.md)")
    prod.add_argument("--bake-hours", type=float, metavar="H", help="after a deploy, score the previous version in shadow for H hours (default: 72)")
    prod.add_argument("--no-bake", action="store_true", help="no bake shadow after a deploy")
    prod.add_argument("--log-features", type=float, default=0.0, metavar="RATE", help="log the features of a share of entities to features.jsonl (default: 0)")
    prod.add_argument("--log-rotate-bytes", type=int, metavar="N", help="rotate the log (and features.jsonl) once it holds N bytes")
    prod.add_argument("--log-rotate-daily", action="store_true", help="rotate the log (and features.jsonl) at the first write of each UTC day")
    out = p.add_argument_group("output")
    out.add_argument("--metrics-dir", type=Path, metavar="DIR", help="with --workers > 1: prometheus-client's multiprocess folder (default: a temporary one)")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors")
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`~retraining.serving.app.ServeConfig` of the command line; UsageError for nonsense."""
    from retraining.serving.app import ServeConfig
    from retraining.serving.production import DEFAULT_BAKE_HOURS

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535 (got {args.port}).")
    if args.workers < 1 or args.max_body_bytes < 1 or args.reload_interval <= 0 or args.shadow_queue < 1 or args.log_flush_interval <= 0:
        raise UsageError("--workers, --max-body-bytes, --shadow-queue, --reload-interval and --log-flush-interval must be positive.")
    limits = (args.header_timeout, args.max_header_bytes, args.body_timeout, args.graceful_timeout, 1 if args.max_connections is None else args.max_connections)
    if min(limits) <= 0:
        raise UsageError("--header-timeout, --max-header-bytes, --body-timeout, --graceful-timeout and --max-connections must be positive.")
    given = (("--shadow", args.shadow), ("--experiment-id", args.experiment_id))
    ab_flags = [flag for flag, value in given if value]
    if args.challenger is None and ab_flags:
        raise UsageError(f"{ab_flags[0]} belongs to an A/B test; add --challenger VERSION.")
    _check_production_flags(args)
    if args.experiment_id and args.experiment_id.split(":")[0] == "production":
        raise UsageError(f"--experiment-id {args.experiment_id!r}: names starting with 'production' belong to the production log; pick another.")
    if args.challenger is not None:
        if not args.id_column:
            raise UsageError("--challenger needs --id-column NAME: the A/B test assigns each entity by its id.")
        if not 0 < args.share < 1:
            raise UsageError(f"--share must be between 0 and 1 (got {args.share}).")
    log_path = args.log or Path(args.log_dir) / "predictions.jsonl"
    values = {f.name: getattr(args, f.name) for f in fields(ServeConfig) if hasattr(args, f.name)}  # the flags are named as the fields
    values.update(models_dir=str(args.models_dir), production=str(args.production), log_path=str(log_path.resolve()) if args.id_column else None)
    values["bake_hours"] = 0.0 if args.no_bake else DEFAULT_BAKE_HOURS if args.bake_hours is None else args.bake_hours
    return ServeConfig(**values)


def _check_production_flags(args: argparse.Namespace) -> None:
    given = (
        ("--salt", args.salt),
        ("--bake-hours", args.bake_hours is not None),
        ("--no-bake", args.no_bake),
        ("--log-features", args.log_features),
        ("--log-rotate-bytes", args.log_rotate_bytes is not None),
        ("--log-rotate-daily", args.log_rotate_daily),
    )
    flags = [flag for flag, value in given if value]
    if flags and not args.id_column:
        raise UsageError(f"{flags[0]} needs --id-column NAME: the prediction log identifies each row by its entity id.")
    if args.bake_hours is not None and (args.no_bake or not args.bake_hours >= 0):
        raise UsageError("--bake-hours takes hours >= 0, and not together with --no-bake.")
    if not 0 <= args.log_features <= 1:
        raise UsageError(f"--log-features must be between 0 and 1 (got {args.log_features}).")
    if args.log_features and args.challenger:
        raise UsageError("--log-features works with the production log only, not with --challenger (yet).")
    if args.log_rotate_bytes is not None and args.log_rotate_bytes < 1:
        raise UsageError(f"--log-rotate-bytes must be positive (got {args.log_rotate_bytes}).")


def check_challenger(config) -> None:
    """Fail before listening if the challenger is unknown or its file does not match the log."""
    if config.challenger is None:
        return
    from retraining.registry import Registry

    registry = Registry(config.models_dir, config.production)
    registry.verify(registry.find(registry.read_log(), config.challenger))


def limits_from_args(args: argparse.Namespace):
    """The per-connection limits of the command line, the connection cap below this process's file limit."""
    from retraining.serving.guard import Limits
    from retraining.serving.runner import connection_cap, file_limit

    limit = file_limit()
    cap = connection_cap(args.max_connections, limit)
    log.info("Up to %d connections per worker (open-file limit %s)", cap, limit if limit is not None else "not known here")
    return Limits(head_timeout=args.header_timeout, max_head_bytes=args.max_header_bytes, body_timeout=args.body_timeout, max_connections=cap)


def serve(config, args: argparse.Namespace) -> int:
    """Run uvicorn until SIGTERM/SIGINT; 0 after a clean shutdown."""
    try:
        import httptools  # noqa: F401 - the C parser the connection limits are built on (and about 2x the requests of h11 per core)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise StateError(f"serve.py needs uvicorn and httptools: {INSTALL}") from exc
    from retraining.serving.app import CONFIG_ENV
    from retraining.serving.runner import run

    limits = limits_from_args(args)
    os.environ[CONFIG_ENV] = config.to_json()  # the workers read it (they start from an import string)
    own_metrics_dir = None
    if args.workers > 1:
        own_metrics_dir = None if args.metrics_dir else Path(tempfile.mkdtemp(prefix="catboost-serve-metrics-"))
        folder = args.metrics_dir or own_metrics_dir
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)  # uvicorn re-raises the signal after its graceful shutdown: exit 0 then
    try:
        app = "retraining.serving.cli:create_app"
        return run(app, host=args.host, port=args.port, workers=args.workers, limits=limits, graceful_timeout=args.graceful_timeout)
    except SystemExit as exc:  # uvicorn's own exit (a port in use, a failed startup): already logged
        return exc.code if isinstance(exc.code, int) else ExitCode.DAMAGED_STATE
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def create_app():
    """The uvicorn factory, run in each worker: logging as the command line set it, then the app from the environment."""
    import orjson

    from retraining.serving.app import CONFIG_ENV, App, ServeConfig
    from retraining.serving.fleet import FleetApp

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app listens for it: a SIGHUP must not end a starting worker
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
    """``--config fleet.toml``: one ServeConfig per model, from its folders and the flags; no A/B flags.

    A model whose table names ``id_column`` logs its production predictions (and its bake
    shadow) to its own ``log_dir/predictions.jsonl``, where ``monitor.py --config F --model
    NAME`` reads them.
    """
    from retraining.cli import retrain as retrain_cli
    from retraining.fleet.config import load_fleet

    ab = [flag for flag, value in (("--challenger", args.challenger), ("--shadow", args.shadow), ("--id-column", args.id_column), ("--log", args.log)) if value]
    if ab:
        raise UsageError(f"{ab[0]} goes with one model: in a fleet each model's id_column and log come from fleet.toml (docs/fleet.md).")
    parser = retrain_cli.strict_parser()
    options = retrain_cli.setting_options(parser)
    fleet = load_fleet(args.config, options)
    base = config_from_args(args)
    configs = {}
    for name, spec in fleet.models.items():
        settings, _unknown = parser.parse_known_args(spec.argv(options))
        log_path = str((Path(settings.log_dir) / "predictions.jsonl").resolve()) if settings.id_column else None
        configs[name] = replace(base, models_dir=str(spec.models_dir), production=str(spec.production), id_column=settings.id_column, log_path=log_path)
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
                return serve(fleet_config(args), args)
            config = config_from_args(args)
            check_challenger(config)
            return serve(config, args)
        except ImportError as exc:
            raise StateError(f"{exc.name or exc} is not installed; {INSTALL}") from exc

    return guarded_main(program, log=log, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
