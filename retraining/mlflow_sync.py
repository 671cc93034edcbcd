"""Mirror the local registry into MLflow: runs, registered model versions, aliases.

MLflow is a mirror, never a gate. The local version log stays the source of truth; this
module pushes what MLflow lacks and records what it pushed in the log (``mlflow`` in each
version entry, ``mlflow_aliases`` at the top). If the server is down, the run and the
deploy complete, a warning is logged, and the next run (or ``--mlflow-sync``) pushes the
rest. Re-syncing is idempotent: a version whose run is already marked complete in MLflow
is skipped; a half-written one (no ``retrain.synced`` tag) is deleted with its model
versions and written again, so there are never duplicate runs or model versions.

Imported only when MLflow is switched on (``--mlflow-uri`` or ``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from retraining.errors import UsageError
from retraining.records import Decision

log = logging.getLogger(__name__)

INSTALL_HINT = "MLflow is not installed: pip install -r requirements-mlflow.txt"
DEFAULT_EXPERIMENT = "catboost-retraining"
DEFAULT_MODEL_NAME = "catboost_model"


@dataclass
class SyncResult:
    """What one sync changed; :meth:`Registry.apply_mirror` records it in the log."""

    ok: bool
    versions: dict[str, dict] = field(default_factory=dict)  # version -> {"uri", "run_id", "model_version"}
    aliases: dict | None = None
    registry_id: str | None = None
    pending: dict | None = None  # why MLflow still lacks something (None: up to date)


def require_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--mlflow-uri was given but {INSTALL_HINT}.") from exc


class MlflowMirror:
    """Pushes versions and aliases of one models folder to one MLflow server."""

    def __init__(self, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT, model_name: str = DEFAULT_MODEL_NAME) -> None:
        require_mlflow()
        self.uri = tracking_uri
        self.experiment = experiment
        self.model_name = model_name
        self.warn = True

    def reachable(self) -> str | None:
        """None if the server answers /health, else why not."""
        if not self.uri.startswith(("http://", "https://")):
            return None  # a local store (file:, sqlite:) needs no server
        try:
            with urllib.request.urlopen(self.uri.rstrip("/") + "/health", timeout=5) as resp:
                return None if resp.status == 200 else f"/health answered {resp.status}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return str(getattr(exc, "reason", exc))

    def sync(self, registry, data: dict, warn: bool = True) -> SyncResult:
        """Push what MLflow lacks; return what changed (``data`` is only read)."""
        self.warn = warn
        why = self.reachable()
        if why is not None:
            return self._defer(f"MLflow at {self.uri} is unreachable ({why})")
        result = SyncResult(ok=False, registry_id=data.get("registry_id") or uuid.uuid4().hex)
        try:
            with contextlib.redirect_stdout(sys.stderr), self._scoped():  # MLflow prints "View run ..." links; stdout is for results
                self._sync(registry, data, result)
        except Exception as exc:  # any MLflow/HTTP failure: the local result stands, retry later
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            log.debug("MLflow sync failure", exc_info=True)
            failed = self._defer(f"MLflow sync to {self.uri} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            result.ok, result.pending = False, failed.pending  # keep what was pushed before the failure
            return result
        result.ok = True
        return result

    @contextlib.contextmanager
    def _scoped(self):
        """Point MLflow at our server for one sync, then put the caller's settings back.

        ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in ``os.environ``; a
        notebook or service that uses ModelRetrainer must not find its MLflow settings (or
        its child processes' environment) changed afterwards.
        """
        import mlflow
        from mlflow.tracking._tracking_service import utils as tracking_utils

        names = ("MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
        saved_env = {k: os.environ.get(k) for k in names}
        saved_uri = getattr(tracking_utils, "_tracking_uri", None)
        # fail fast instead of MLflow's minutes of retries when the server goes away mid-sync
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        mlflow.set_tracking_uri(self.uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_uri)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _defer(self, why: str) -> SyncResult:
        if self.warn:
            log.warning("%s; the run is complete locally and will be pushed on the next run or with --mlflow-sync.", why)
        return SyncResult(ok=False, pending={"uri": self.uri, "reason": why})

    def _sync(self, registry, data: dict, result: SyncResult) -> None:
        from mlflow import MlflowClient

        client = MlflowClient(self.uri)
        exp = client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(self.experiment)
        if not self._model_exists(client):
            client.create_registered_model(self.model_name, description="CatBoost models from retrain_model.py")
        for entry in data["versions"]:
            if (entry.get("mlflow") or {}).get("uri") == self.uri:
                continue
            full = registry.full_entry(data, entry["version"])
            result.versions[entry["version"]] = self._push_version(client, exp_id, registry, result.registry_id, full)
        result.aliases = self._aliases(client, registry, data, result.versions)
        if result.versions:
            log.info("MLflow: pushed %d version(s) to %s (experiment %s, model %s).", len(result.versions), self.uri, self.experiment, self.model_name)

    def _model_exists(self, client) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.model_name)
            return True
        except MlflowException:
            return False

    def _push_version(self, client, exp_id: str, registry, registry_id: str, entry: dict) -> dict:
        import mlflow

        version = entry["version"]
        filt = f"tags.`retrain.version` = '{version}' and tags.`retrain.registry` = '{registry_id}'"
        for run in client.search_runs([exp_id], filter_string=filt):
            mvs = client.search_model_versions(f"name='{self.model_name}' and run_id='{run.info.run_id}'")
            if run.data.tags.get("retrain.synced") == "true" and mvs:
                return {"uri": self.uri, "run_id": run.info.run_id, "model_version": mvs[0].version}
            for mv in mvs:  # half-written by an interrupted sync: start again
                client.delete_model_version(self.model_name, mv.version)
            client.delete_run(run.info.run_id)
        from retraining.training import load_model

        model = load_model(registry.verify(entry), f"version {version}")
        example = _example(registry, version)
        tags = {
            "retrain.version": version,
            "retrain.registry": registry_id,
            "retrain.decision": entry.get("decision", ""),
            "retrain.reason": str(entry.get("reason", ""))[:4900],
            "retrain.dataset_sha256": entry.get("dataset", {}).get("sha256", ""),
            "retrain.checks": ", ".join(f"{c.get('name')}:{c.get('severity')}" for c in entry.get("checks") or []) or "none",
        }
        for name, text in check_tags(entry.get("checks") or []).items():
            tags[f"retrain.check.{name}"] = text
        tags.update(rule_tags(entry.get("rule") or {}))
        with mlflow.start_run(experiment_id=exp_id, run_name=version, tags=tags) as run:
            mlflow.log_params({k: ("" if v is None else str(v)) for k, v in {**entry.get("params", {}), **entry.get("catboost_params", {})}.items()})
            mlflow.log_metrics(_metrics(entry))
            signature = None
            if example is not None:
                from mlflow.models import infer_signature

                signature = infer_signature(example, model.predict_proba(example)[:, 1])
            info = mlflow.catboost.log_model(model, name="model", signature=signature, input_example=example)
            mlflow.log_dict(entry, "version_metadata.json")
            mv = mlflow.register_model(info.model_uri, self.model_name, tags={"semver": version, "decision": entry.get("decision", "")})
            client.set_model_version_tag(self.model_name, mv.version, "semver", version)
            client.set_tag(run.info.run_id, "retrain.synced", "true")
        return {"uri": self.uri, "run_id": run.info.run_id, "model_version": mv.version}

    def _aliases(self, client, registry, data: dict, pushed: dict[str, dict]) -> dict:
        """champion -> the production version; challenger -> the newest version kept for review."""
        by_version = {e["version"]: (pushed.get(e["version"]) or e.get("mlflow") or {}).get("model_version") for e in data["versions"]}
        wanted = {"champion": data.get("production")}
        from retraining.registry import parse_version

        kept = [e["version"] for e in data["versions"] if e.get("decision") != Decision.DEPLOYED and e["version"] != data.get("production")]
        wanted["challenger"] = max(kept, key=parse_version) if kept else None
        for alias, version in wanted.items():
            if version and version not in by_version:  # moved to history/ (see Registry.archived)
                by_version[version] = (registry.find(data, version).get("mlflow") or {}).get("model_version")
            mv = by_version.get(version) if version else None
            if mv:
                client.set_registered_model_alias(self.model_name, alias, mv)
            elif version is None:
                try:
                    client.delete_registered_model_alias(self.model_name, alias)
                except Exception:
                    log.debug("no %s alias to delete", alias)
        return {"uri": self.uri, **wanted}


def _example(registry, version: str):
    """A few training rows stored with the version's profile (for signature and input example)."""
    import pandas as pd

    path = registry.artifact_path("profile", version)
    if not path.is_file():
        return None
    rows = json.loads(path.read_text(encoding="utf-8")).get("example")
    return pd.DataFrame(rows) if rows else None


def _metrics(entry: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for who in ("candidate", "champion"):
        for k, v in (entry.get("metrics", {}).get(who) or {}).items():
            if isinstance(v, (int, float)):
                out[f"{who}_{k}"] = float(v)
    for k, v in (entry.get("delong") or {}).items():
        if isinstance(v, (int, float)) and k not in ("n_positive", "n_negative"):
            out[f"delong_{k}"] = float(v)
    out["training_seconds"] = float(entry.get("training_seconds", 0.0))
    return out


def rule_tags(rule: dict) -> dict[str, str]:
    """``retrain.rule``, ``retrain.rule.alpha``, ``.margin``, ``.verdict``, ``.p_worse``, ``.drop``, ``.loss_tolerance``,
    ``.loss_ratio``, ``.loss_p_worse`` (what is recorded; old entries: fewer)."""
    out = {"retrain.rule": str(rule["rule"])} if rule.get("rule") else {}
    loss = rule.get("loss") or {}
    values = {k: rule.get(k) for k in ("alpha", "margin", "verdict", "p_worse", "drop", "loss_tolerance")}
    values |= {"loss_ratio": loss.get("ratio"), "loss_p_worse": loss.get("p_worse")}
    out |= {f"retrain.rule.{key}": str(value) for key, value in values.items() if value is not None}
    return out


def check_tags(checks: list[dict]) -> dict[str, str]:
    """One tag value per check name, e.g. ``out_of_range`` = "block: 'age' ... | block: 'balance' ..." (every finding kept)."""
    grouped: dict[str, list[str]] = {}
    for check in checks:
        grouped.setdefault(str(check.get("name")), []).append(f"{check.get('severity')}: {check.get('message', '')}")
    return {name: " | ".join(texts)[:4900] for name, texts in grouped.items()}
