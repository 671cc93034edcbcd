"""``ModelRetrainer``: the settings of a run and the story of one run.

Every parameter is keyword-only and has the name of its ``retrain_model.py`` flag
(docs/cli.md lists the few that differ and the flags that only the command line has).
:meth:`ModelRetrainer.retrain` reads as the steps of :mod:`retraining.run`: plan, guard,
evaluate, decide, record, publish (report and MLflow mirror), then the notification.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from retraining import run as steps
from retraining.errors import MirrorError, StateError, UsageError, VersionNotFoundError
from retraining.fsutil import sha256_file
from retraining.guard.findings import CheckSettings
from retraining.records import Decision
from retraining.registry import Registry
from retraining.report.history import format_history
from retraining.results import RunResult, Timer
from retraining.rules import RULES, DeployRule
from retraining.sources import is_database_url, is_url
from retraining.training import TrainParams

if TYPE_CHECKING:  # numpy, pandas and the data modules load only when a run needs them
    from retraining.data.dataset import Dataset

log = logging.getLogger(__name__)


def _is_database(location: str | Path) -> bool:
    """A database URL or ``env:NAME`` (kept as text: ``Path`` would mangle ``postgresql://``)."""
    if not isinstance(location, str) or ":" not in location:
        return False

    return is_database_url(location) or is_url(location)  # an unsupported scheme too: the reader names the supported ones


def _location(data_path: str | Path) -> str | Path:
    """A database URL stays text; a file is a ``Path``."""
    return data_path if _is_database(data_path) else Path(data_path)


def _check_settings(value):
    """``CheckSettings`` from a JSON file or a dict (UsageError names what is wrong), or None for the defaults."""
    if value is None:
        return None
    return CheckSettings.from_json(value) if isinstance(value, dict) else CheckSettings.load(value)


DATA_CHECK_MODES = ("block", "warn", "off")


def _mlflow(uri: str | None, experiment: str, model_name: str) -> dict | None:
    return {"uri": uri, "experiment": experiment, "model_name": model_name} if uri else None


def _notify(urls, config, events) -> dict:
    return {"urls": tuple(urls), "config": config, "events": None if events is None else tuple(events)}


class ModelRetrainer:
    """Train, compare, version and deploy a CatBoost binary classifier.

    Every parameter is keyword-only and has the name of its CLI flag. The constructor
    stores the settings and checks them (a bad value raises :class:`UsageError` here,
    where the mistake is made); it reads no data and touches no file. MLflow is imported
    only when a run or promotion first mirrors to it. :meth:`retrain` does the work.
    Paths are relative to the working directory.
    """

    _mirror_obj = _notifier = None  # built on first use (see mirror, notifier)

    def __init__(
        self,
        *,
        data_path: str | Path = "featured_dataset.csv",
        models_dir: str | Path = "models",
        production_path: str | Path = "catboost_model.cbm",
        target: str = "target",
        positive_class: str | None = None,
        id_column: str | None = None,
        time_column: str | None = None,
        drop_columns: tuple[str, ...] | list[str] = (),
        query: str | None = None,
        table: str | None = None,
        csv_delimiter: str | None = None,
        decimal: str | None = None,
        encoding: str | None = None,
        iterations: int = 500,
        seed: int = 42,
        task_type: str = "CPU",
        learning_rate: float | None = None,
        depth: int | None = None,
        min_improvement: float = 0.0,
        require_significance: bool = False,
        min_auc: float | None = None,
        rule: str = "noise",
        alpha: float = 0.05,
        margin: float = 0.005,
        recent_versions: int = 5,
        loss_tolerance: float = 0.1,
        data_checks: str = "block",
        check_settings: str | Path | dict | None = None,
        slice_columns: tuple[str, ...] | list[str] = (),
        lock_timeout: float = 60.0,
        thread_count: int = -1,
        progress_every: int = 100,
        report: bool = True,
        mlflow_uri: str | None = None,
        mlflow_experiment: str = "catboost-retraining",
        mlflow_model_name: str = "catboost_model",
        notify: tuple[str, ...] | list[str] = (),
        notify_config: str | Path | None = None,
        notify_on: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        self.source_options = {"query": query, "table": table, "delimiter": csv_delimiter, "decimal": decimal, "encoding": encoding}
        self.target, self.positive_class, self.data_checks, self.check_settings = target, positive_class, data_checks, _check_settings(check_settings)
        self.id_column, self.time_column, self.drop_columns, self.slice_columns = id_column, time_column, tuple(drop_columns), tuple(slice_columns)
        self.params = TrainParams(iterations, seed, task_type.upper(), learning_rate, depth, thread_count, progress_every)
        self.rule = DeployRule(min_improvement, require_significance, alpha, min_auc, rule, margin, recent_versions, loss_tolerance)
        self.data_path, self.registry, self.report = _location(data_path), Registry(models_dir, production_path, lock_timeout), report
        self._validate(_mlflow(mlflow_uri, mlflow_experiment, mlflow_model_name), _notify(notify, notify_config, notify_on))

    def _validate(self, mlflow: dict | None, notify_settings: dict) -> None:
        """Check the settings (a bad one raises UsageError here); the MLflow and notification settings are kept and checked too."""
        self.mlflow, self.notify_settings = mlflow, notify_settings
        p = self.params
        if p.iterations < 1:
            raise UsageError(f"iterations must be at least 1 (got {p.iterations}).")
        if p.task_type not in ("CPU", "GPU"):
            raise UsageError(f"task type must be CPU or GPU (got {p.task_type!r}).")
        if p.learning_rate is not None and not 0 < p.learning_rate <= 1:
            raise UsageError(f"learning rate must be in (0, 1] (got {p.learning_rate}).")
        if p.depth is not None and not 1 <= p.depth <= 16:
            raise UsageError(f"depth must be between 1 and 16 (got {p.depth}).")
        self._validate_rule()
        if self.data_checks not in DATA_CHECK_MODES:
            raise UsageError(f"data checks must be one of {', '.join(DATA_CHECK_MODES)} (got {self.data_checks!r}).")
        if self.mlflow:
            from retraining.mlflow_sync import require_mlflow

            require_mlflow()
        _ = self.notifier  # a bad target or a missing apprise fails here, before any work

    def _validate_rule(self) -> None:
        rule = self.rule
        if rule.min_auc is not None and not 0 <= rule.min_auc <= 1:
            raise UsageError(f"min AUC must be between 0 and 1 (got {rule.min_auc}).")
        if rule.rule not in RULES:
            raise UsageError(f"rule must be one of {', '.join(RULES)} (got {rule.rule!r}).")
        if not 0 < rule.alpha < 1:
            raise UsageError(f"alpha must be between 0 and 1, e.g. 0.05 (got {rule.alpha}).")
        if not 0 <= rule.margin <= 1:
            raise UsageError(f"margin must be a ROC-AUC difference between 0 and 1, e.g. 0.005 (got {rule.margin}).")
        if rule.recent_versions < 0:
            raise UsageError(f"recent versions must be 0 (no slow-slide guard) or more (got {rule.recent_versions}).")
        if not 0 <= rule.loss_tolerance <= 100:
            raise UsageError(f"loss tolerance must be a share between 0 and 100, e.g. 0.1 for 10 % more log loss (got {rule.loss_tolerance}).")

    @property
    def models_dir(self) -> Path:
        return self.registry.models_dir

    @property
    def production_path(self) -> Path:
        return self.registry.production_path

    @property
    def mirror(self):
        """The MLflow mirror (built on first use), or None when MLflow is off."""
        if self._mirror_obj is None and self.mlflow:
            from retraining.mlflow_sync import MlflowMirror

            self._mirror_obj = MlflowMirror(self.mlflow["uri"], self.mlflow["experiment"], self.mlflow["model_name"])
        return self._mirror_obj

    @property
    def notifier(self):
        """Sends review/blocked/rollback/... messages (built on first use); None without targets.

        The CLI sets its own (built by :func:`retraining.notify.notifier_from_args`, which
        also reads ``$RETRAIN_NOTIFY``), so one 10 s budget covers the whole command.
        """
        s = self.notify_settings
        if self._notifier is None and (s["urls"] or s["config"]):
            from retraining.notify import Notifier

            self._notifier = Notifier(urls=s["urls"], config_path=s["config"], events=s["events"])
        return self._notifier

    @notifier.setter
    def notifier(self, value) -> None:
        self._notifier = value

    def settings(self) -> dict:
        """Everything that determines the model; equal settings on equal data: nothing to do."""
        p = self.params
        return {
            "iterations": p.iterations,
            "seed": p.seed,
            "task_type": p.task_type,
            "learning_rate": p.learning_rate,
            "depth": p.depth,
            "target": self.target,
            "positive_class": self.positive_class,
            "id_column": self.id_column,
            "time_column": self.time_column,
            "drop_columns": list(self.drop_columns),
        }

    # -- the run --------------------------------------------------------------------
    def load_data(self) -> Dataset:
        from retraining.data.dataset import load_dataset

        source = self.data_path
        if any(self.source_options.values()) or isinstance(source, str):
            from retraining.sources import SourceSpec

            source = SourceSpec(location=str(self.data_path), **self.source_options)
        return load_dataset(source, self.target, self.positive_class, self.id_column, self.time_column, self.drop_columns)

    def retrain(self, force: bool = False) -> RunResult:
        """One full run: plan, check the data, train and score, decide, record, publish."""
        timer = Timer()
        ds = timer("read", self.load_data)
        log.info(
            "Loaded %s: %d rows, %d features (%d categorical), %.1f%% positive; holdout %d rows (%s split)",
            *(ds.path, ds.rows, len(ds.features), len(ds.cat_features), 100 * ds.positives / ds.rows),
            *(int(ds.holdout.sum()), ds.split["method"]),
        )
        with self.registry.session() as data:
            self.sync_mirror(data, only_pending=True)  # an earlier run could not reach MLflow
            before = data.get("production")
            plan = timer("plan", steps.plan, self, ds, data, force)
            if isinstance(plan, str):
                return RunResult(Decision.UNCHANGED, self.registry.latest(data)["version"], plan, before, seconds=timer.total())
            guard = timer("checks", steps.guard, self, plan)
            ev = timer("evaluate", steps.evaluate, self, plan, guard)
            verdict = timer("decide", steps.decide, self, plan, guard, ev)
            recorded = timer("record", steps.record, self, data, plan, guard, ev, verdict)
            result = steps.result(data, plan, guard, ev, recorded, before)
            report = timer("publish", steps.publish, self, data, recorded)
        result.report_path = str(report) if report else None
        result.seconds, result.timings = timer.total(), {"training": round(ev.train_seconds, 3), **timer.seconds}
        log.info("%s %s: %s", result.version, result.status, result.reason)
        for line in [result.drift] if result.drift else []:
            log.warning("%s", line)
        if self.notifier is not None:
            self.notifier.notify_run(result.to_dict())
        return result

    run = retrain

    def regenerate_report(self, version: str | None = None) -> Path:
        """Write (again) the HTML report of ``version`` (default: the latest); return its path."""
        data = self.registry.read_log()
        if version is None:
            latest = self.registry.latest(data)
            if latest is None:
                raise VersionNotFoundError(f"no versions in {self.registry.log_path} yet; run a retrain first.")
            version = latest["version"]
        entry = self.registry.find(data, version)
        path = steps.write_report(self.registry, data, entry)
        if path is None:
            raise StateError(f"the report of {version} could not be written; see the log above.")
        return path

    # -- history and promotion --------------------------------------------------------
    def version_history(self) -> dict:
        """The whole version log as a dict (versions, events, production), archived parts included."""
        reg = self.registry
        return reg.whole_log(reg.read_log())

    def production_version(self) -> str | None:
        return self.registry.read_log().get("production")

    def print_version_history(self, as_json: bool = False, file: TextIO | None = None, verbose: bool = False) -> None:
        """Print every version as a table (production marked ``*``, reports as absolute paths), or as JSON.

        ``verbose`` adds each version's training settings (``--history --verbose``).
        """
        data = self.version_history()
        out = file or sys.stdout
        if as_json:
            json.dump(data, out, indent=2, ensure_ascii=False)
            out.write("\n")
        else:
            shown = self._full(data) if verbose else data  # the settings live in each version's metadata file
            reports = self.registry.models_dir / self.registry.ARTIFACTS["report"][0]
            print(format_history(shown, reports, verbose=verbose), file=out)

    def _full(self, data: dict) -> dict:
        return {**data, "versions": [self.registry.full_entry(data, e["version"]) for e in data["versions"]]}

    def _report_paths(self, data: dict) -> dict[str, Path]:
        return {e["version"]: self.registry.artifact_path("report", e["version"]) for e in data["versions"]}

    def write_history_page(self) -> Path:
        """``--history --html``: write ``models/reports/index.html`` (every version, decision, AUCs, findings, events, report links)."""
        from retraining.report.index import write_index

        data = self.version_history()
        path = self.registry.models_dir / "reports" / "index.html"
        return write_index(path, self._full(data), self._report_paths(data), str(self.registry.models_dir.resolve()))

    def promote_to_production(self, version: str, reason: str | None = None) -> dict:
        """Make ``version`` production (a rollback if it is older); return the event.

        ``reason`` is recorded with the event (``--promote VERSION --reason TEXT``).
        """
        reg = self.registry
        with reg.session() as data:
            entry = reg.find(data, version)
            if data.get("production") == version and reg.production_path.is_file() and sha256_file(reg.production_path) == entry["sha256"]:
                log.info("%s is already in production; nothing changed.", version)
                return {"event": "none", "from": version, "to": version, "reason": "already in production"}
            event = reg.promote(data, version, reason or "promoted by hand (no --reason given)")
            self.sync_mirror(data)
        if self.notifier is not None:
            self.notifier.notify_promotion(event)
        return event

    def sync_mirror(self, data: dict, warn: bool = True, only_pending: bool = False) -> bool:
        """Push to MLflow if configured; never fails the caller. True if MLflow is up to date."""
        if self.mirror is None or (only_pending and not data.get("mlflow_pending")):
            return True
        synced = self.mirror.sync(self.registry, data, warn=warn)
        self.registry.apply_mirror(data, synced)
        return synced.ok

    def sync_mlflow(self) -> None:
        """``--mlflow-sync``: push every version and alias MLflow lacks; MirrorError if it cannot."""
        if self.mirror is None:
            raise UsageError("--mlflow-sync needs --mlflow-uri URI (or MLFLOW_TRACKING_URI).")
        with self.registry.session() as data:
            if not self.sync_mirror(data, warn=False):
                raise MirrorError(f"{data['mlflow_pending']['reason']}; nothing lost locally, try again later.")
