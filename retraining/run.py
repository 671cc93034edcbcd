"""The steps of one retraining run, each returning a small record the next one takes.

:meth:`retraining.retrainer.ModelRetrainer.retrain` tells the story; the work is here::

    plan      the version number, skip-if-unchanged, the champion and its entry
    guard     which rows are new, which the champion trained on, the data checks
    evaluate  train the candidate; score it and the champion on the same holdout
              (minus the rows the champion trained on); DeLong
    decide    the deploy rule, blocked by a blocking data-check finding
    record    version file, ledger, artifacts, log entry, deploy (under the lock)
    publish   report, MLflow mirror (never fails the run)

Each step is a plain function of the retrainer's settings and the records before it.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from retraining.fsutil import atomic_write_json, commit_temp, no_space_error, sha256_file, temp_path_beside
from retraining.records import Decision, VersionEntry
from retraining.registry import Registry, bump, entry_schema, utc_now
from retraining.results import Evaluation, Guard, Plan, Recorded, RunResult, Verdict
from retraining.rules import DeployRule, apply_slide, judge
from retraining.training import TrainParams

if TYPE_CHECKING:
    from retraining.data.dataset import Dataset
    from retraining.guard.findings import CheckSettings

log = logging.getLogger(__name__)


class Settings(Protocol):
    """What the steps read of the run's settings (:class:`retraining.retrainer.ModelRetrainer` has them all)."""

    registry: Registry
    params: TrainParams
    rule: DeployRule
    data_checks: str
    check_settings: CheckSettings | None
    slice_columns: tuple[str, ...]
    report: bool

    @property
    def models_dir(self) -> Path: ...

    @property
    def production_path(self) -> Path: ...

    def settings(self) -> dict: ...

    def sync_mirror(self, data: dict) -> bool: ...


# -- plan ------------------------------------------------------------------------------
def plan(r: Settings, ds: Dataset, data: dict, force: bool) -> Plan | str:
    """The version to train, or the reason there is nothing to do."""
    from retraining import training
    from retraining.guard import ledger
    from retraining.guard.slide import recent_entries

    reg = r.registry
    latest = reg.latest(data)
    if not force and latest and latest.get("dataset", {}).get("sha256") == ds.sha256 and latest.get("params") == r.settings():
        return f"data and settings equal those of {latest['version']} (use --force to retrain anyway)"
    champion = None
    if reg.production_path.is_file():
        champion = training.load_model(reg.production_path, "production model")
    elif data.get("production"):
        log.warning("The log names %s as production but %s is missing; treating it as absent.", data["production"], reg.production_path)
    schema_changed = bool(latest) and entry_schema(latest) != ds.schema()
    version = bump(latest["version"] if latest else None, schema_changed)
    champ_entry = reg.production_entry(data)
    recent = recent_entries(data, r.rule.recent_versions) if r.rule.rule == "noise" else []
    history = [v["metrics"]["candidate"]["roc_auc"] for v in data.get("versions", []) if not ledger.held_back(v) and (v.get("metrics") or {}).get("candidate")]
    plan = Plan(ds, latest, champ_entry, champion, version, schema_changed, ledger.last_accepted(data, champ_entry))
    plan.recent, plan.history = recent, history
    return plan


