"""The HTML report of one version: one self-contained file, images inline, no network.

``models/reports/vX.Y.Z.html`` shows the decision in one sentence, ROC and
precision-recall curves of candidate and champion on the same holdout (with the DeLong
result), a calibration plot, the metric history with production periods and rollbacks,
the top feature importances next to the champion's, a data summary and the drift table.
matplotlib (Agg) is imported only here, and :func:`preload` lets a run import it in a
thread while CatBoost trains, so the report costs little wall time.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from pathlib import Path

import numpy as np

from retraining.fsutil import atomic_write_bytes
from retraining.records import Decision
from retraining.report.history import settings_rows

BLUE, GREY, RED, GREEN = "#1f6feb", "#8b949e", "#cf222e", "#1a7f37"
BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85}  # a label stays readable over lines


def preload() -> None:
    """Import matplotlib with the Agg backend (safe to call from a thread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)  # no bbox_inches="tight": it draws every figure twice
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fig(width: float = 5.2, height: float = 3.8, left: float = 0.13, bottom: float = 0.13):
    preload()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=left, bottom=bottom, right=0.97, top=0.91)
    ax.grid(alpha=0.3)
    return fig, ax


def roc_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from retraining.evaluation import threshold_counts

    tp, fp = threshold_counts(y, s)
    positives = int(np.asarray(y).astype(bool).sum())
    return np.r_[0.0, fp / max(1, len(y) - positives)], np.r_[0.0, tp / max(1, positives)]


def pr_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from retraining.evaluation import threshold_counts

    tp, fp = threshold_counts(y, s)
    return tp / max(1, int(np.asarray(y).astype(bool).sum())), tp / (tp + fp)


def calibration_points(y: np.ndarray, s: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(0, len(edges) - 2))
    pred = np.array([s[idx == i].mean() for i in np.unique(idx)])
    obs = np.array([y[idx == i].mean() for i in np.unique(idx)])
    return pred, obs


