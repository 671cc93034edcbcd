"""The fleet's page: one row per model, with links to its own reports (``--config F --page``).

:func:`model_row` reads what a model's folder says (the version log, the scheduler's
status file, the monitor's results when they exist); :func:`render` lays the rows out.
Self-contained HTML (no network), file:// links, written atomically.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from retraining.errors import StateError
from retraining.fsutil import atomic_write_bytes
from retraining.registry import Registry

CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
.deployed{color:#176f2c}.kept{color:#a15c00}.blocked,.failed{color:#b00020}.muted{color:#777}"""


def model_row(name: str, models_dir: Path, production: Path) -> dict:
    """One model's line of the page, read from its folder; a damaged or empty folder says so instead of failing."""
    row: dict = {"name": name, "models_dir": str(models_dir.resolve())}
    try:
        log = Registry(models_dir, production).read_log()
    except (OSError, StateError) as exc:
        return {**row, "error": f"version log unreadable: {exc}"}
    versions = log.get("versions") or []
    latest = versions[-1] if versions else None
    row["production"] = log.get("production")
    if latest:
        checks = latest.get("checks") or []
        row["last_run"] = {
            "version": latest.get("version"),
            "decision": str(latest.get("decision")),
            "at": latest.get("created_at"),
            "reason": latest.get("reason"),
            "auc": ((latest.get("metrics") or {}).get("candidate") or {}).get("roc_auc"),
            "blocking": [c.get("name") for c in checks if c.get("severity") == "block"],
            "warnings": [c.get("name") for c in checks if c.get("severity") == "warn"],
        }
        report = models_dir / "reports" / f"{latest.get('version')}.html"
        row["report"] = report.resolve().as_uri() if report.is_file() else None
    row["next_run"] = _json(models_dir / "scheduler_status.json").get("next_run")
    row["realized_auc"] = _realized_auc(models_dir, row.get("production"))
    return row


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _realized_auc(models_dir: Path, version: str | None) -> float | None:
    """The production version's realized ROC-AUC, when the monitor has recorded one (models/monitoring/)."""
    for path in sorted((models_dir / "monitoring").glob("*.json")) if (models_dir / "monitoring").is_dir() else []:
        data = _json(path)
        for item in data.get("versions") or []:
            if isinstance(item, dict) and item.get("version") == version and isinstance(item.get("realized_auc"), (int, float)):
                return float(item["realized_auc"])
    return None


def render(rows: list[dict], config: Path) -> str:
    e = html.escape
    body = []
    for r in rows:
        run = r.get("last_run") or {}
        decision = run.get("decision") or ""
        css = "blocked" if run.get("blocking") else "deployed" if decision == "deployed" else "kept" if decision else "muted"
        checks = ", ".join([*(f"block: {n}" for n in run.get("blocking", [])), *(f"warn: {n}" for n in run.get("warnings", []))]) or "none"
        report = f'<a href="{e(r["report"])}">report</a>' if r.get("report") else '<span class="muted">no report</span>'
        auc = f"{run['auc']:.4f}" if isinstance(run.get("auc"), (int, float)) else "-"
        realized = f"{r['realized_auc']:.4f}" if isinstance(r.get("realized_auc"), (int, float)) else '<span class="muted">not yet</span>'
        cells = [
            f"<b>{e(r['name'])}</b><br><span class='muted'>{e(r['models_dir'])}</span>",
            e(r.get("production") or "none"),
            f"<span class='{css}'>{e(' '.join(x for x in (run.get('version'), decision or r.get('error') or 'never run') if x))}</span><br>"
            f"<span class='muted'>{e(run.get('at') or '')}</span><br>{e(run.get('reason') or '')}",
            auc,
            e(r.get("next_run") or "not scheduled"),
            e(checks),
            realized,
            report,
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["model", "production", "last run", "holdout ROC-AUC", "next run", "data checks", "realized ROC-AUC", "links"]
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Fleet: {e(config.name)}</title><style>{CSS}</style></head><body>"
        f"<h1>Fleet {e(config.name)}</h1><p class='muted'>{e(str(config.resolve()))}; as of {made} (written when asked: "
        f"<code>retrain_model.py --config {e(config.name)} --page</code>)</p>"
        "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></body></html>"
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
