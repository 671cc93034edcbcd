"""What one run produces: :class:`RunResult` (what :meth:`ModelRetrainer.retrain` returns)
and the small records each step of :mod:`retraining.run` hands to the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from retraining.guard.ledger import held_back
from retraining.records import Decision, VersionEntry

if TYPE_CHECKING:
    import numpy

    from retraining.data.dataset import Dataset
    from retraining.evaluation import AucComparison, LossComparison
    from retraining.rules import Outcome

T = TypeVar("T")


class Timer:
    """Seconds per step, for ``RunResult.timings``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t, 3)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


@dataclass
class RunResult:
    """What one :meth:`ModelRetrainer.retrain` did."""

    status: str  # a Decision value: "deployed", "kept for review" or "unchanged"
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
    checks: list[dict] = field(default_factory=list)
    rows: dict | None = None
    holdout_dropped_trained_on: int = 0
    production_before: str | None = None
    rule: dict | None = None  # the deploy rule's settings and numbers: rule, alpha, margin, verdict, p_worse, drop, slide

    @property
    def within_noise(self) -> bool:
        """Deployed although a little below the champion: equal within the holdout's noise (an ``info``, not a warning)."""
        return self.deployed and (self.rule or {}).get("verdict") == "within noise"

    @property
    def deployed(self) -> bool:
        return self.status == Decision.DEPLOYED

    @property
    def blocked(self) -> bool:
        return held_back({"decision": self.status, "checks": self.checks})

    def to_dict(self) -> dict:
        out = asdict(self)
        out["status"] = str(self.status)
        out["within_noise"] = self.within_noise  # notifications: an "equal within noise" deploy is info, a hold for a loss a warning
        return out

    def summary(self) -> str:
        if self.status == Decision.UNCHANGED:
            return f"Nothing to do: {self.reason}. Production stays {self.production or 'empty'}."
        where = f" -> production ({self.production})" if self.deployed else f" (production stays {self.production or 'empty'})"
        status = "NOT deployed: blocked by a data check" if self.blocked else str(self.status)
        lines = [f"{self.version}: {status}{where}"]
        auc = f"  ROC-AUC candidate {self.candidate_auc:.4f}"
        if self.champion_auc is not None:
            auc += f" | champion {self.champion_version or 'external'} {self.champion_auc:.4f}"
        if self.delong:
            d = self.delong
            auc += f" | delta {d['delta']:+.4f}, 95% CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], DeLong p = {d['p_value']:.3g}"
        lines += [auc, f"  why: {self.reason}"]
        skipped = ((self.rule or {}).get("slide") or {}).get("skipped")
        if skipped:
            lines.append(f"  slow-slide guard skipped {'; '.join(skipped)}")
        if self.rows:
            r = self.rows
            dropped = f"; {self.holdout_dropped_trained_on} holdout rows the champion trained on left out" if self.holdout_dropped_trained_on else ""
            lines.append(f"  rows: {r.get('total')} in all, {r.get('new')} new, {r.get('seen')} seen before, {r.get('gone')} gone{dropped}")
        lines += [f"  check {c['severity']}: {c['message']}" for c in self.checks]
        lines.append(f"  model: {self.model_path}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        if self.drift:
            lines.append(f"  {self.drift}")
        return "\n".join(lines)


# -- step records --------------------------------------------------------------------
@dataclass
class Plan:
    ds: Dataset
    latest: dict | None
    champ_entry: dict | None
    champion: Any  # CatBoostClassifier | None
    version: str
    schema_changed: bool
    accepted: dict | None = None  # the newest version whose rows were accepted: new rows are counted against it
    recent: list = field(default_factory=list)  # the newest versions' log entries, for the slow-slide guard (noise rule)
    history: list = field(default_factory=list)  # ROC-AUCs of the accepted versions, oldest first (the auc_jump check)


@dataclass
class Guard:
    """Rows and findings: what the data checks saw before the decision."""

    drift: dict
    findings: list = field(default_factory=list)  # checks.Finding
    rows: dict | None = None
    champion_trained: numpy.ndarray | None = None  # rows the champion trained on (None: unknown)
    champion_rows_unknown: str = ""  # why the champion's training rows cannot be known ("" when known or no champion)


@dataclass
class Evaluation:
    model: Any
    train_seconds: float
    y: numpy.ndarray
    candidate_scores: numpy.ndarray
    metrics: dict
    champion_scores: numpy.ndarray | None = None
    champion_auc: float | None = None
    comparison: AucComparison | None = None
    losses: LossComparison | None = None  # the paired log-loss test on the same rows (#27)
    note: str = ""
    dropped_trained_on: int = 0
    findings: list = field(default_factory=list)  # the champion-drop check (needs the champion's scores)


@dataclass
class Verdict:
    decision: Decision
    reason: str
    findings: list = field(default_factory=list)  # every data-check finding of the run, the champion drop included
    outcome: Outcome | None = None  # what the deploy rule decided, and on what numbers (before a data check's block)


@dataclass
class Recorded:
    entry: VersionEntry
    path: Path