def _curves(kind: str, ev: dict, entry: dict) -> str:
    fig, ax = _fig()
    y = ev["y"]
    champ_name = (entry.get("champion") or {}).get("version") or "production"
    series = [("candidate " + entry["version"], ev["candidate"], BLUE), (f"champion {champ_name}", ev.get("champion"), GREY)]
    for label, scores, color in series:
        if scores is None:
            continue
        if kind == "roc":
            x, yy = roc_points(y, scores)
            from retraining.evaluation import roc_auc

            ax.plot(x, yy, color=color, label=f"{label} (AUC {roc_auc(y, scores):.4f})")
        elif kind == "pr":
            x, yy = pr_points(y, scores)
            from retraining.evaluation import pr_auc

            ax.step(x, yy, where="post", color=color, label=f"{label} (AP {pr_auc(y, scores):.4f})")
        else:
            x, yy = calibration_points(y, scores)
            ax.plot(x, yy, "o-", color=color, label=label, markersize=4)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ":", color="#999")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the holdout")
        d = entry.get("delong")
        delong = f"DeLong p = {d['p_value']:.3g}, ΔAUC 95% CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]" if d else None
    elif kind == "pr":
        ax.axhline(y.mean(), ls=":", color="#999")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on the holdout")
    else:
        top = max(float(np.max(x)) if len(x) else 1.0, 0.05)
        ax.plot([0, top], [0, top], ":", color="#999")
        ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", title="Calibration (deciles)")
    if kind == "roc":  # the DeLong result is the legend's title: one box, nothing drawn over it
        ax.legend(loc="lower right", fontsize=8, title=delong, title_fontsize=7)
    else:
        ax.legend(loc="best", fontsize=8)
    return _png(fig)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _history(log: dict) -> str:
    """ROC-AUC of every version in order; green bars: which version was in production when."""
    from bisect import bisect_right

    from retraining.registry import parse_version

    versions = sorted(log["versions"], key=lambda e: parse_version(e["version"]))
    fig, ax = _fig(9.0, 3.8, left=0.08, bottom=0.18)
    fig.subplots_adjust(right=0.82)  # the legend sits right of the plot, off the points and labels
    xs = np.arange(len(versions))
    aucs = [e["metrics"]["candidate"]["roc_auc"] for e in versions]
    deployed = np.array([e.get("decision") == Decision.DEPLOYED for e in versions])
    ax.plot(xs, aucs, "-", color=GREY, lw=1)
    ax.scatter(xs[deployed], np.array(aucs)[deployed], color=BLUE, label="deployed", zorder=3)
    ax.scatter(xs[~deployed], np.array(aucs)[~deployed], facecolor="white", edgecolor=GREY, label="kept for review", zorder=3)
    created = [_parse_time(e["created_at"]) for e in versions]
    index = {e["version"]: i for i, e in enumerate(versions)}
    events = log.get("events", [])
    # an event happens after the versions created before it: place it just after the last of them
    labelled: dict[int, list[str]] = {}
    at = [index[ev["to"]] if ev["event"] == "deploy" and ev["to"] in index else max(0, bisect_right(created, _parse_time(ev["at"])) - 1) for ev in events]
    for i, ev in enumerate(events):
        if ev["to"] not in index:
            continue
        level = aucs[index[ev["to"]]]
        stop = at[i + 1] if i + 1 < len(events) else len(versions) - 1
        ax.hlines(level, at[i], max(stop, at[i] + 0.3), color=GREEN, lw=5, alpha=0.45, label="in production" if i == 0 else None)
        if ev["event"] == "rollback":
            first = "rollback" not in ax.get_legend_handles_labels()[1]
            ax.plot([at[i]], [level], "x", color=RED, markersize=10, mew=2, label="rollback" if first else None)
            stack = labelled.setdefault(at[i], [])  # rollbacks at one x: one label each, stacked, never on top of each other
            right = at[i] > (len(versions) - 1) / 2  # labels on the right half point left, so they stay inside the plot
            offset = (-6 if right else 6, 6 + 10 * len(stack))
            label = f"rollback to {ev['to']}"
            ax.annotate(label, (at[i], level), textcoords="offset points", xytext=offset, ha="right" if right else "left", fontsize=7, color=RED, bbox=BOX)
            stack.append(ev["to"])
    step = max(1, len(versions) // 12)
    ax.set_xticks(xs[::step], [e["version"] for e in versions][::step], rotation=30, fontsize=8)
    ax.set(ylabel="ROC-AUC on its holdout", title="Versions in order (green: the production model at the time)")
    most = max((len(v) for v in labelled.values()), default=0)
    span = max(aucs) - min(aucs) + 0.02
    ax.set_ylim(min(aucs) - 0.01, max(aucs) + 0.01 + span * 0.06 * most)  # room above for stacked labels
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _png(fig)


def _importances(entry: dict, champion: dict | None) -> str | None:
    cand = entry.get("feature_importance") or {}
    if not cand:
        return None
    champ = (champion or {}).get("feature_importance") or {}
    names = list(cand)[:20][::-1]
    longest = max(len(n) for n in names)
    fig, ax = _fig(6.5, max(2.5, 0.28 * len(names) + 1), left=min(0.45, 0.04 + 0.013 * longest), bottom=0.6 / max(2.5, 0.28 * len(names) + 1))
    pos = np.arange(len(names))
    ax.barh(pos + 0.2, [cand[n] for n in names], height=0.4, color=BLUE, label=f"candidate {entry['version']}")
    if champ:
        ax.barh(pos - 0.2, [champ.get(n, 0.0) for n in names], height=0.4, color=GREY, label=f"champion {champion['version']}")
    ax.set_yticks(pos, names, fontsize=8)
    ax.set(xlabel="importance (PredictionValuesChange)", title="Top feature importances")
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def _table(head: list[str], rows: list[list[object]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.4f}"
    return "-" if x is None else str(x)


def decision_sentence(entry: dict) -> str:
    """One sentence; a version a data check held back says so, as the drift and checks sections do."""
    blocking = [str(c.get("name")) for c in entry.get("checks") or [] if c.get("severity") == "block"]
    reason = str(entry.get("reason", ""))
    if blocking and entry.get("decision") != Decision.DEPLOYED:
        verb = "was NOT deployed" + ("" if reason.startswith("blocked by") else f", a data check blocked it ({', '.join(dict.fromkeys(blocking))})")
    elif entry.get("decision") == Decision.DEPLOYED:
        verb = "was deployed to production"
    else:
        verb = "was kept for manual review (not deployed)"
    return f"{entry['version']} {verb}: {reason}."


def production_at_run(entry: dict) -> str:
    """The production version right after this run: this one if deployed, else the champion it was compared with."""
    if entry.get("decision") == Decision.DEPLOYED:
        return entry["version"]
    return (entry.get("champion") or {}).get("version") or "none"


def _checks(entry: dict) -> str:
    """The data checks' findings, blocking ones first; and the row counts they judged."""
    e = html.escape
    checks = sorted(entry.get("checks") or [], key=lambda c: c.get("severity") != "block")
    rows = entry.get("rows") or {}
    counted = f" Rows: {rows.get('total')} in all, {rows.get('new')} new, {rows.get('seen')} seen before, {rows.get('gone')} gone." if rows else ""
    if not checks and not rows:
        return "<p class='checks-off'>Data checks: not run (--data-checks off, or a version made before the checks existed).</p>"
    if not checks:
        return f"<p class='checks-ok'>Data checks: no findings.{e(counted)}</p>"
    items = "".join(
        f"<li class='{e(str(c.get('severity')))}'><b>{e(str(c.get('severity')))}</b> {e(str(c.get('name')))}"
        f"{' (' + e(', '.join(c.get('columns') or [])) + ')' if c.get('columns') else ''}: {e(str(c.get('message', '')))}</li>"
        for c in checks
    )
    return f"<div class='checks'><h2>Data checks</h2><ul>{items}</ul><p>{e(counted)}</p></div>"


def render(entry: dict, log: dict, evaluation: dict | None, champion: dict | None) -> str:
    """The whole report as one HTML string: decision and data checks first, then the evidence."""
    e = html.escape
    parts = [f"<p class='decision'>{e(decision_sentence(entry))}</p>", _checks(entry), _metrics(entry)]
    parts += ["<h2>Training settings</h2>", _table(["setting", "value"], settings_rows(entry)), _figures(entry, evaluation)]
    parts += ["<h2>History</h2>", f"<figure><img alt='Metric history' src='{_history(log)}'></figure>"]
    imp = _importances(entry, champion)
    if imp:
        parts.append(f"<h2>Feature importances</h2><figure><img alt='Feature importances' src='{imp}'></figure>")
    parts += [_data(entry.get("dataset", {})), _drift(entry.get("drift"), entry)]
    title = f"Retrain report {entry['version']}"
    written = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{e(title)}</h1><p class='meta'>created {e(str(entry.get('created_at')))} · production at the time of this run: "
        f"{e(production_at_run(entry))} · production when this report was written ({written}): {e(str(log.get('production') or 'none'))}</p>"
        + "".join(parts)
        + "</body></html>"
    )


def _metrics(entry: dict) -> str:
    e = html.escape
    metrics = entry.get("metrics", {})
    cand, champ = metrics.get("candidate") or {}, metrics.get("champion") or {}
    rows = [[k, cand.get(k), champ.get(k) if champ else None] for k in ("roc_auc", "pr_auc", "log_loss", "brier")]
    parts = ["<h2>Holdout metrics</h2>"]
    parts.append(_table(["metric", f"candidate {entry['version']}", f"champion {(entry.get('champion') or {}).get('version') or '-'}"], rows))
    dropped = metrics.get("holdout_dropped_trained_on") or 0
    left_out = f" ({dropped} holdout rows the champion trained on were left out)" if dropped else ""
    parts.append(f"<p>Same holdout for both: {metrics.get('holdout_rows', '-')} rows, {metrics.get('holdout_positives', '-')} positive{left_out}.</p>")
    d = entry.get("delong")
    if d:
        parts.append(
            f"<p>Paired DeLong test: ΔAUC {d['delta']:+.4f}, 95% CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], "
            f"z = {d['z']:.3f}, two-sided p = {d['p_value']:.3g}, one-sided p (candidate better) = {d['p_value_one_sided']:.3g}.</p>"
        )
    elif (entry.get("champion") or {}).get("note"):
        parts.append(f"<p>{e(entry['champion']['note'])}.</p>")
    parts.append(rule_paragraph(entry.get("rule") or {}))
    if metrics.get("slices"):  # --slice-columns: both models per slice, on the same holdout rows
        head = ["column", "value", "rows", "positives", "candidate ROC-AUC", "champion ROC-AUC", "p (candidate worse)"]
        parts += [
            "<h3>Slices</h3>",
            _table(head, [[s["column"], s["value"], s["rows"], s["positives"], s["candidate"], s["champion"], s["p_worse"]] for s in metrics["slices"]]),
        ]
    return "".join(parts)


def rule_paragraph(rule: dict) -> str:
    """Which rule decided and on what numbers (empty for versions made before #27 recorded them)."""
    e = html.escape
    if "verdict" not in rule:
        return ""
    name = rule.get("rule", "noise")
    text = f"Deploy rule: {name}" + (f" (α {rule.get('alpha')}, margin {rule.get('margin')})" if name == "noise" else " (ROC-AUC ≥ champion's)")
    text += f"; verdict: {rule['verdict']}"
    if isinstance(rule.get("p_worse"), (int, float)):
        text += f"; one-sided DeLong p (candidate worse) = {rule['p_worse']:.3g}"
    if isinstance(rule.get("drop"), (int, float)):
        text += f"; drop {rule['drop']:+.4f}"
    loss = rule.get("loss") or {}
    if isinstance(loss.get("ratio"), (int, float)) and isinstance(loss.get("p_worse"), (int, float)):
        allowed = f", tolerance x{1 + rule['loss_tolerance']:g}" if isinstance(rule.get("loss_tolerance"), (int, float)) else ""
        numbers = f"{loss['log_loss_new']:.4f} vs {loss['log_loss_old']:.4f} (x{loss['ratio']:.3f}{allowed})"
        text += f"; log loss {numbers}, paired one-sided p = {loss['p_worse']:.3g}"
    slide = rule.get("slide") or {}
    best = slide.get("best")
    if best:
        text += f". Slow-slide guard: best recent version {best['version']} {best['auc']:.4f} vs candidate {best['candidate_auc']:.4f} on {best['rows']} rows"
    if slide.get("skipped"):
        text += f"; skipped {'; '.join(slide['skipped'])}"
    return f"<p class='rule'>{e(text)}.</p>"


def _figures(entry: dict, evaluation: dict | None) -> str:
    e = html.escape
    if evaluation is None:
        return "<p class='note'>No holdout scores are stored for this version, so the curves cannot be drawn.</p><div class='grid'></div>"
    images = [(t, _curves(k, evaluation, entry)) for t, k in (("ROC curves", "roc"), ("Precision-recall curves", "pr"), ("Calibration", "cal"))]
    return "<div class='grid'>" + "".join(f"<figure><img alt='{e(t)}' src='{src}'><figcaption>{e(t)}</figcaption></figure>" for t, src in images) + "</div>"


def _data(ds: dict) -> str:
    head = ["file", "sha256", "rows", "positives", "positive rate", "holdout rows", "split"]
    row = [ds.get("path"), str(ds.get("sha256", ""))[:12], ds.get("rows"), ds.get("positives"), ds.get("positive_rate"), ds.get("holdout_rows")]
    parts = ["<h2>Data</h2>", _table(head, [[*row, (ds.get("split") or {}).get("method")]])]
    missing = ds.get("missing_values") or {}
    parts.append(_table(["column", "missing values"], [[k, v] for k, v in missing.items()]) if missing else "<p>No missing values.</p>")
    if ds.get("dropped_columns"):
        parts.append(_table(["left out", "why"], [[k, v] for k, v in ds["dropped_columns"].items()]))
    return "".join(parts)


def _drift(drift: dict | None, entry: dict | None = None) -> str:
    """PSI per feature: the new rows first (what the checks judge), then the whole file; each line says what it covers."""
    e = html.escape
    parts = ["<h2>Drift against the production model's training data</h2>"]
    if not drift or drift.get("reference") is None:
        note = (drift or {}).get("note") or "no reference profile"
        return parts[0] + f"<p class='note'>{e(note)}.</p>"
    ref = e(str(drift["reference"]))
    if drift.get("new_rows") is not None:
        sig = ", ".join(drift.get("significant_new") or []) or "none"
        head = f"New rows ({drift['new_rows']}, the rows added since the last accepted version) vs {ref}'s training data:"
        parts.append(f"<p class='drift-new'><b>{head}</b> significant drift (PSI &gt; 0.25): {e(sig)}.</p>")
    parts.append(
        f"<p class='drift-whole'>Whole file (every row, old and new) vs {ref}'s training data: {drift['drifted_share']:.0%} of features drifted (PSI ≥ 0.1); "
        f"significant (PSI &gt; 0.25): {e(', '.join(drift['significant']) or 'none')}."
        + (" New rows are diluted here by the rows seen before." if drift.get("new_rows") is not None else "")
        + "</p>"
    )
    parts.append(_drift_verdict(entry or {}, drift))
    by_psi = sorted(drift["features"].items(), key=lambda kv: -max(kv[1].get("psi_new") or 0, kv[1]["psi"] or 0))
    rows = [[n, r.get("psi_new"), r["psi"], r.get("band_new") or r["band"], ", ".join(r["new_categories"])] for n, r in by_psi]
    rows += [[n, None, None, "missing in new data", ""] for n in drift.get("missing_features", [])]
    parts.append(_table(["feature", "PSI new rows", "PSI whole file", "band", "new categories"], rows))
    return "".join(parts)


def _drift_verdict(entry: dict, drift: dict) -> str:
    """What the drift meant for this run's decision, in the decision box's words."""
    blocking = [c for c in entry.get("checks") or [] if c.get("severity") == "block"]
    if not blocking or entry.get("decision") == Decision.DEPLOYED:
        return ""
    names = ", ".join(dict.fromkeys(str(c.get("name")) for c in blocking))
    shifted = set(drift.get("significant_new") or []) | set(drift.get("significant") or [])
    named = [col for c in blocking for col in c.get("columns") or [] if col in shifted]
    also = f" Drifted here and named by a blocking check: {', '.join(dict.fromkeys(named))}." if named else ""
    return f"<p class='drift-verdict block'>Not deployed: data check {html.escape(names)} blocked it (see Data checks above).{html.escape(also)}</p>"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2328}"
    ".checks li.block,.drift-verdict.block{color:#b42318}.drift-new{font-weight:500}.checks li.warn{color:#9a6700}"
    ".decision{font-size:1.25em;font-weight:600;padding:.6em;border-left:5px solid #1f6feb;background:#f6f8fa}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;font-size:.9em}"
    ".grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}img{max-width:100%}.note,.meta{color:#59636e}"
)


def load_evaluation(path: Path) -> dict | None:
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {"y": z["y"], "candidate": z["candidate"], "champion": z["champion"] if "champion" in z.files else None}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
