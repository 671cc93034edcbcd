"""``--history --html``: one page with the whole life of every version (``models/reports/index.html``).

Every version in order with its decision, ROC-AUC against the champion on the same
holdout, the DeLong p-value, the data checks' findings, the production changes that
involve it and a link to its report; then every production change. Plain HTML, no
scripts, no images, no network: it opens from disk in any browser.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from retraining.fsutil import atomic_write_bytes
from retraining.records import Decision
from retraining.registry import parse_version
from retraining.report.history import holdout_note, settings_line

CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse}"
    "td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.9em}"
    "tr.production{background:#dafbe1}.blocked{color:#b42318;font-weight:600}.deployed{color:#1a7f37;font-weight:600}"
    ".meta,.note,.settings{color:#59636e}.settings{font-size:.8em}ul{margin:0;padding-left:1.1em}"
)


def _auc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def decision_label(e: dict) -> tuple[str, str]:
    """(text, css class): deployed, blocked by a data check, or kept for review."""
    if e.get("decision") == Decision.DEPLOYED:
        return "deployed", "deployed"
    if any(c.get("severity") == "block" for c in e.get("checks") or []):
        return "NOT deployed: blocked by a data check", "blocked"
    return str(e.get("decision") or "-"), "kept"


def _findings(e: dict) -> str:
    checks = sorted(e.get("checks") or [], key=lambda c: c.get("severity") != "block")
    if not checks:
        return "none"
    items = []
    for c in checks:
        text = html.escape(f"[{c.get('severity')}] {c.get('name')}: {c.get('message', '')}")
        items.append(f"<li class='{'blocked' if c.get('severity') == 'block' else ''}'>{text}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _events_of(version: str, events: list[dict]) -> str:
    mine = [ev for ev in events if version in (ev.get("to"), ev.get("from"))]
    if not mine:
        return "-"
    text = (f"{ev.get('at')}: {ev.get('event')} {ev.get('from') or '-'} -> {ev.get('to')} ({ev.get('reason') or '-'})" for ev in mine)
    return "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in text) + "</ul>"


def _row(e: dict, prod: str | None, events: list[dict], report: Path | None) -> str:
    e_ = html.escape
    metrics = e.get("metrics") or {}
    p = (e.get("delong") or {}).get("p_value")
    text, css = decision_label(e)
    champ = (e.get("champion") or {}).get("version") or "-"
    link = f"<a href='{e_(report.name)}' title='{e_(str(report.resolve()))}'>report</a>" if report is not None and report.is_file() else "no report"
    cells = [
        f"{'* ' if e['version'] == prod else ''}<b>{e_(e['version'])}</b><br>{link}",
        e_(str(e.get("created_at", ""))),
        f"<span class='{css}'>{e_(text)}</span><br>{e_(str(e.get('reason', '')))}<div class='settings'>{e_(settings_line(e))}</div>",
        _auc((metrics.get("candidate") or {}).get("roc_auc")),
        f"{e_(champ)} {_auc((metrics.get('champion') or {}).get('roc_auc'))}" if champ != "-" else "-",
        f"{p:.3g}" if isinstance(p, (int, float)) else "-",
        e_(str(metrics.get("holdout_rows", "-"))),
        _findings(e),
        _events_of(e["version"], events),
    ]
    return f"<tr class='{'production' if e['version'] == prod else ''}' id='{e_(e['version'])}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render_index(data: dict, reports: dict[str, Path], where: str) -> str:
    """The page as one HTML string; ``reports`` maps each version to its report file."""
    e_ = html.escape
    prod = data.get("production")
    entries = sorted(data["versions"], key=lambda e: parse_version(e["version"]))
    events = data.get("events") or []
    head = ["version", "created (UTC)", "decision, why, settings", "ROC-AUC", "champion on the same holdout", "DeLong p", "n"]
    head += ["data-check findings", "production changes"]
    rows = "".join(_row(e, prod, events, reports.get(e["version"])) for e in reversed(entries))
    cells = ([str(ev.get("at")), str(ev.get("event")), f"{ev.get('from') or '-'} -> {ev.get('to')}", str(ev.get("reason") or "-")] for ev in reversed(events))
    changes = "".join("<tr>" + "".join(f"<td>{e_(c)}</td>" for c in row) + "</tr>" for row in cells)
    written = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    note = holdout_note(entries) if entries else "no versions yet."
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Model versions</title>"
        f"<style>{CSS}</style></head><body><h1>Model versions</h1>"
        f"<p class='meta'>{e_(where)} · production now: <b>{e_(str(prod or 'none'))}</b> · written {written} "
        "(<code>python retrain_model.py --history --html</code> writes it again)</p>"
        f"<p class='note'>Newest first; * and green = production. {e_(note[:1].upper() + note[1:])}</p>"
        f"<table><thead><tr>{''.join(f'<th>{e_(h)}</th>' for h in head)}</tr></thead><tbody>{rows}</tbody></table>"
        "<h2>Production changes</h2>"
        f"<table><thead><tr><th>at (UTC)</th><th>event</th><th>production</th><th>reason</th></tr></thead><tbody>{changes}</tbody></table>"
        "</body></html>"
    )


def write_index(path: Path, data: dict, reports: dict[str, Path], where: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, render_index(data, reports, where).encode("utf-8"))
    return path
