"""``--history``: every version as one readable line, and the production changes.

Each version's ROC-AUC was measured on *its own* holdout, side by side with the champion
it was compared against on that same holdout; the table shows both, the champion's name
and the number of holdout rows, so a row reads as one fair comparison. Numbers in the
ROC-AUC column of different rows come from different holdouts and are not comparable.
"""

from __future__ import annotations

from retraining.records import Event
from retraining.registry import parse_version

REASON_WIDTH = 70
EVENTS_SHOWN = 20
LEGEND = (
    "* = production ({prod}).  ROC-AUC and champion AUC of a row come from the same holdout (n rows);\n"
    "rows of different versions use different holdouts.  ! = a data check blocked the deploy, ? = a data-check warning."
)


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


def format_history(data: dict) -> str:
    """A readable table of every version, production marked with ``*``."""
    if not data["versions"]:
        return "No versions yet. Run `python retrain_model.py` to train the first one."
    prod = data.get("production")
    head = ("", "version", "created (UTC)", "rows", "label", "ROC-AUC", "vs", "champion", "n", "p-value", "", "decision", "why")
    entries = sorted(data["versions"], key=lambda e: parse_version(e["version"]))
    lines = _table([head, *(_row(e, prod) for e in entries)])
    lines += ["", LEGEND.format(prod=prod or "none")]
    events = data.get("events", [])
    if events:
        lines += ["", "Production changes:"]
        for ev in map(Event.from_json, events[-EVENTS_SHOWN:]):
            lines.append(f"  {ev.at}  {ev.event:<9} {ev.from_ or '-'} -> {ev.to}  {ev.reason}")
        if len(events) > EVENTS_SHOWN:
            lines.append(f"  ... {len(events) - EVENTS_SHOWN} earlier changes in the JSON (--history --json)")
    return "\n".join(lines)
