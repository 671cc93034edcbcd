"""The deploy rule: when a candidate replaces the champion (no numpy, so it imports fast).

Two rules (``--rule``):

- ``noise`` (the default): "better or equal", where *equal* means equal within the
  holdout's noise. The candidate deploys when its ROC-AUC is at least the champion's, or
  when it is not significantly worse (one-sided paired DeLong p >= ``alpha``) **and** its
  drop is at most ``margin``. Equal is then also asked of the probabilities, judged the same
  way (when both models' per-row log losses on the same rows are known): the candidate's
  log loss must not be significantly higher (a paired one-sided test at the same ``alpha``)
  **and** at most ``1 + loss_tolerance`` times the champion's. Where two ROC-AUCs on a small
  holdout cannot be told apart, the proper scoring rule often still can (verdict ``worse
  log loss``). Within noise the fresher model wins.
  It is then held if it is more than ``margin`` below the best of the recent versions on
  tonight's holdout (the slow-slide guard, :func:`apply_slide`; the numbers come from
  ``retraining.guard.slide``).
- ``strict``: exactly ``AUC(new) >= AUC(old)`` on the raw numbers (the original spec).

``--min-auc``, ``--min-improvement`` and ``--require-significance`` apply on top of either.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

RULES = ("noise", "strict")
DEPLOYED, KEPT = "deployed", "kept for review"


@dataclass(frozen=True)
class DeployRule:
    """When a candidate replaces the champion (see the module docstring)."""

    min_improvement: float = 0.0
    require_significance: bool = False
    alpha: float = 0.05
    min_auc: float | None = None
    rule: str = "noise"
    margin: float = 0.005
    recent_versions: int = 5
    loss_tolerance: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """What the rule decided and the numbers it decided on (the log entry's ``rule`` dict adds the settings)."""

    deploy: bool
    why: str  # the sentence without the decision, e.g. "ROC-AUC 0.8506 vs 0.8524: equal within noise (...)"
    verdict: str  # first | better | equal | within noise | worse | worse log loss | floor | min improvement | not significant | slide
    rule: str = "noise"
    p_worse: float | None = None  # one-sided paired DeLong p of "the candidate is worse"
    drop: float | None = None  # champion minus candidate ROC-AUC (negative: the candidate is higher)
    slide: dict | None = None  # the slow-slide guard's numbers (retraining.guard.slide.recent_best)
    loss: dict | None = None  # the paired log-loss test (retraining.evaluation.LossComparison.to_dict)

    @property
    def reason(self) -> str:
        return f"{self.why}: {DEPLOYED if self.deploy else KEPT}"

    @property
    def within_noise(self) -> bool:
        return self.deploy and self.verdict == "within noise"

    def to_dict(self, rule: DeployRule) -> dict:
        """The settings and the numbers, for the log entry, ``--json``, the report and MLflow."""
        numbers = {"verdict": self.verdict, "p_worse": _round(self.p_worse), "drop": _round(self.drop), "slide": self.slide, "loss": self.loss}
        return {**rule.to_dict(), "rule": self.rule, **numbers}


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 8)


def p_worse(comparison: Any) -> float:
    """One-sided p-value of the paired DeLong test for "the candidate is worse" (``Phi(z)``).

    ``comparison.p_value_one_sided`` is the other side ("the candidate is better", ``1 - Phi(z)``).
    """
    return 0.5 * math.erfc(-float(comparison.z) / math.sqrt(2.0))


def judge(rule: DeployRule, candidate_auc: float, champion_auc: float | None, comparison: Any, champion_note: str = "", losses: Any = None) -> Outcome:
    """The rule and the stricter gates on top (everything but the slow-slide guard, which needs the models).

    ``losses`` is the paired log-loss test on the same rows (``retraining.evaluation.compare_losses``
    with ``rule.loss_tolerance``), or None; it is recorded under either rule and decides only
    a deploy within noise.
    """
    if rule.min_auc is not None and candidate_auc < rule.min_auc:
        return Outcome(False, f"ROC-AUC {candidate_auc:.4f} is below the floor --min-auc {rule.min_auc:.4f}", "floor", rule.rule)
    if champion_auc is None:
        return Outcome(True, champion_note or "first model: nothing in production to compare with", "first", rule.rule)
    note = f" ({champion_note})" if champion_note else ""
    head = f"ROC-AUC {candidate_auc:.4f} vs {champion_auc:.4f}{note}"
    drop = round(champion_auc - candidate_auc, 9)  # the AUCs are recorded to 6 decimals: no float dust at the margin
    p = None if comparison is None else p_worse(comparison)  # recorded under either rule
    out = _strict(rule, head, drop, p) if rule.rule == "strict" or comparison is None else _noise(rule, head, drop, p, losses)
    out = replace(out, loss=None if losses is None else losses.to_dict())
    return _gates(rule, out, head, drop, comparison) if out.deploy else out