# -- guard -----------------------------------------------------------------------------
def guard(r: Settings, p: Plan) -> Guard:
    """Which rows are new and which the champion trained on; the data checks on the new rows.

    The champion's training rows are found whatever ``--data-checks`` says (no model is
    scored on rows it learned); ``off`` skips the new-row split and the checks and judges
    drift on the whole file, as before the checks existed.
    """
    from retraining.guard import ledger

    reg = r.registry
    champ_ledger = ledger.load_ledger(reg.artifact_path("ledger", p.champ_entry["version"])) if p.champ_entry else None
    trained, unknown = None, ""
    if champ_ledger is not None and champ_ledger.key == p.ds.split.get("key", {}):
        trained = ledger.in_training(p.ds, champ_ledger)
    elif p.champ_entry is not None and p.champion is not None:
        v = p.champ_entry["version"]
        unknown = (
            f"{v} has no row ledger (made before ledgers existed, or deleted)"
            if champ_ledger is None
            else f"the row key changed since {v} (a column added, removed or renamed, or another --id-column)"
        )
    if r.data_checks == "off":
        return Guard(drift=_drift(r, p), champion_trained=trained, champion_rows_unknown=unknown)
    from retraining.guard.checks import run_checks

    previous = ledger.load_ledger(reg.artifact_path("ledger", p.accepted["version"])) if p.accepted else None
    rows = ledger.split_rows(p.ds, previous)
    log.info("%s", rows.line())
    if p.accepted and p.latest and p.accepted["version"] != p.latest["version"]:
        log.warning(
            "New rows are counted against %s, the newest version whose data was accepted: %s was held back by a data check, "
            "so its new rows are checked again (fix them upstream, or --promote %s --reason TEXT to accept them).",
            p.accepted["version"],
            p.latest["version"],
            p.latest["version"],
        )
    reference = _reference_profile(r, p)
    version = p.champ_entry["version"] if p.champ_entry else None
    kw = {"mode": r.data_checks, "settings": r.check_settings, "reference_version": version, "threads": r.params.thread_count}
    report = run_checks(p.ds, reference, rows, reference_rows=trained, **kw)
    findings = list(report.findings)
    if p.accepted and p.latest and p.accepted["version"] != p.latest["version"]:  # tonight's arrivals alone, too
        from retraining.guard.checks import arrival_checks

        arrivals = ledger.split_rows(p.ds, ledger.load_ledger(reg.artifact_path("ledger", p.latest["version"])))
        findings += arrival_checks(p.ds, reference, arrivals, findings, **kw)
    drift = report.drift if reference is not None else _drift(r, p)
    return Guard(drift=drift, findings=findings, rows=rows.to_json(), champion_trained=trained, champion_rows_unknown=unknown)


def _reference_profile(r: Settings, p: Plan) -> dict | None:
    """The production model's training profile, or None (no champion, or made before profiles)."""
    if p.champ_entry is None:
        return None
    path = r.registry.artifact_path("profile", p.champ_entry["version"])
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _drift(r: Settings, p: Plan) -> dict:
    if p.champ_entry is None:
        why = "no production model in the version log" if p.champion is not None else "no production model yet"
        return {"reference": None, "note": f"no reference profile ({why})"}
    from retraining.guard.drift import compare as drift_compare

    version = p.champ_entry["version"]
    ref_path = r.registry.artifact_path("profile", version)
    if not ref_path.is_file():
        return {"reference": None, "note": f"no reference profile ({version} was made before profiles were stored)"}
    return drift_compare(_reference_profile(r, p), p.ds.X, p.ds.cat_features, version)


