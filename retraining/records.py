"""Records that cross modules: a version's log entry, a production change, a decision.

They are small dataclasses with ``to_json``/``from_json``. The on-disk form stays plain
JSON (``models/version_log.json`` and ``models/metadata/VERSION.json``), and
``from_json`` reads every form this project has written:

- log format 1 (first session): full entries inside version_log.json;
- log format 1/2 with slim entries (the log keeps a summary, the rest lives in
  ``models/metadata/VERSION.json``);
- entries with ``checks``/``rows``/``ledger`` (data checks and the row ledger, #11);
- ``rule`` with the deploy rule's name and numbers (``rule``, ``alpha``, ``margin``,
  ``verdict``, ``p_worse``, ``drop``, ``slide``: #27; ``loss_tolerance`` and ``loss``, the
  paired log-loss test, later in #27); older entries hold only the
  settings there (or nothing), and every reader uses ``.get``.

Keys a reader does not know are kept in ``extra`` and written back unchanged, so a newer
program's entries survive a round trip through an older one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Decision(str, Enum):
    """What a run did with its candidate (the value is what the log and --json show)."""

    DEPLOYED = "deployed"
    KEPT = "kept for review"
    UNCHANGED = "unchanged"

    def __str__(self) -> str:
        return self.value


# What the version log keeps of an entry; the metadata file keeps everything.
_SLIM_FIELDS = (
    "version",
    "file",
    "sha256",
    "created_at",
    "bump",
    "decision",
    "reason",
    "features",
    "categorical_features",
    "params",
    "metrics",
    "champion",
    "delong",
    "rule",
    "training_seconds",
    "rows",
)
_SLIM_DATASET = ("path", "sha256", "rows", "positives", "positive_rate", "positive_class", "holdout_rows", "kind")
_SLIM_DRIFT = ("reference", "note", "drifted_share", "significant", "max_psi", "scope")
_SLIM_CHECK = ("name", "severity", "columns", "message")


@dataclass
class VersionEntry:
    """Everything recorded about one trained version."""

    version: str
    file: str
    sha256: str
    created_at: str
    decision: str
    reason: str
    bump: str | None = None
    dataset: dict = field(default_factory=dict)
    schema: list | None = None
    features: list[str] = field(default_factory=list)
    categorical_features: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    catboost_params: dict = field(default_factory=dict)
    rule: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    champion: dict = field(default_factory=dict)
    delong: dict | None = None
    training_seconds: float = 0.0
    feature_importance: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    drift: dict | None = None
    checks: list[dict] = field(default_factory=list)
    rows: dict | None = None
    metadata: str | None = None
    mlflow: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def deployed_by_run(self) -> bool:
        return self.decision == Decision.DEPLOYED

    @property
    def candidate_auc(self) -> float | None:
        auc = (self.metrics.get("candidate") or {}).get("roc_auc")
        return float(auc) if isinstance(auc, (int, float)) else None

    @property
    def feature_schema(self) -> list[list[str]]:
        """``[[name, "categorical"|"numeric"], ...]``; older entries stored it, newer derive it."""
        if self.schema is not None:
            return self.schema
        cats = set(self.categorical_features)
        return [[f, "categorical" if f in cats else "numeric"] for f in self.features]

    def blocking_checks(self) -> list[dict]:
        return [c for c in self.checks if c.get("severity") == "block"]

    @classmethod
    def from_json(cls, raw: dict) -> VersionEntry:
        known = {k: v for k, v in raw.items() if k in _ENTRY_FIELDS}
        extra = {k: v for k, v in raw.items() if k not in _ENTRY_FIELDS}
        known.setdefault("file", f"catboost_model_{raw.get('version')}.cbm")
        known.setdefault("created_at", "")
        known.setdefault("decision", "")
        known.setdefault("reason", "")
        if known.get("checks") is None:
            known["checks"] = []
        return cls(**known, extra=extra)

    def to_json(self) -> dict:
        """The full entry (what ``models/metadata/VERSION.json`` holds)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out["decision"] = str(self.decision)
        out = {k: v for k, v in out.items() if v is not None or k in ("delong",)}
        out.update(self.extra)
        return out

    def to_log_json(self) -> dict:
        """The summary the version log keeps (the rest is in the metadata file)."""
        full = self.to_json()
        slim = {k: full[k] for k in _SLIM_FIELDS if k in full}
        slim["dataset"] = {k: v for k, v in self.dataset.items() if k in _SLIM_DATASET}
        slim["environment"] = {k: self.environment[k] for k in ("python", "catboost", "retrain_model") if k in self.environment}
        if self.drift is not None:
            slim["drift"] = {k: self.drift[k] for k in _SLIM_DRIFT if k in self.drift}
        if self.checks:
            slim["checks"] = [{k: c[k] for k in _SLIM_CHECK if k in c} for c in self.checks]
        if self.mlflow is not None:
            slim["mlflow"] = self.mlflow
        slim["metadata"] = self.metadata or f"metadata/{self.version}.json"
        return slim


_ENTRY_FIELDS = frozenset(f.name for f in dataclasses.fields(VersionEntry)) - {"extra"}


