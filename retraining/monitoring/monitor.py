"""One monitor run: read what is new in the log, join the outcomes, judge, act, remember.

:func:`run` is the story: the state and the new log lines (:mod:`.logs`), checked against
the registry (a version it no longer has, a log of another registry); the outcomes joined
(:mod:`.analysis`); per-version numbers; the findings (``decay``, ``drift``, ``deploy_worse``);
the rollback (:mod:`.bake`); then the state and the page are written. Everything that can
be wrong with the input is found before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.errors import DataError, VersionNotFoundError
from retraining.guard.findings import WARN, Finding
from retraining.monitoring import aggregates, analysis, bake, logs, stats
from retraining.monitoring.aggregates import Aggregates
from retraining.monitoring.kept import Kept
from retraining.monitoring.settings import MonitorSettings
from retraining.monitoring.store import State, Store

log = logging.getLogger(__name__)
REPORT_FORMAT = 1


@dataclass
class Request:
    """What one run is asked to do (the command line's flags, as values)."""

    logs: list[Path]
    outcomes: pd.DataFrame | Callable[[], pd.DataFrame] | None  # the table, or a function that reads it (analysis.Outcomes)
    where: str = "outcomes"
    id_column: str = "id"
    label_column: str = "label"
    positive_class: str | None = None
    salt: str | None = None
    settings: MonitorSettings = field(default_factory=MonitorSettings)
    page: bool = True
    source: str | None = None  # a digest of the outcomes' bytes and how they are read (cli.outcome_source)


def run(registry, req: Request) -> dict:
    """The monitor's report (what ``--json`` prints); performs the rollback when settings allow."""
    store = Store(registry.models_dir)
    state = store.load()
    planned = logs.plan(logs.log_files(req.logs), state.offsets)
    new = logs.read_new(planned)
    data = registry.whole_log(registry.read_log())
    check_versions(new, registry, data)
    outcomes = None
    if req.outcomes is not None:
        outcomes = analysis.Outcomes(req.outcomes, req.id_column, req.label_column, req.positive_class, req.salt, req.where, req.source)
    holdout = Holdouts(registry, data)
    kept = Kept(store, state, new)
    agg = kept.sums(holdout.edges)
    joined, labelled, notes = kept.join(outcomes)
    live = Live(labelled, agg, {v: holdout.reference_counts(v) for v in agg.versions()}, analysis.Memo(state.memo))
    versions = analysis.summarize(labelled, agg, {v: holdout[v]["summary"] for v in agg.versions()}, live.references, live.memo)
    report = {"format": REPORT_FORMAT, "production": data.get("production"), "versions": versions, "counts": joined.counts, "notes": notes + joined.notes}
    report["findings"], report["actions"], report["bake"] = [], [], None
    production = data.get("production")
    judge_production(report, live, holdout[production] if production in agg.versions() else None, req.settings)
    judge_features(report, registry, data, req, live)
    judge_bake(report, registry, data, live, req.settings)
    recommend(report, req.settings)
    report["findings"] = [f.to_json() for f in report["findings"]]
    for f in planned:
        state.offsets[f.head] = f.end
        state.files[f.head] = str(f.path)
    state.memo = live.memo.used
    state.last = {k: report[k] for k in ("production", "versions", "findings", "actions", "retrain_recommended", "reasons")}
    store.save(state, new, agg, kept.cache)
    if req.page:
        from retraining.monitoring.page import write_page

        report["page"] = str(write_page(store.page_path, report))
    return report


@dataclass
class Live:
    """What the judges read: the rows with an outcome, the sums over every row, each version's holdout PSI counts."""

    labelled: pd.DataFrame
    agg: Aggregates
    references: dict
    memo: analysis.Memo

    def rows_of(self, version: str, days: tuple[int, int] | None = None) -> pd.DataFrame:
        """The version's labelled rows (days in ``[first, last]`` if given)."""
        rows = self.labelled[(self.labelled["model_version"] == version).to_numpy()]
        return rows if days is None else rows[((rows["day"] >= days[0]) & (rows["day"] <= days[1])).to_numpy()]

    def last_day(self, version: str) -> int | None:
        return max((d for v, d in self.agg.keys if v == version), default=None)


class Holdouts(dict):
    """version -> :func:`holdout_info`, looked up on first use."""

    def __init__(self, registry, data: dict) -> None:
        super().__init__()
        self.registry, self.data = registry, data
        self.edges = _Lazy(lambda v: aggregates.reference_edges({v: self[v]["scores"]})[v])

    def __missing__(self, version: str) -> dict:
        self[version] = holdout_info(self.registry, self.data, version)
        return self[version]

    def reference_counts(self, version: str) -> np.ndarray | None:
        edges = self.edges[version]
        return None if edges is None else stats.psi_counts(edges, self[version]["scores"])


class _Lazy(dict):
    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key):
        self[key] = self.make(key)
        return self[key]