# -- evaluate --------------------------------------------------------------------------
def evaluate(r: Settings, p: Plan, g: Guard) -> Evaluation:
    """Train the candidate; score it and the champion on the same holdout rows."""
    from retraining import training
    from retraining.evaluation import compare_auc, compare_losses, holdout_metrics
    from retraining.guard.ledger import comparison_rows

    ds = p.ds
    unknown = [c for c in slice_columns(r) if c not in ds.X.columns]
    if unknown:
        from retraining.errors import UsageError

        raise UsageError(f"--slice-columns: {', '.join(map(repr, unknown))} not among the features ({', '.join(ds.features[:10])}...); name feature columns.")
    log.info("Training %s: %d iterations on %d rows (%s)", p.version, r.params.iterations, int((~ds.holdout).sum()), r.params.task_type)
    if r.report:
        threading.Thread(target=_preload_report, daemon=True).start()  # overlaps matplotlib's import with training
    model, seconds = training.train(ds, r.params)
    mask, overlap = comparison_rows(ds, g.champion_trained, g.champion_rows_unknown)
    dropped = int(ds.holdout.sum() - mask.sum())
    if dropped:
        log.info("Left %d holdout rows out of the comparison: the champion trained on them.", dropped)
    y = ds.y[mask]
    cand = training.predict(model, ds.X.loc[mask], ds.cat_features)
    ev = Evaluation(model, seconds, y, cand, {"candidate": holdout_metrics(y, cand), "champion": None}, dropped_trained_on=dropped)
    if p.champion is None:
        return ev
    ev.champion_scores, ev.note = training.score_champion(p.champion, ds, mask)
    if ev.champion_scores is not None:
        ev.findings = _holdout_overlap(r, overlap)
        ev.metrics["champion"] = holdout_metrics(y, ev.champion_scores)
        ev.comparison = compare_auc(y, cand, ev.champion_scores)
        ev.losses = compare_losses(y, cand, ev.champion_scores)
        ev.champion_auc = ev.metrics["champion"]["roc_auc"]
        if p.champ_entry is None:
            ev.note = f"{r.production_path} is not in the version log"
        elif r.data_checks != "off":
            ev.findings += _champion_drop(r, p, y, ev.champion_scores)
        if r.data_checks != "off":
            ev.findings += _outcome_checks(r, p, g, ev, mask)
    elif p.champ_entry is not None:
        ev.champion_auc = p.champ_entry["metrics"]["candidate"]["roc_auc"]
        ev.note += f"; compared with its recorded ROC-AUC {ev.champion_auc:.4f}"
    else:
        ev.note += " and it has no recorded ROC-AUC, so the candidate replaces it"
    return ev


def _holdout_overlap(r: Settings, finding: Any) -> list:
    """The ``holdout_overlap`` finding under the user's severities and mode (with ``off``: none)."""
    from retraining.guard.findings import CheckSettings, apply_severity

    if finding is None:
        return []
    if r.data_checks == "off":
        log.warning("%s", finding.message)
        return []
    return apply_severity([finding], r.check_settings or CheckSettings(), r.data_checks)


def _champion_drop(r: Settings, p: Plan, y, scores) -> list:
    from retraining.guard.checks import champion_drop

    found = champion_drop(y, scores, p.champ_entry.get("metrics") or {}, version=p.champ_entry["version"], settings=r.check_settings)
    if found is not None and r.data_checks == "warn":
        found.severity = "warn"
    return [found] if found is not None else []


def _outcome_checks(r: Settings, p: Plan, g: Guard, ev: Evaluation, mask) -> list:
    """Slices, calibration and an AUC jump: the candidate against the champion on the same holdout rows."""
    from retraining import training
    from retraining.guard import outcome
    from retraining.guard.findings import CheckSettings, apply_severity

    s, ds = r.check_settings or CheckSettings(), p.ds
    found = outcome.calibration_check(ev.y, ev.candidate_scores, ev.champion_scores, s, ev.losses)
    columns = slice_columns(r)
    if columns:
        deploys = judge(r.rule, ev.metrics["candidate"]["roc_auc"], ev.champion_auc, ev.comparison, ev.note, ev.losses).deploy  # within noise too
        more, ev.metrics["slices"] = outcome.slice_gate(ds.X.loc[mask], ev.y, ev.candidate_scores, ev.champion_scores, columns, ds.cat_features, s, deploys)
        found += more
    changed = set(ds.features) - set((p.champ_entry or {}).get("features") or ds.features)
    changed |= {n for n, f in (g.drift.get("features") or {}).items() if (f.get("psi_new") or 0) > s.drift_psi}
    changed |= {c for f in g.findings for c in f.columns}
    found += outcome.auc_jump(ev.metrics["candidate"]["roc_auc"], p.history, training.feature_importance(ev.model), changed, s)
    return apply_severity(found, s, r.data_checks)


def slice_columns(r: Settings) -> list[str]:
    """``--slice-columns``, else the check-settings file's ``slice_columns``."""
    return list(r.slice_columns or (r.check_settings.slice_columns if r.check_settings else []))


def _preload_report() -> None:
    from retraining.report import html as report

    report.preload()


