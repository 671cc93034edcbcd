"""The deploy rule: when a candidate replaces the champion (no numpy, so it imports fast)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DeployRule:
    """When a candidate replaces the champion. The user's rule: AUC(new) >= AUC(old)."""

    min_improvement: float = 0.0
    require_significance: bool = False
    alpha: float = 0.05
    min_auc: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def decide(rule: DeployRule, candidate_auc: float, champion_auc: float | None, comparison: Any, champion_note: str = "") -> tuple[bool, str]:
    """Return ``(deploy, reason)`` for a candidate against the champion."""
    if rule.min_auc is not None and candidate_auc < rule.min_auc:
        return False, f"ROC-AUC {candidate_auc:.4f} is below the floor --min-auc {rule.min_auc:.4f}"
    if champion_auc is None:
        return True, champion_note or "first model: nothing in production to compare with"
    note = f" ({champion_note})" if champion_note else ""
    delta = candidate_auc - champion_auc
    if delta < rule.min_improvement:
        if rule.min_improvement > 0 and delta >= 0:
            return False, (
                f"ROC-AUC {candidate_auc:.4f} vs champion {champion_auc:.4f}{note}: improvement {delta:+.4f} "
                f"is below --min-improvement {rule.min_improvement:.4f}"
            )
        return False, f"ROC-AUC {candidate_auc:.4f} is worse than the champion's {champion_auc:.4f}{note}"
    if rule.require_significance:
        if comparison is None:
            return False, f"--require-significance: the champion could not be scored on the same holdout{note}"
        if comparison.p_value_one_sided >= rule.alpha:
            return False, (
                f"ROC-AUC {candidate_auc:.4f} vs champion {champion_auc:.4f}: not significantly better "
                f"(one-sided DeLong p = {comparison.p_value_one_sided:.3g} >= {rule.alpha})"
            )
    verb = "equals" if delta == 0 else "beats"
    return True, f"ROC-AUC {candidate_auc:.4f} {verb} the champion's {champion_auc:.4f}{note}"