def check_versions(new: pd.DataFrame, registry, data: dict) -> None:
    """Every version in the new lines is in this registry, with the same model sha256."""
    pairs = set()
    for v, h in (("model_version", "model_sha256"), ("previous_version", "previous_sha256")):
        if not len(new):
            continue
        vc, vn = aggregates.category_codes(new[v])
        hc, hn = aggregates.category_codes(new[h])
        both = (vc >= 0) & (hc >= 0)
        combined = vc[both].astype(np.int64) * max(len(hn), 1) + hc[both]
        pairs |= {(vn[int(c) // len(hn)], hn[int(c) % len(hn)]) for c in np.flatnonzero(np.bincount(combined, minlength=len(vn) * len(hn)))}
    for version, sha in sorted(pairs):
        try:
            entry = registry.find(data, version)
        except VersionNotFoundError as exc:
            raise DataError(
                f"the log has predictions of {version}, which {registry.log_path} does not have: "
                "a log of another registry, or a deleted version; pass the right --models-dir or --log."
            ) from exc
        if entry["sha256"] != sha:
            raise DataError(
                f"the log's {version} (model sha256 {sha[:12]}...) is not this registry's {version} ({entry['sha256'][:12]}...): "
                "a log of another registry; pass the right --models-dir or --log."
            )


def holdout_info(registry, data: dict, version: str) -> dict:
    """The version's holdout AUC, its standard error and holdout scores (for drift)."""
    entry = registry.full_entry(data, version)
    auc = ((entry.get("metrics") or {}).get("candidate") or {}).get("roc_auc")
    ds = entry.get("dataset") or {}
    scores = se = None
    path = registry.artifact_path("evaluation", version)
    if path.is_file():
        with np.load(path) as z:
            scores = z["candidate"].astype(float)
            se = stats.holdout_se(z["y"], scores)
    elif auc is not None and ds.get("holdout_rows"):
        pos = int(ds.get("holdout_positives") or 0)
        se = stats.hanley_mcneil_se(auc, pos, int(ds["holdout_rows"]) - pos)
    summary = {"holdout_auc": auc, "holdout_rows": ds.get("holdout_rows"), "created_at": entry.get("created_at")}
    return {"summary": summary, "auc": auc, "se": se, "scores": scores}


def judge_production(report: dict, live: Live, holdout: dict | None, s: MonitorSettings) -> None:
    """``decay`` and score ``drift`` of the production version, over the last ``decay_window_days``."""
    production = report["production"]
    last = live.last_day(production) if production else None
    if holdout is None or last is None:
        return
    days = (last - s.decay_window_days + 1, last)
    window = live.rows_of(production, days)
    labelled = live.memo.realized(window)
    test = stats.decay_test(labelled, holdout["auc"], holdout["se"], s.sequential_tau)
    enough = labelled["positives"] >= s.min_per_class and labelled["n"] - labelled["positives"] >= s.min_per_class
    if test is not None and enough and test["p_value"] < s.decay_p_value and test["drop"] >= s.decay_min_drop:
        numbers = {"realized_auc": round(labelled["roc_auc"], 6), "holdout_auc": holdout["auc"], **{k: round(v, 6) for k, v in test.items() if k != "test"}}
        numbers.update(rows_with_outcome=len(window), positives=labelled["positives"], window_days=s.decay_window_days)
        report["findings"].append(
            Finding(
                "decay",
                WARN,
                [],
                numbers,
                f"{production}: realized AUC {labelled['roc_auc']:.4f} is below"
                f" its holdout AUC {holdout['auc']:.4f} ({test['test']}, p = {test['p_value']:.3g})",
            )
        )
    keys = live.agg.of_version(production, days)
    psi = live.agg.score_psi(production, keys, live.references.get(production))
    rows = int(live.agg.rows[keys].sum())
    if psi is not None and rows >= s.min_drift_rows and psi > s.score_drift_psi:
        report["findings"].append(
            Finding(
                "drift",
                WARN,
                ["score"],
                {"psi": round(psi, 6), "rows": rows},
                f"{production}: served scores drifted from its holdout scores (PSI {psi:.3f} > {s.score_drift_psi:g})",
            )
        )
    for item in report["versions"]:
        if item["version"] == production:
            item["score_psi"] = None if psi is None else round(psi, 6)


def judge_features(report: dict, registry, data: dict, req: Request, live: Live) -> None:
    """``drift`` of the sampled served features of the production version (``features.jsonl``)."""
    from retraining.monitoring.features import feature_drift

    production = report["production"]
    last = live.last_day(production) if production else None
    if last is None:
        return
    since = analysis.day_date(last - req.settings.decay_window_days + 1)
    result, finding = feature_drift(registry, data, req.logs, production, since, req.settings.min_drift_rows)
    if result is not None:
        report["feature_drift"] = {k: result[k] for k in ("significant", "moderate", "max_psi", "drifted_share")}
    if finding is not None:
        report["findings"].append(finding)


def judge_bake(report: dict, registry, data: dict, live: Live, s: MonitorSettings) -> None:
    """The deploy in production against the version it replaced; a rollback if it lost and settings allow."""
    deploy = bake.current_deploy(data)
    if deploy is None or bake.rolled_back(data, deploy):
        return
    result = bake.compare(live.labelled, live.agg.pairs.get((deploy["to"], deploy["from"]), 0), deploy, s.sequential_tau)
    report["bake"] = {k: bake.rounded(v) for k, v in result.items()}
    command = bake.rollback_command(str(registry.models_dir), str(registry.production_path), deploy["from"])
    finding = bake.judge(result, s, s.auto_rollback, command)
    if finding is None:
        return
    if s.auto_rollback:
        event = bake.roll_back(registry, result, finding)
        if event is None:
            return
        report["actions"].append({"action": "rollback", "from": event["from"], "to": event["to"], "at": event["at"], "reason": event["reason"], "event": event})
        report["production"] = event["to"]
    report["findings"].append(finding)


def recommend(report: dict, s: MonitorSettings) -> None:
    reasons = [f.message for f in report["findings"] if f.name in ("decay", "drift")]
    production = next((v for v in report["versions"] if v["version"] == report["production"]), None)
    if s.retrain_after_rows and production and production["rows_with_outcome"] >= s.retrain_after_rows:
        reasons.append(f"{production['rows_with_outcome']} labelled rows of {production['version']} (retrain_after_rows {s.retrain_after_rows})")
    report["retrain_recommended"] = bool(reasons)
    report["reasons"] = reasons


def history_rows(state: State) -> list[dict]:
    """The last run's numbers per version, for ``--history``."""
    return list((state.last or {}).get("versions", []))