# -- decide ----------------------------------------------------------------------------
def decide(r: Settings, p: Plan, g: Guard, ev: Evaluation) -> Verdict:
    """The deploy rule (``--rule noise`` or ``strict``, the slow-slide guard), unless a blocking data check says no."""
    outcome = judge(r.rule, ev.metrics["candidate"]["roc_auc"], ev.champion_auc, ev.comparison, ev.note, ev.losses)
    if outcome.deploy and p.recent and ev.champion_auc is not None:  # only a deploy needs the slow-slide guard's scoring
        from retraining.guard.slide import recent_best

        outcome = apply_slide(r.rule, outcome, recent_best(r.registry, p.recent, p.ds, ev.model))
    deploy, reason = outcome.deploy, outcome.reason
    findings = [*g.findings, *ev.findings]
    for finding in findings:
        log.warning("%s", finding.line())
    blocking = [f for f in findings if f.severity == "block"]
    if blocking and r.data_checks == "block":
        names = ", ".join(f.name for f in blocking)
        verdict = "would deploy" if deploy else "would not deploy either"
        overrule = f"overrule with --promote {p.version} --reason TEXT"
        reason = f"blocked by data check {names}: {blocking[0].message} (the AUC rule {verdict}: {outcome.why}; {overrule})"
        deploy = False
    if p.schema_changed:
        reason += "; feature schema changed, so the major version went up"
    return Verdict(Decision.DEPLOYED if deploy else Decision.KEPT, reason, findings, outcome)


# -- record ----------------------------------------------------------------------------
def record(r: Settings, data: dict, p: Plan, g: Guard, ev: Evaluation, v: Verdict) -> Recorded:
    """Version file, artifacts, log entry and (if deployed) production; under the lock."""
    reg = r.registry
    path = reg.version_path(p.version)
    tmp = temp_path_beside(path)
    try:
        ev.model.save_model(str(tmp))
    except Exception as exc:  # CatBoost reports a full disk as CatBoostError "(Error 28: No space left on device)"
        tmp.unlink(missing_ok=True)
        if "Error 28:" in str(exc) or "No space left" in str(exc):
            raise no_space_error(OSError(28, str(exc)), path.parent, None) from exc
        raise
    commit_temp(tmp, path)
    _save_artifacts(r, p, ev)
    from retraining.guard.ledger import make_ledger, save_ledger

    save_ledger(make_ledger(p.version, p.ds), reg.artifact_path("ledger", p.version))
    entry = _entry(r, p, g, ev, v, path)
    reg.add_version(data, entry, deploy_reason=v.reason if v.decision == Decision.DEPLOYED else None)
    return Recorded(entry, path)


def _save_artifacts(r: Settings, p: Plan, ev: Evaluation) -> None:
    """The training-data profile and the holdout scores (for drift and the report)."""
    import numpy

    from retraining.guard.drift import profile as make_profile

    reg, ds = r.registry, p.ds
    prof = reg.artifact_path("profile", p.version)
    prof.parent.mkdir(parents=True, exist_ok=True)
    train = ~ds.holdout
    profile = make_profile(ds.X[train], ds.cat_features, y=ds.y[train])
    example = ds.X[train].head(5)
    profile["example"] = example.astype(object).where(example.notna(), None).to_dict(orient="records")
    atomic_write_json(prof, profile)
    scores = reg.artifact_path("evaluation", p.version)
    scores.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"y": ev.y.astype("int8"), "candidate": ev.candidate_scores.astype("float32")}
    if ev.champion_scores is not None:
        arrays["champion"] = ev.champion_scores.astype("float32")
    tmp = temp_path_beside(scores)
    with tmp.open("wb") as fh:
        numpy.savez_compressed(fh, **arrays)
    commit_temp(tmp, scores)