@dataclass
class Event:
    """A change of the production model: a deploy, a promotion or a rollback."""

    event: str  # "deploy" | "promotion" | "rollback"
    to: str
    at: str
    reason: str
    from_: str | None = None
    backup: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict) -> Event:
        known = ("event", "from", "to", "at", "reason", "backup")
        return cls(
            event=raw.get("event", ""),
            to=raw.get("to", ""),
            at=raw.get("at", ""),
            reason=raw.get("reason", ""),
            from_=raw.get("from"),
            backup=raw.get("backup"),
            extra={k: v for k, v in raw.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "from": self.from_, "to": self.to, "at": self.at, "reason": self.reason, "backup": self.backup, **self.extra}


# -- the version log's shape ---------------------------------------------------------
VERSION_RE = re.compile(r"^v(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
EVENT_KINDS = ("deploy", "promotion", "rollback")
_OPTIONAL_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "file": (str,),
    "created_at": (str,),
    "decision": (str,),
    "reason": (str,),
    "features": (list,),
    "categorical_features": (list,),
    "params": (dict,),
    "metrics": (dict,),
    "champion": (dict, type(None)),
    "delong": (dict, type(None)),
    "dataset": (dict,),
    "checks": (list, type(None)),
    "rows": (dict, type(None)),
    "drift": (dict, type(None)),
    "training_seconds": (int, float),
}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _is_version(value: Any) -> bool:
    return isinstance(value, str) and VERSION_RE.match(value) is not None


def log_shape_problem(data: Any) -> str | None:
    """What is wrong with a parsed version log, naming the key (``events[3]: ...``); ``None`` if its shape is sound.

    Checks the keys a run, a promotion, ``--history`` and the server read, so that a damaged
    log is one clear line (exit 3) instead of a ``TypeError`` deep inside a run.
    """
    if not isinstance(data, dict):
        return f"the log must be a JSON object, found {_kind(data)}"
    if not isinstance(data.get("versions"), list):
        return f"'versions' must be a list, found {_kind(data.get('versions'))}"
    if not isinstance(data.get("events", []), list):
        return f"'events' must be a list, found {_kind(data.get('events'))}"
    if data.get("production") is not None and not _is_version(data["production"]):
        return f"'production' must be null or a version name like v1.2.0, found {data['production']!r:.40}"
    seen: set[str] = set()
    for i, entry in enumerate(data["versions"]):
        problem = _entry_problem(entry)
        if problem:
            return f"versions[{i}]: {problem}"
        if entry["version"] in seen:
            return f"versions[{i}]: {entry['version']} is listed twice"
        seen.add(entry["version"])
    for i, event in enumerate(data.get("events", [])):
        problem = _event_problem(event, ("event", "to", "from", "at", "reason", "backup"))
        if problem:
            return f"events[{i}]: {problem}"
    pending = data.get("pending_promotion")
    if pending is not None:
        problem = _event_problem(pending, ("kind", "to", "from", "reason", "sha256"))
        if problem:
            return f"'pending_promotion': {problem}"
    return None


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"a version entry must be an object, found {_kind(entry)}"
    if not _is_version(entry.get("version")):
        return f"'version' must be a name like v1.2.0, found {entry.get('version')!r:.40}"
    if not isinstance(entry.get("sha256"), str) or not SHA256_RE.match(entry["sha256"]):
        return f"'sha256' of {entry['version']} must be 64 hex digits, found {entry.get('sha256')!r:.40}"
    for key, types in _OPTIONAL_ENTRY_TYPES.items():
        if key in entry and (not isinstance(entry[key], types) or isinstance(entry[key], bool)):
            return f"'{key}' of {entry['version']} cannot be {_kind(entry[key])}"
    return None


def _event_problem(event: Any, keys: tuple[str, ...]) -> str | None:
    """A production change (an event or the pending promotion): the keys it must have, each of its type."""
    if not isinstance(event, dict):
        return f"must be an object with {', '.join(keys[:2])}, found {_kind(event)}"
    kind_key = keys[0]
    if event.get(kind_key) not in EVENT_KINDS and not (kind_key == "event" and isinstance(event.get(kind_key), str)):
        return f"'{kind_key}' must be one of {', '.join(EVENT_KINDS)}, found {event.get(kind_key)!r:.40}"
    if not _is_version(event.get("to")):
        return f"'to' must be a version name like v1.2.0, found {event.get('to')!r:.40}"
    if event.get("from") is not None and not _is_version(event["from"]):
        return f"'from' must be null or a version name, found {event['from']!r:.40}"
    for key in ("at", "reason", "backup"):
        if key in keys and event.get(key) is not None and not isinstance(event[key], str):
            return f"'{key}' must be text, found {_kind(event[key])}"
    if "sha256" in keys and not (isinstance(event.get("sha256"), str) and SHA256_RE.match(event["sha256"])):
        return f"'sha256' must be 64 hex digits, found {event.get('sha256')!r:.40}"
    return None


def nonfinite_path(data: Any, path: str = "") -> str | None:
    """Where a parsed JSON value holds NaN, an infinity or an integer beyond 64 bits (JSON allows none of them)."""
    if isinstance(data, float) and not math.isfinite(data):
        return path or "the top level"
    if isinstance(data, int) and not isinstance(data, bool) and not -(2**63) <= data < 2**64:
        return path or "the top level"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = nonfinite_path(value, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None
