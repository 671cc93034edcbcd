"""The monitor's thresholds: the ``"monitor"`` object of the check-settings file.

One JSON file holds the data checks' thresholds (:class:`retraining.guard.findings.CheckSettings`)
and, under the key ``"monitor"``, these::

    {"label_effect": 0.3, "monitor": {"decay_p_value": 0.01, "auto_rollback": true}}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from retraining.errors import UsageError


@dataclass(frozen=True)
class MonitorSettings:
    """What the monitor judges by (docs/monitoring.md explains each)."""

    min_per_class: int = 50  # outcomes of each class before AUC is judged (decay and rollback)
    decay_p_value: float = 0.01  # one-sided: realized AUC below the holdout AUC
    decay_min_drop: float = 0.01  # and at least this far below
    decay_window_days: int = 14  # the decay test judges the predictions of the last N days
    rollback_p_value: float = 0.05  # one-sided paired DeLong: the new deploy worse than the previous version
    auto_rollback: bool = False  # roll back by itself (else a blocking finding with the command)
    retrain_after_rows: int = 0  # recommend a retrain after this many new labelled rows (0: never)
    score_drift_psi: float = 0.25  # PSI of served scores vs the holdout scores
    min_drift_rows: int = 500  # served rows before score drift is judged
    sequential_tau: float = 0.02  # the AUC difference scale of the always-valid tests' mixture

    @classmethod
    def from_json(cls, data: object, where: str = "check settings") -> MonitorSettings:
        known = {f.name: f for f in fields(cls)}
        if not isinstance(data, dict):
            raise UsageError(f'{where}: "monitor" must be an object of settings, e.g. {{"decay_p_value": 0.01}}.')
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UsageError(f"{where}: unknown monitor setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}.")
        for name, value in data.items():
            if name == "auto_rollback":
                if not isinstance(value, bool):
                    raise UsageError(f"{where}: monitor.auto_rollback must be true or false.")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"{where}: monitor.{name} must be a finite number >= 0.")
        return cls(**data)

    def to_json(self) -> dict:
        return asdict(self)
