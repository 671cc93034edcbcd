"""Retrain the CatBoost model and deploy it only if it is at least as good.

Run it::

    python retrain_model.py                 # on Windows: py retrain_model.py
    python retrain_model.py --history       # every version, production marked
    python retrain_model.py --promote v1.0.0

Or use it from Python::

    from retrain_model import ModelRetrainer
    retrainer = ModelRetrainer()
    retrainer.print_version_history()
    retrainer.promote_to_production("v1.0.0")

One run: load the CSV -> stable holdout split -> train CatBoost on the rest -> score the
candidate and the production model (the champion) on the same holdout -> paired DeLong
test -> save ``models/catboost_model_vX.Y.Z.cbm`` -> deploy to ``catboost_model.cbm`` if
its ROC-AUC is at least the champion's, backing up the old file -> record everything in
``models/version_log.json``.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from retraining.errors import StateError, UsageError, VersionNotFoundError
from retraining.fsutil import atomic_write_json, commit_temp, sha256_file, temp_path_beside
from retraining.registry import Registry, bump, entry_schema, format_history, utc_now
from retraining.rules import DeployRule, decide
from retraining.training import TrainParams

if TYPE_CHECKING:  # numpy, pandas and the data modules load only when a run needs them
    import numpy

    from retraining.data import Dataset
    from retraining.evaluation import AucComparison


def __getattr__(name: str):
    """``from retrain_model import compare_auc`` without importing numpy for --history."""
    if name == "compare_auc":
        from retraining.evaluation import compare_auc

        return compare_auc
    raise AttributeError(f"module 'retrain_model' has no attribute {name!r}")


__all__ = ["ModelRetrainer", "RunResult", "compare_auc", "main"]  # noqa: F822 - compare_auc comes from __getattr__
__version__ = "0.1.0"

log = logging.getLogger("retrain_model")

DEPLOYED = "deployed"
KEPT = "kept for review"
UNCHANGED = "unchanged"


@dataclass
class RunResult:
    """What one :meth:`ModelRetrainer.retrain` did."""

    status: str  # "deployed", "kept for review" or "unchanged"
    version: str | None
    reason: str
    production: str | None
    candidate_auc: float | None = None
    champion_auc: float | None = None
    champion_version: str | None = None
    delong: dict | None = None
    model_path: str | None = None
    report_path: str | None = None
    drift: str | None = None
    seconds: float | None = None
    timings: dict | None = None

    @property
    def deployed(self) -> bool:
        return self.status == DEPLOYED

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.status == UNCHANGED:
            return f"Nothing to do: {self.reason}. Production stays {self.production or 'empty'}."
        lines = [
            f"{self.version}: {self.status}" + (f" -> production ({self.production})" if self.deployed else f" (production stays {self.production or 'empty'})")
        ]
        auc = f"  ROC-AUC candidate {self.candidate_auc:.4f}"
        if self.champion_auc is not None:
            auc += f" | champion {self.champion_version or 'external'} {self.champion_auc:.4f}"
        if self.delong:
            d = self.delong
            auc += f" | delta {d['delta']:+.4f}, 95% CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], DeLong p = {d['p_value']:.3g}"
        lines += [auc, f"  why: {self.reason}", f"  model: {self.model_path}"]
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        if self.drift:
            lines.append(f"  {self.drift}")
        return "\n".join(lines)


@dataclass
class _Evaluation:
    y: numpy.ndarray
    candidate_scores: numpy.ndarray
    metrics: dict
    champion_scores: numpy.ndarray | None = None
    champion_auc: float | None = None
    comparison: AucComparison | None = None
    note: str = ""


def _drift_line(drift: dict) -> str | None:
    from retraining.drift import summary_line

    return summary_line(drift)


def _preload_report() -> None:
    from retraining import report

    report.preload()


class ModelRetrainer:
    """Train, compare, version and deploy a CatBoost binary classifier.

    The constructor only stores settings (every CLI flag has an argument of the same
    name); :meth:`retrain` does the work. Paths are relative to the working directory.
    """

    def __init__(
        self,
        data_path: str | Path = "featured_dataset.csv",
        models_dir: str | Path = "models",
        production_path: str | Path = "catboost_model.cbm",
        target: str = "target",
        positive_class: str | None = None,
        id_column: str | None = None,
        time_column: str | None = None,
        drop_columns: tuple[str, ...] | list[str] = (),
        iterations: int = 500,
        seed: int = 42,
        task_type: str = "CPU",
        learning_rate: float | None = None,
        depth: int | None = None,
        min_improvement: float = 0.0,
        require_significance: bool = False,
        min_auc: float | None = None,
        lock_timeout: float = 60.0,
        thread_count: int = -1,
        progress_every: int = 100,
        report: bool = True,
        mlflow_uri: str | None = None,
        mlflow_experiment: str = "catboost-retraining",
        mlflow_model_name: str = "catboost_model",
    ) -> None:
        self.data_path = Path(data_path)
        self.target = target
        self.positive_class = positive_class
        self.id_column = id_column
        self.time_column = time_column
        self.drop_columns = tuple(drop_columns)
        self.params = TrainParams(iterations, seed, task_type.upper(), learning_rate, depth, thread_count, progress_every)
        self.rule = DeployRule(min_improvement, require_significance, 0.05, min_auc)
        self.registry = Registry(models_dir, production_path, lock_timeout)
        self.report = report
        self.mirror = None
        if mlflow_uri:
            from retraining.mlflow_sync import MlflowMirror

            self.mirror = MlflowMirror(mlflow_uri, mlflow_experiment, mlflow_model_name)
        self._validate()

    def _validate(self) -> None:
        p = self.params
        if p.iterations < 1:
            raise UsageError(f"iterations must be at least 1 (got {p.iterations}).")
        if p.task_type not in ("CPU", "GPU"):
            raise UsageError(f"task type must be CPU or GPU (got {p.task_type!r}).")
        if p.learning_rate is not None and not 0 < p.learning_rate <= 1:
            raise UsageError(f"learning rate must be in (0, 1] (got {p.learning_rate}).")
        if p.depth is not None and not 1 <= p.depth <= 16:
            raise UsageError(f"depth must be between 1 and 16 (got {p.depth}).")
        if self.rule.min_auc is not None and not 0 <= self.rule.min_auc <= 1:
            raise UsageError(f"min AUC must be between 0 and 1 (got {self.rule.min_auc}).")

    @property
    def models_dir(self) -> Path:
        return self.registry.models_dir

    @property
    def production_path(self) -> Path:
        return self.registry.production_path

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
        from retraining.data import load_dataset

        return load_dataset(self.data_path, self.target, self.positive_class, self.id_column, self.time_column, self.drop_columns)

    def retrain(self, force: bool = False) -> RunResult:
        """One full run: train, compare on the same holdout, save, maybe deploy."""
        from retraining import training

        started = time.perf_counter()
        ds = self.load_data()
        log.info(
            "Loaded %s: %d rows, %d features (%d categorical), %.1f%% positive; holdout %d rows (%s split)",
            *(ds.path, ds.rows, len(ds.features), len(ds.cat_features), 100 * ds.positives / ds.rows),
            *(int(ds.holdout.sum()), ds.split["method"]),
        )
        reg = self.registry
        with reg.locked():
            data = reg.read_log()
            reg.recover(data)
            latest = reg.latest(data)
            if data.get("mlflow_pending") and self.mirror:  # an earlier run could not reach MLflow
                self._mirror(data)
            if not force and latest and latest.get("dataset", {}).get("sha256") == ds.sha256 and latest.get("params") == self.settings():
                reason = f"data and settings equal those of {latest['version']} (use --force to retrain anyway)"
                return RunResult(UNCHANGED, latest["version"], reason, data.get("production"))

            champ_entry = reg.production_entry(data)
            champion = None
            if reg.production_path.is_file():
                champion = training.load_model(reg.production_path, "production model")
            elif data.get("production"):
                log.warning("The log names %s as production but %s is missing; treating it as absent.", data["production"], reg.production_path)

            schema_changed = bool(latest) and entry_schema(latest) != ds.schema()
            version = bump(latest["version"] if latest else None, schema_changed)
            log.info(
                "Training %s: %d iterations on %d rows (%s)",
                version,
                self.params.iterations,
                int((~ds.holdout).sum()),
                self.params.task_type,
            )
            if self.report:
                threading.Thread(target=_preload_report, daemon=True).start()  # overlaps matplotlib's import with training
            model, train_seconds = training.train(ds, self.params)

            ev = self._evaluate(ds, model, champion, champ_entry)
            deploy, reason = decide(self.rule, ev.metrics["candidate"]["roc_auc"], ev.champion_auc, ev.comparison, ev.note)
            if schema_changed:
                reason += "; feature schema changed, so the major version went up"
            t_report = time.perf_counter()
            drift = self._drift(ds, champ_entry, champion is not None)

            path = reg.version_path(version)
            tmp = temp_path_beside(path)
            model.save_model(str(tmp))
            commit_temp(tmp, path)
            self._save_artifacts(version, ds, ev)
            artifact_seconds = time.perf_counter() - t_report
            entry = self._entry(version, path, ds, model, train_seconds, ev, champ_entry, champion is not None, deploy, reason, latest)
            entry["drift"] = drift
            entry["bump"] = "first" if latest is None else ("major" if schema_changed else "minor")
            reg.add_version(data, entry, deploy_reason=reason if deploy else None)
            t_report = time.perf_counter()
            report = self._write_report(data, entry, full=entry) if self.report else None
            report_seconds = time.perf_counter() - t_report + artifact_seconds
            self._mirror(data)
            result = RunResult(
                status=DEPLOYED if deploy else KEPT,
                version=version,
                reason=reason,
                production=data.get("production"),
                candidate_auc=ev.metrics["candidate"]["roc_auc"],
                champion_auc=ev.champion_auc,
                champion_version=champ_entry["version"] if champ_entry else None,
                delong=ev.comparison.to_dict() if ev.comparison else None,
                model_path=str(path),
                report_path=str(report) if report else None,
                drift=_drift_line(drift),
                seconds=round(time.perf_counter() - started, 3),
                timings={"training": round(train_seconds, 3), "report_and_drift": round(report_seconds, 3)},
            )
        log.info("%s %s: %s", version, result.status, reason)
        if result.drift:
            log.warning("%s", result.drift)
        return result

    run = retrain

    def _evaluate(self, ds: Dataset, model, champion, champ_entry: dict | None) -> _Evaluation:
        """Candidate and champion on the same holdout; DeLong when both can be scored."""
        from retraining import training
        from retraining.evaluation import compare_auc, holdout_metrics

        y = ds.y[ds.holdout]
        cand = training.predict(model, ds.X.loc[ds.holdout], ds.cat_features)
        ev = _Evaluation(y, cand, {"candidate": holdout_metrics(y, cand), "champion": None})
        if champion is None:
            return ev
        ev.champion_scores, ev.note = training.score_champion(champion, ds)
        if ev.champion_scores is not None:
            ev.metrics["champion"] = holdout_metrics(y, ev.champion_scores)
            ev.comparison = compare_auc(y, cand, ev.champion_scores)
            ev.champion_auc = ev.metrics["champion"]["roc_auc"]
            if champ_entry is None:
                ev.note = f"{self.production_path} is not in the version log"
        elif champ_entry is not None:
            ev.champion_auc = champ_entry["metrics"]["candidate"]["roc_auc"]
            ev.note += f"; compared with its recorded ROC-AUC {ev.champion_auc:.4f}"
        else:
            ev.note += " and it has no recorded ROC-AUC, so the candidate replaces it"
        return ev

    def _drift(self, ds: Dataset, champ_entry: dict | None, has_champion: bool) -> dict:
        """PSI of the new data against the production model's training profile."""
        if champ_entry is None:
            why = "no production model in the version log" if has_champion else "no production model yet"
            return {"reference": None, "note": f"no reference profile ({why})"}
        from retraining.drift import compare as drift_compare

        ref_path = self.registry.artifact_path("profile", champ_entry["version"])
        if not ref_path.is_file():
            return {"reference": None, "note": f"no reference profile ({champ_entry['version']} was made before profiles were stored)"}
        reference = json.loads(ref_path.read_text(encoding="utf-8"))
        return drift_compare(reference, ds.X, ds.cat_features, champ_entry["version"])

    def _save_artifacts(self, version: str, ds: Dataset, ev: _Evaluation) -> None:
        """The training-data profile and the holdout scores (for drift and the report)."""
        import numpy

        from retraining.drift import profile as make_profile

        reg = self.registry
        prof = reg.artifact_path("profile", version)
        prof.parent.mkdir(parents=True, exist_ok=True)
        profile = make_profile(ds.X[~ds.holdout], ds.cat_features)
        example = ds.X[~ds.holdout].head(5)
        profile["example"] = example.astype(object).where(example.notna(), None).to_dict(orient="records")
        atomic_write_json(prof, profile)
        scores = reg.artifact_path("evaluation", version)
        scores.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"y": ev.y.astype("int8"), "candidate": ev.candidate_scores.astype("float32")}
        if ev.champion_scores is not None:
            arrays["champion"] = ev.champion_scores.astype("float32")
        tmp = temp_path_beside(scores)
        with tmp.open("wb") as fh:
            numpy.savez_compressed(fh, **arrays)
        commit_temp(tmp, scores)

    def _write_report(self, data: dict, entry: dict, full: dict | None = None) -> Path | None:
        from retraining import report

        try:
            entry = full or self.registry.full_entry(data, entry["version"])
            champ_version = (entry.get("champion") or {}).get("version")
            champ = self.registry.full_entry(data, champ_version) if champ_version else None
            html = report.render(entry, data, report.load_evaluation(self.registry.artifact_path("evaluation", entry["version"])), champ)
            path = report.write(self.registry.artifact_path("report", entry["version"]), html)
        except (OSError, ValueError, KeyError) as exc:  # the model is safe; a report failure must not fail the run
            log.warning("Could not write the report for %s: %s", entry["version"], exc)
            return None
        log.info("Report: %s", path)
        return path

    def regenerate_report(self, version: str | None = None) -> Path:
        """Write (again) the HTML report of ``version`` (default: the latest); return its path."""
        data = self.registry.read_log()
        if version is None:
            latest = self.registry.latest(data)
            if latest is None:
                raise VersionNotFoundError(f"no versions in {self.registry.log_path} yet; run a retrain first.")
            version = latest["version"]
        entry = self.registry.find(data, version)
        path = self._write_report(data, entry)
        if path is None:
            raise StateError(f"the report of {version} could not be written; see the log above.")
        return path

    def _entry(self, version, path, ds, model, train_seconds, ev, champ_entry, had_champion, deploy, reason, latest) -> dict:
        import catboost
        import numpy
        import pandas

        from retraining import training

        all_params = model.get_all_params()
        return {
            "version": version,
            "file": path.name,
            "sha256": sha256_file(path),
            "created_at": utc_now(),
            "decision": DEPLOYED if deploy else KEPT,
            "reason": reason,
            "dataset": ds.describe(),
            "schema": ds.schema(),
            "features": ds.features,
            "categorical_features": ds.cat_features,
            "params": self.settings(),
            "catboost_params": {k: all_params.get(k) for k in ("learning_rate", "depth", "l2_leaf_reg", "loss_function", "iterations")},
            "rule": self.rule.to_dict(),
            "metrics": {**ev.metrics, "holdout_rows": int(ds.holdout.sum()), "holdout_positives": int(ev.y.sum())},
            "champion": {
                "version": champ_entry["version"] if champ_entry else None,
                "present": had_champion,
                "scored_on_holdout": ev.comparison is not None,
                "note": ev.note,
            },
            "delong": ev.comparison.to_dict() if ev.comparison else None,
            "training_seconds": round(train_seconds, 3),
            "feature_importance": training.feature_importance(model),
            "artifacts": {k: str(self.registry.artifact_path(k, version).relative_to(self.models_dir)) for k in ("profile", "evaluation", "report")},
            "environment": {
                "python": platform.python_version(),
                "catboost": catboost.__version__,
                "pandas": pandas.__version__,
                "numpy": numpy.__version__,
                "platform": platform.platform(),
                "retrain_model": __version__,
            },
        }

    # -- history and promotion --------------------------------------------------------
    def version_history(self) -> dict:
        """The whole version log as a dict (versions, events, production), archived parts included."""
        reg = self.registry
        return reg.whole_log(reg.read_log())

    def production_version(self) -> str | None:
        return self.registry.read_log().get("production")

    def print_version_history(self, as_json: bool = False, file: TextIO | None = None) -> None:
        """Print every version as a table (production marked ``*``), or as JSON."""
        data = self.version_history()
        out = file or sys.stdout
        if as_json:
            json.dump(data, out, indent=2)
            out.write("\n")
        else:
            print(format_history(data), file=out)

    def promote_to_production(self, version: str, reason: str | None = None) -> dict:
        """Make ``version`` the production model (a rollback if it is older); return the event."""
        reg = self.registry
        with reg.locked():
            data = reg.read_log()
            reg.recover(data)
            entry = reg.find(data, version)
            if data.get("production") == version and reg.production_path.is_file() and sha256_file(reg.production_path) == entry["sha256"]:
                log.info("%s is already in production; nothing changed.", version)
                return {"event": "none", "from": version, "to": version, "reason": "already in production"}
            event = reg.promote(data, version, reason or "promoted by hand")
            self._mirror(data)
            return event

    def _mirror(self, data: dict, warn: bool = True) -> bool:
        """Push to MLflow if configured; never fails the caller. True if MLflow is up to date."""
        if self.mirror is None:
            return True
        ok = self.mirror.sync(self.registry, data, warn=warn)
        self.registry.write_log(data)
        return ok

    def sync_mlflow(self) -> None:
        """``--mlflow-sync``: push every version and alias MLflow lacks; MirrorError if it cannot."""
        from retraining.errors import MirrorError

        if self.mirror is None:
            raise UsageError("--mlflow-sync needs --mlflow-uri URI (or MLFLOW_TRACKING_URI).")
        with self.registry.locked():
            data = self.registry.read_log()
            self.registry.recover(data)
            if not self._mirror(data, warn=False):
                raise MirrorError(f"{data['mlflow_pending']['reason']}; nothing lost locally, try again later.")


# -- command line ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (see README, "Exit codes")."""
    from retraining.cli import run_cli

    return run_cli(argv, ModelRetrainer)


if __name__ == "__main__":
    sys.exit(main())
