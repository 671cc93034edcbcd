"""The bake comparison: the deploy now in production against the version it replaced, on the same live rows.

During the bake window ``serve.py`` scores every request with the previous production
version too (not served; ``variant: previous``, same ``request_id``). When outcomes arrive,
:func:`compare` runs the paired DeLong test on the rows that have both scores and an
outcome. :func:`judge` turns it into a finding: the new version significantly worse
(one-sided p below ``rollback_p_value``, at least ``min_per_class`` outcomes of each class)
is a ``deploy_worse`` finding. :func:`roll_back` promotes the previous version back through
the registry, once per deploy: a rollback event in the version log names the deploy it
undid (``details.deploy_at``), so a rerun, or a second monitor, never repeats it.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from retraining.evaluation import compare_auc
from retraining.guard.findings import BLOCK, WARN, Finding
from retraining.monitoring.settings import MonitorSettings
from retraining.monitoring.stats import always_valid_p, normal_sf

log = logging.getLogger(__name__)
CHANGES = ("deploy", "promotion", "rollback")
MONITOR = "monitor.py"


def current_deploy(data: dict) -> dict | None:
    """The event that put today's production version in place (a deploy, a promotion, a rollback by hand).

    None when there was no version before it, or when the monitor's own rollback did it:
    judging that one against the version it undid could only roll back and forth.
    """
    production = data.get("production")
    for event in reversed(data.get("events", [])):
        if event.get("to") == production and event.get("from") != production:  # a re-promotion of production changed nothing
            by_monitor = (event.get("details") or {}).get("by") == MONITOR
            usable = event.get("event") in CHANGES and event.get("from") and not by_monitor
            return event if usable else None
    return None


def rolled_back(data: dict, deploy: dict) -> dict | None:
    """The rollback event that already undid ``deploy``, if any."""
    for event in reversed(data.get("events", [])):
        details = event.get("details") or {}
        if event.get("event") == "rollback" and details.get("deploy_at") == deploy.get("at") and details.get("deploy_to") == deploy.get("to"):
            return event
    return None


def compare(labelled: pd.DataFrame, shadowed_rows: int, deploy: dict, tau: float = 0.02) -> dict:
    """Counts and, with two of each class, the paired DeLong test of the deploy vs the previous version.

    ``labelled``: the rows with an outcome; ``shadowed_rows``: the deploy's rows with a shadow score of the previous version.
    """
    pair = (labelled["model_version"] == deploy["to"]).to_numpy() & (labelled["previous_version"] == deploy["from"]).to_numpy()
    y = labelled["y"].to_numpy()[pair].astype(bool)
    out = {"deploy_at": deploy.get("at"), "deploy_to": deploy["to"], "previous": deploy["from"], "shadowed_rows": int(shadowed_rows)}
    out.update(rows_with_outcome=int(pair.sum()), positives=int(y.sum()), negatives=int((~y).sum()))
    if out["positives"] < 2 or out["negatives"] < 2:
        return out
    d = compare_auc(y, labelled["score"].to_numpy(dtype=float)[pair], labelled["previous_score"].to_numpy(dtype=float)[pair])
    p_fixed = normal_sf(-d.z) if math.isfinite(d.z) else float(d.z < 0)
    se = abs(d.delta / d.z) if d.z and math.isfinite(d.z) else 0.0
    p_worse = always_valid_p(d.delta, se, tau) if d.delta < 0 else 1.0
    out.update(auc_new=d.auc_new, auc_previous=d.auc_old, delta=d.delta, ci_low=d.ci_low, ci_high=d.ci_high, z=d.z, p_fixed=p_fixed, p_worse=p_worse)
    out["test"] = "paired DeLong (same live rows), one-sided, always-valid mixture SPRT: new worse"
    return out


def judge(result: dict, s: MonitorSettings, auto: bool, command: str) -> Finding | None:
    """A ``deploy_worse`` finding when the deploy is significantly worse on enough outcomes."""
    if "p_worse" not in result or min(result["positives"], result["negatives"]) < s.min_per_class:
        return None
    if not (result["p_worse"] < s.rollback_p_value and result["delta"] < 0):
        return None
    numbers = {k: rounded(v) for k, v in result.items() if k != "test"}
    message = (
        f"{result['deploy_to']} does worse live than {result['previous']} on the same {result['rows_with_outcome']} rows: "
        f"AUC {result['auc_new']:.4f} vs {result['auc_previous']:.4f} (paired DeLong, one-sided p = {result['p_worse']:.3g})"
    )
    if auto:
        return Finding("deploy_worse", WARN, [], numbers, message + f"; rolled back to {result['previous']}")
    return Finding("deploy_worse", BLOCK, [], numbers, message + f"; roll back with: {command}")


def rollback_command(models_dir: str, production: str, previous: str) -> str:
    return (
        f'python retrain_model.py --models-dir {models_dir} --production {production} --promote {previous} --reason "monitor: live AUC worse than {previous}"'
    )


def roll_back(registry, result: dict, finding: Finding) -> dict | None:
    """Promote the previous version back, under the registry's lock, unless production moved on or it was done."""
    with registry.session() as data:
        deploy = current_deploy(data)
        if deploy is None or deploy.get("at") != result["deploy_at"] or deploy.get("to") != result["deploy_to"]:
            log.warning("Production changed since the comparison (now %s); no rollback.", data.get("production"))
            return None
        if rolled_back(data, deploy):
            return None
        reason = f"monitor: {finding.message}"
        details = {"by": MONITOR, **finding.numbers}
        return registry.promote(data, result["previous"], reason, kind="rollback", details=details)


def rounded(value):
    """A number as the report keeps it: 6 decimals for finite floats."""
    if isinstance(value, float | np.floating):
        return round(float(value), 6) if math.isfinite(value) else float(value)
    return value