def _strict(rule: DeployRule, head: str, drop: float, p: float | None) -> Outcome:
    """Exactly ``new >= old + min_improvement`` on the raw numbers (also the noise rule's fallback without a paired test)."""
    which = "--rule strict" if rule.rule == "strict" else "no paired test on the same rows, so the strict rule decides"
    if -drop >= rule.min_improvement:
        verdict = "equal" if drop == 0 else "better"
        return Outcome(True, f"{head}: {verdict} ({which})", verdict, "strict", p, drop)
    if rule.min_improvement > 0 and drop <= 0:
        why = f"{head}: improvement {0.0 - drop:+.4f} is below --min-improvement {rule.min_improvement:.4f} ({which})"
        return Outcome(False, why, "min improvement", "strict", p, drop)
    return Outcome(False, f"{head}: worse on the raw numbers ({which})", "worse", "strict", p, drop)


def _noise(rule: DeployRule, head: str, drop: float, p: float, losses: Any = None) -> Outcome:
    """Better, or equal within noise: not significantly worse (p >= alpha), a drop of at most the margin, and no worse log loss."""
    if drop <= 0:
        verdict = "equal" if drop == 0 else "better"
        return Outcome(True, f"{head}: {verdict}", verdict, "noise", p, drop)
    numbers = f"DeLong one-sided p = {p:.3g}, drop {drop:.4f}"
    if p < rule.alpha or drop > rule.margin:
        failed = [f"p < {rule.alpha:g}: significantly worse"] if p < rule.alpha else []
        failed += [f"drop > margin {rule.margin:g}"] if drop > rule.margin else []
        return Outcome(False, f"{head}: worse ({numbers}; {', '.join(failed)})", "worse", "noise", p, drop)
    if losses is None:  # no per-row losses on the same rows: the ROC-AUC alone
        return Outcome(True, f"{head}: equal within noise ({numbers} <= {rule.margin:g}; the fresher model wins)", "within noise", "noise", p, drop)
    limit = 1.0 + rule.loss_tolerance
    loss = f"log loss {losses.log_loss_new:.4f} vs {losses.log_loss_old:.4f} (x{losses.ratio:.3f}), paired one-sided p = {losses.p_worse:.3g}"
    failed = [f"p < {rule.alpha:g}: significantly worse"] if losses.p_worse < rule.alpha else []
    failed += [f"more than x{limit:g}"] if round(losses.ratio, 9) > limit else []  # no float dust at the tolerance
    if failed:
        why = f"{head}: equal within noise by ROC-AUC ({numbers} <= {rule.margin:g}), but worse by {loss}; {', '.join(failed)}"
        return Outcome(False, why, "worse log loss", "noise", p, drop)
    why = f"{head}: equal within noise ({numbers} <= {rule.margin:g}; {loss}, <= x{limit:g}; the fresher model wins)"
    return Outcome(True, why, "within noise", "noise", p, drop)


def _gates(rule: DeployRule, out: Outcome, head: str, drop: float, comparison: Any) -> Outcome:
    """``--min-improvement`` and ``--require-significance`` on top of a deploy."""
    if out.rule == "noise" and rule.min_improvement > 0 and -drop < rule.min_improvement:
        why = f"{head}: improvement {0.0 - drop:+.4f} is below --min-improvement {rule.min_improvement:.4f}"
        return replace(out, deploy=False, why=why, verdict="min improvement")
    if rule.require_significance:
        if comparison is None:
            why = f"{head}: --require-significance, but the champion could not be scored on the same holdout"
            return replace(out, deploy=False, why=why, verdict="not significant")
        if comparison.p_value_one_sided >= rule.alpha:
            why = f"{head}: not significantly better (one-sided DeLong p = {comparison.p_value_one_sided:.3g} >= {rule.alpha:g}; --require-significance)"
            return replace(out, deploy=False, why=why, verdict="not significant")
    return out


def apply_slide(rule: DeployRule, out: Outcome, slide: dict | None) -> Outcome:
    """No slow slide: hold a deploy that is more than the margin below the best recent version on the same rows.

    ``slide["best"]`` is ``{"version", "auc", "candidate_auc", "rows"}``: the recent version
    whose lead over the candidate is largest, both scored on tonight's holdout less that
    version's training rows. Only the noise rule has this guard; strict is the raw comparison.
    """
    if slide is None or rule.rule != "noise":
        return out
    out = replace(out, slide=slide)
    best = slide.get("best")
    if not out.deploy or not best:
        return out
    gap = round(best["auc"] - best["candidate_auc"], 9)
    if gap <= rule.margin:
        return out
    why = (
        f"{out.why}; but ROC-AUC {best['candidate_auc']:.4f} is {gap:.4f} below {best['version']}'s {best['auc']:.4f} "
        f"on the same {best['rows']} holdout rows, more than the margin {rule.margin:g} (no slow slide)"
    )
    return replace(out, deploy=False, why=why, verdict="slide")


def decide(rule: DeployRule, candidate_auc: float, champion_auc: float | None, comparison: Any, champion_note: str = "") -> tuple[bool, str]:
    """Return ``(deploy, reason)`` for a candidate against the champion (:func:`judge` without the slide guard)."""
    out = judge(rule, candidate_auc, champion_auc, comparison, champion_note)
    return out.deploy, out.reason
