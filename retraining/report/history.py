"""``--history``: every version as one readable line, and the production changes.

Each version's ROC-AUC was measured on *its own* holdout, side by side with the champion
it was compared against on that same holdout; the table shows both, the champion's name
and the number of holdout rows, so a row reads as one fair comparison. Numbers in the
ROC-AUC column of different rows come from different holdouts and are not comparable.
"""

from __future__ import annotations

import os
from pathlib import Path

from retraining.records import Event
from retraining.registry import parse_version

REASON_WIDTH = 70
EVENTS_SHOWN = 20
LEGEND = (
    "* = production ({prod}).  ROC-AUC and champion AUC of a row come from the same holdout (n rows);\n"
    "{across}\n! = a data check blocked the deploy, ? = a data-check warning."
)


def holdout_note(entries: list[dict]) -> str:
    """What the n column says about comparing rows: the same holdout, or not (never "differ" when they may not)."""
    sizes = {str((e.get("metrics") or {}).get("holdout_rows", (e.get("dataset") or {}).get("holdout_rows"))) for e in entries}
    data = {(e.get("dataset") or {}).get("sha256") for e in entries}
    if len(sizes) == 1 and len(data) == 1:
        return f"every row used the same data and so the same holdout (n = {sizes.pop()}): the ROC-AUC column compares across rows."
    if len(sizes) == 1:
        return f"every holdout has n = {sizes.pop()} rows, drawn from each version's own data: compare ROC-AUCs across rows with care."
    return "rows with different n come from different data and different holdouts: compare ROC-AUCs within a row."


def _auc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _short(text: str, width: int = REASON_WIDTH) -> str:
    text = str(text)
    if len(text) > width:
        text = " ".join(text[: width + 40].split())[: width - 3] + "..."
    return text


def _row(e: dict, prod: str | None) -> tuple[str, ...]:
    """One version as table cells (reads the log's dict directly: 10,000 rows must print in well under 0.5 s)."""
    metrics = e.get("metrics") or {}
    dataset = e.get("dataset") or {}
    delong = e.get("delong") or {}
    checks = e.get("checks") or ()
    rate = dataset.get("positive_rate")
    p_value = delong.get("p_value")
    return (
        "*" if e["version"] == prod else "",
        e["version"],
        str(e.get("created_at", "")).replace("T", " ").rstrip("Z"),
        str(dataset.get("rows", "")),
        f"{100 * rate:.1f}%" if isinstance(rate, (int, float)) else "-",
        _auc((metrics.get("candidate") or {}).get("roc_auc")),
        (e.get("champion") or {}).get("version") or "-",
        _auc((metrics.get("champion") or {}).get("roc_auc")),
        str(metrics.get("holdout_rows", dataset.get("holdout_rows", ""))),
        f"{p_value:.3g}" if isinstance(p_value, (int, float)) else "-",
        "!" if any(c.get("severity") == "block" for c in checks) else ("?" if checks else ""),
        str(e.get("decision", "")),
        _short(e.get("reason", "")),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(map(len, col)) for col in zip(*rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*r).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def settings_line(e: dict) -> str:
    """A version's training settings in one line (``--history --verbose``; the report has them as a table)."""
    return "; ".join(f"{k} {v}" for k, v in settings_rows(e))


def settings_rows(e: dict) -> list[tuple[str, str]]:
    """The training settings of a version: what a reader needs to explain its numbers."""
    params, cb = e.get("params") or {}, e.get("catboost_params") or {}

    def value(key: str) -> str:
        v = cb.get(key, params.get(key))
        shown = f"{v:.4g}" if isinstance(v, float) else str(v)
        return shown + (" (CatBoost's choice)" if params.get(key) is None and cb.get(key) is not None else "")

    checks = e.get("check_settings") or {}
    return [
        ("iterations", value("iterations")),
        ("depth", value("depth")),
        ("learning rate", value("learning_rate")),
        ("seed", str(params.get("seed"))),
        ("task type", str(params.get("task_type"))),
        ("data source", str((e.get("dataset") or {}).get("path"))),
        ("target", str(params.get("target"))),
        ("id column / time column", f"{params.get('id_column') or '-'} / {params.get('time_column') or '-'}"),
        ("dropped columns", ", ".join(params.get("drop_columns") or []) or "-"),
        ("data checks", str(e.get("data_checks") or "not recorded (a version made before this field)")),
        ("check settings changed from the defaults", ", ".join(f"{k}={v}" for k, v in checks.items()) or "none"),
        ("deploy rule", ", ".join(f"{k}={v}" for k, v in (e.get("rule") or {}).items()) or "-"),
    ]


def _reports(entries: list[dict], folder: Path) -> list[str]:
    """Each version's report (``folder/VERSION.html``) as an absolute path; the folder is listed once, so 10,000 versions stay fast."""
    folder = folder.resolve()
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    base = str(folder) + os.sep
    lines = ["", "Reports (open in a browser):"]
    for e in entries:
        name = e["version"] + ".html"
        shown = base + name if name in names else f"none yet: python retrain_model.py --report {e['version']}"
        lines.append(f"  {e['version']:<9} {shown}")
    return lines


def format_history(data: dict, reports: Path | None = None, verbose: bool = False) -> str:
    """A readable table of every version, production marked with ``*``.

    ``reports`` (the folder of the ``VERSION.html`` reports) adds each version's report as an
    absolute path; ``verbose`` adds each version's training settings.
    """
    if not data["versions"]:
        return "No versions yet. Run `python retrain_model.py` to train the first one."
    prod = data.get("production")
    head = ("", "version", "created (UTC)", "rows", "label", "ROC-AUC", "vs", "champion", "n", "p-value", "", "decision", "why")
    entries = sorted(data["versions"], key=lambda e: parse_version(e["version"]))
    lines = _table([head, *(_row(e, prod) for e in entries)])
    lines += ["", LEGEND.format(prod=prod or "none", across=holdout_note(entries))]
    if verbose:
        lines += ["", "Training settings:"] + [f"  {e['version']:<9} {settings_line(e)}" for e in entries]
    if reports is not None:
        lines += _reports(entries, reports)
    events = data.get("events", [])
    if events:
        lines += ["", "Production changes:"]
        for ev in map(Event.from_json, events[-EVENTS_SHOWN:]):
            lines.append(f"  {ev.at}  {ev.event:<9} {ev.from_ or '-'} -> {ev.to}  {ev.reason}")
        if len(events) > EVENTS_SHOWN:
            lines.append(f"  ... {len(events) - EVENTS_SHOWN} earlier changes in the JSON (--history --json)")
    return "\n".join(lines)
