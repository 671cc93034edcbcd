"""What a data check produces and how it is judged: :class:`Finding`, :class:`CheckSettings`
(thresholds and severities, from the check-settings file), :class:`CheckReport` and
:func:`apply_severity`. No numpy, no pandas: every room may read a finding.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from retraining.errors import UsageError

BLOCK, WARN, OFF = "block", "warn", "off"
MODES = (BLOCK, WARN, OFF)
DEFAULT_SEVERITY = {
    "label_rate": BLOCK,
    "labels_one_class": BLOCK,
    "all_missing": BLOCK,
    "out_of_range": BLOCK,
    "infinite_values": BLOCK,
    "id_like": BLOCK,
    "kind_changed": BLOCK,
    "column_gone": BLOCK,
    "missing_rate": WARN,
    "new_categories": WARN,
    "resent_batch": BLOCK,
    "repeated_ids": WARN,
    "drift": WARN,
    "champion_drop": WARN,
    "holdout_overlap": WARN,
    "leak": BLOCK,
    "multivariate_drift": WARN,
    "auc_jump": BLOCK,
    "slice_regression": WARN,
    "calibration": WARN,
}
GRADED = {"multivariate_drift"}  # at its default severity the check itself says warn or block (by how strong the signal is)
LISTS = {"slice_columns"}  # settings that are lists of column names, not numbers


@dataclass
class Finding:
    """One data-check result: what, how bad, which columns, the numbers, one line for a person."""

    name: str
    severity: str  # "block" | "warn"
    columns: list[str]
    numbers: dict
    message: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Finding:
        return cls(data["name"], data["severity"], list(data.get("columns", [])), dict(data.get("numbers", {})), data.get("message", ""))

    def line(self) -> str:
        return f"{self.severity.upper()} {self.name}: {self.message}"


@dataclass
class CheckSettings:
    """Thresholds of the data checks (see the module docstring for what each one means)."""

    min_new_rows: int = 200
    min_column_rows: int = 100
    label_p_value: float = 0.001
    label_effect: float = 0.2
    missing_jump: float = 0.2
    missing_p_value: float = 0.001
    range_share: float = 0.1
    infinite_share: float = 0.0
    unique_share: float = 0.9
    new_category_share: float = 0.02
    new_category_rows: int = 10
    resent_share: float = 0.2
    resent_rows: int = 20
    drift_psi: float = 0.25
    champion_drop_p_value: float = 0.01
    champion_drop_min: float = 0.02
    leak_auc: float = 0.98
    leak_min_class: int = 10
    multivariate_auc: float = 0.65
    multivariate_block_auc: float = 0.9
    multivariate_column_share: float = 0.1
    adversarial_rows: int = 4000
    adversarial_iterations: int = 40
    adversarial_seconds: float = 5.0
    auc_jump_sd: float = 4.0
    auc_jump_min: float = 0.05
    auc_jump_history: int = 3
    auc_jump_importance: float = 0.5
    slice_columns: list = field(default_factory=list)
    slice_min_rows: int = 200
    slice_min_drop: float = 0.05
    slice_p_value: float = 0.01
    calibration_ratio: float = 1.25
    severity: dict = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    monitor: dict = field(default_factory=dict)  # monitor.py's thresholds (retraining.monitoring.settings), checked there

    @classmethod
    def from_json(cls, data: dict, where: str = "check settings") -> CheckSettings:
        """Settings from a dict (e.g. a JSON file); unknown names and bad severities raise UsageError."""
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise UsageError(f'{where}: expected a JSON object of settings, e.g. {{"label_effect": 0.3}}, not {type(data).__name__}.')
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"{where}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}.")
        wrong = sorted(k for k, v in data.items() if k not in ("severity", "monitor") and k not in LISTS and not _finite_non_negative(v))
        if wrong:
            raise UsageError(f"{where}: {', '.join(wrong)} must be a finite number >= 0.")
        for k in LISTS & set(data):
            if not isinstance(data[k], list) or not all(isinstance(c, str) and c for c in data[k]):
                raise UsageError(f'{where}: {k} must be a list of column names, e.g. {{"{k}": ["region"]}}.')
        if not isinstance(data.get("severity", {}), dict):
            raise UsageError(f'{where}: severity must be an object of check names, e.g. {{"severity": {{"drift": "block"}}}}.')
        severity = {**DEFAULT_SEVERITY, **data.get("severity", {})}
        bad = {k: v for k, v in severity.items() if k not in DEFAULT_SEVERITY or v not in MODES}
        if bad:
            raise UsageError(f"{where}: bad severity {bad}; checks are {', '.join(DEFAULT_SEVERITY)}, severities block, warn or off.")
        return cls(**{**data, "severity": severity})

    @classmethod
    def load(cls, path: str | Path) -> CheckSettings:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read the check settings ({exc}); give a JSON object of settings.") from exc
        return cls.from_json(data, str(path))


def _finite_non_negative(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and value >= 0
    except OverflowError:  # an integer too large for a float
        return False


@dataclass
class CheckReport:
    """All findings of one run, and what they were judged on."""

    findings: list[Finding]
    basis: str  # "new rows" | "whole file" | "off"
    rows_judged: int
    drift: dict = field(default_factory=dict)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BLOCK]

    def block_reason(self) -> str | None:
        """The decision's reason when a finding blocks the deploy, else ``None``."""
        if not self.blocking:
            return None
        first = self.blocking[0]
        more = f" (and {len(self.blocking) - 1} more blocking finding(s))" if len(self.blocking) > 1 else ""
        return f"data check {first.name} failed: {first.message}{more}; kept for review (overrule with --promote)"

    def to_json(self) -> dict:
        return {"basis": self.basis, "rows_judged": self.rows_judged, "findings": [f.to_json() for f in self.findings]}


def apply_severity(found: list[Finding], s: CheckSettings, mode: str) -> list[Finding]:
    """The findings under the user's severities (``off`` drops one) and mode (``warn`` makes each a warning)."""
    out = []
    for f in found:
        severity = s.severity.get(f.name, f.severity)
        if severity == OFF:
            continue
        if f.name in GRADED and severity == DEFAULT_SEVERITY[f.name]:
            severity = f.severity
        out.append(Finding(f.name, WARN if mode == WARN else severity, f.columns, f.numbers, f.message))
    return out