def _entry(r: Settings, p: Plan, g: Guard, ev: Evaluation, v: Verdict, path: Path) -> VersionEntry:
    from retraining import training

    all_params = ev.model.get_all_params()
    ds = p.ds
    return VersionEntry(
        version=p.version,
        file=path.name,
        sha256=sha256_file(path),
        created_at=utc_now(),
        decision=v.decision,
        reason=v.reason,
        bump="first" if p.latest is None else ("major" if p.schema_changed else "minor"),
        dataset=ds.describe(),
        schema=ds.schema(),
        features=ds.features,
        categorical_features=ds.cat_features,
        params=r.settings(),
        catboost_params={k: all_params.get(k) for k in ("learning_rate", "depth", "l2_leaf_reg", "loss_function", "iterations")},
        rule=v.outcome.to_dict(r.rule) if v.outcome else r.rule.to_dict(),
        metrics={
            **ev.metrics,
            "holdout_rows": len(ev.y),
            "holdout_positives": int(ev.y.sum()),
            "holdout_dropped_trained_on": ev.dropped_trained_on,
        },
        champion={
            "version": p.champ_entry["version"] if p.champ_entry else None,
            "present": p.champion is not None,
            "scored_on_holdout": ev.comparison is not None,
            "note": ev.note,
        },
        delong=ev.comparison.to_dict() if ev.comparison else None,
        training_seconds=round(ev.train_seconds, 3),
        feature_importance=training.feature_importance(ev.model),
        artifacts={k: str(r.registry.artifact_path(k, p.version).relative_to(r.models_dir)) for k in ("profile", "evaluation", "report", "ledger")},
        environment=_environment(),
        drift=g.drift,
        checks=[f.to_json() for f in v.findings],
        rows=g.rows,
        extra={"data_checks": r.data_checks, "check_settings": _changed_settings(r.check_settings)},
    )


def _changed_settings(settings: Any) -> dict:
    """The data-check settings that differ from the defaults (what the report and --history --verbose show)."""
    from dataclasses import asdict

    from retraining.guard.findings import CheckSettings

    default = asdict(CheckSettings())
    return {k: v for k, v in asdict(settings).items() if v != default.get(k)} if settings is not None else {}


def _environment() -> dict:
    import catboost
    import numpy
    import pandas

    from retraining import __version__

    return {
        "python": platform.python_version(),
        "catboost": catboost.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "retrain_model": __version__,
    }


# -- result ----------------------------------------------------------------------------
def result(data: dict, p: Plan, g: Guard, ev: Evaluation, rec: Recorded, before: str | None) -> RunResult:
    from retraining.guard.drift import summary_line

    return RunResult(
        status=rec.entry.decision,
        version=p.version,
        reason=rec.entry.reason,
        production=data.get("production"),
        candidate_auc=ev.metrics["candidate"]["roc_auc"],
        champion_auc=ev.champion_auc,
        champion_version=p.champ_entry["version"] if p.champ_entry else None,
        delong=ev.comparison.to_dict() if ev.comparison else None,
        model_path=str(rec.path),
        drift=summary_line(g.drift),
        checks=rec.entry.checks,
        rows=g.rows,
        holdout_dropped_trained_on=ev.dropped_trained_on,
        production_before=before,
        rule=rec.entry.rule,
    )


# -- publish ---------------------------------------------------------------------------
def publish(r: Settings, data: dict, rec: Recorded) -> Path | None:
    """The report and the MLflow mirror (under the lock); neither fails the run. The notification follows the lock."""
    entry = rec.entry.to_json()
    path = write_report(r.registry, data, entry, entry) if r.report else None
    r.sync_mirror(data)
    return path


def write_report(registry: Registry, data: dict, entry: dict, full: dict | None = None) -> Path | None:
    """The HTML report of ``entry``'s version; None (and a warning) if it cannot be written: the model is safe."""
    from retraining.report import html as report

    try:
        entry = full or registry.full_entry(data, entry["version"])
        champ_version = (entry.get("champion") or {}).get("version")
        champ = registry.full_entry(data, champ_version) if champ_version else None
        html = report.render(entry, data, report.load_evaluation(registry.artifact_path("evaluation", entry["version"])), champ)
        path = report.write(registry.artifact_path("report", entry["version"]), html)
    except (OSError, ValueError, KeyError) as exc:  # a report failure must not fail the run
        log.warning("Could not write the report for %s: %s", entry["version"], exc)
        return None
    log.info("Report: %s", path)
    return path
