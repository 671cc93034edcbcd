"""The monitoring page: per version, realized AUC with its CI over time, the estimate, drift, coverage.

One self-contained HTML file (inline SVG, no scripts, no network), written atomically to
``models/monitoring/monitor.html`` after every run.
"""

from __future__ import annotations

import html
from pathlib import Path

from retraining.fsutil import atomic_write_bytes

W, H, PAD = 640, 220, 36
LEGEND = "<p class='legend'>blue: realized AUC per day with its 95% CI; green dashed: estimated AUC (CBPE); grey: holdout AUC</p>"
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
    ".block{color:#b00020;font-weight:bold}.warn{color:#a15c00}svg{border:1px solid #ddd;margin:6px 0}"
)


def write_page(path: Path, report: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, render(report).encode("utf-8"))
    return path


def render(report: dict) -> str:
    e = html.escape
    parts = [f"<h1>Production monitor</h1><p>production: <b id='production'>{e(str(report.get('production')))}</b>"]
    rec = "retrain recommended: " + "; ".join(report.get("reasons") or []) if report.get("retrain_recommended") else "no retrain recommended"
    parts.append(f"<p id='recommendation'>{e(rec)}</p>")
    for f in report.get("findings", []):
        parts.append(f"<p class='finding {e(f['severity'])}'>{e(f['severity'].upper())} {e(f['name'])}: {e(f['message'])}</p>")
    for a in report.get("actions", []):
        parts.append(f"<p class='action block'>{e(a['action'])}: {e(str(a['from']))} -&gt; {e(str(a['to']))}</p>")
    parts.append(_table(report.get("versions", [])))
    for item in report.get("versions", []):
        parts.append(f"<section class='version' id='{e(item['version'])}'><h2>{e(item['version'])}</h2>{_chart(item)}{LEGEND}{_days(item)}</section>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Production monitor</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def _fmt(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and value is not None else "-"


def _table(versions: list[dict]) -> str:
    names = ("version", "rows", "with outcome", "coverage", "realized AUC (95% CI)", "estimated AUC", "holdout AUC", "score PSI")
    head = "<tr>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
    rows = []
    for v in versions:
        cover = v["rows_with_outcome"] / v["rows"] if v["rows"] else None
        ci = f"{_fmt(v['realized_auc'])} ({_fmt(v['ci_low'])}-{_fmt(v['ci_high'])})"
        rows.append(
            f"<tr><td>{html.escape(v['version'])}</td><td>{v['rows']}</td><td>{v['rows_with_outcome']}</td><td>{_fmt(cover, 3)}</td>"
            f"<td>{ci}</td><td>{_fmt(v['estimated_auc'])}</td><td>{_fmt(v.get('holdout_auc'))}</td><td>{_fmt(v.get('score_psi'), 3)}</td></tr>"
        )
    return f"<table id='versions'>{head}{''.join(rows)}</table>"


def _days(item: dict) -> str:
    """Per day: rows, coverage (rows with an outcome / rows), realized and estimated AUC, score PSI."""
    names = ("day", "rows", "with outcome", "coverage", "realized AUC (95% CI)", "estimated AUC", "score PSI")
    rows = []
    for d in item.get("days", []):
        cover = d["rows_with_outcome"] / d["rows"] if d["rows"] else None
        ci = f"{_fmt(d['realized_auc'])} ({_fmt(d['ci_low'])}-{_fmt(d['ci_high'])})"
        rows.append(
            f"<tr><td>{d['day']}</td><td>{d['rows']}</td><td>{d['rows_with_outcome']}</td><td>{_fmt(cover, 3)}</td>"
            f"<td>{ci}</td><td>{_fmt(d['estimated_auc'])}</td><td>{_fmt(d.get('score_psi'), 3)}</td></tr>"
        )
    return "<table class='days'><tr>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>" + "".join(rows) + "</table>"


def _chart(item: dict) -> str:
    """Realized AUC per day (points with CI bars), the estimate (dashed line), the holdout AUC (grey line)."""
    days = item.get("days", [])
    if not days:
        return "<p>no days yet</p>"
    lo = (
        min(
            [d["ci_low"] for d in days if d["ci_low"] is not None]
            + [d["estimated_auc"] for d in days if d["estimated_auc"] is not None]
            + [item.get("holdout_auc") or 1.0, 0.9]
        )
        - 0.02
    )
    lo = max(0.0, min(lo, 0.5 if lo < 0.5 else lo))

    def x(i: int) -> float:
        return PAD + (W - 2 * PAD) * (i + 0.5) / len(days)

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - lo) / (1.0 - lo)

    out = [f"<svg class='auc-chart' width='{W}' height='{H}' viewBox='0 0 {W} {H}'>"]
    out.append(f"<text x='4' y='{y(1.0) + 4:.1f}' font-size='10'>1.0</text><text x='4' y='{y(lo) + 4:.1f}' font-size='10'>{lo:.2f}</text>")
    if item.get("holdout_auc") is not None:
        hy = y(item["holdout_auc"])
        out.append(f"<line class='holdout' x1='{PAD}' x2='{W - PAD}' y1='{hy:.1f}' y2='{hy:.1f}' stroke='#999'/>")
    est = [(x(i), y(d["estimated_auc"])) for i, d in enumerate(days) if d["estimated_auc"] is not None]
    if len(est) > 1:
        out.append(
            "<polyline class='estimated' fill='none' stroke='#0a7' stroke-dasharray='4 3' points='" + " ".join(f"{a:.1f},{b:.1f}" for a, b in est) + "'/>"
        )
    for i, d in enumerate(days):
        if d["realized_auc"] is None:
            continue
        out.append(f"<line class='ci' x1='{x(i):.1f}' x2='{x(i):.1f}' y1='{y(d['ci_low']):.1f}' y2='{y(d['ci_high']):.1f}' stroke='#36c'/>")
        out.append(
            f"<circle class='realized' cx='{x(i):.1f}' cy='{y(d['realized_auc']):.1f}' r='3' fill='#36c'>"
            f"<title>{d['day']}: {d['realized_auc']:.4f}</title></circle>"
        )
    out.append(
        f"<text x='{PAD}' y='{H - 8}' font-size='10'>{days[0]['day']}</text><text x='{W - PAD - 60}' y='{H - 8}' font-size='10'>{days[-1]['day']}</text></svg>"
    )
    return "".join(out)
