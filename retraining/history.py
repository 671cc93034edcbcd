"""``--history``: every version as one readable line, and the production changes.

Each version's ROC-AUC was measured on *its own* holdout, side by side with the champion
it was compared against on that same holdout; the table shows both, the champion's name
and the number of holdout rows, so a row reads as one fair comparison. Numbers in the
ROC-AUC column of different rows come from different holdouts and are not comparable.
"""

from __future__ import annotations

from .records import Event, VersionEntry
from .registry import parse_version

REASON_WIDTH = 70
EVENTS_SHOWN = 20
LEGEND = (
    "* = production ({prod}).  ROC-AUC and champion AUC of a row come from the same holdout (n rows);\n"
    "rows of different versions use different holdouts.  ! = a data check blocked the deploy, ? = a data-check warning."
)


def _auc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _short(text: str, width: int = REASON_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _row(e: VersionEntry, prod: str | None) -> tuple[str, ...]:
    champ_metrics = e.metrics.get("champion") or {}
    champ_version = (e.champion or {}).get("version")
    delong = e.delong or {}
    rate = e.dataset.get("positive_rate")
    marks = "!" if e.blocking_checks() else ("?" if e.checks else "")
    holdout = e.metrics.get("holdout_rows", e.dataset.get("holdout_rows", ""))
    return (
        "*" if e.version == prod else "",
        e.version,
        str(e.created_at).replace("T", " ").rstrip("Z"),
        str(e.dataset.get("rows", "")),
        f"{100 * rate:.1f}%" if isinstance(rate, (int, float)) else "-",
        _auc(e.candidate_auc),
        champ_version or "-",
        _auc(champ_metrics.get("roc_auc")),
        str(holdout),
        f"{delong['p_value']:.3g}" if isinstance(delong.get("p_value"), (int, float)) else "-",
        marks,
        str(e.decision),
        _short(e.reason),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_history(data: dict) -> str:
    """A readable table of every version, production marked with ``*``."""
    if not data["versions"]:
        return "No versions yet. Run `python retrain_model.py` to train the first one."
    prod = data.get("production")
    head = ("", "version", "created (UTC)", "rows", "label", "ROC-AUC", "vs", "champion", "n", "p-value", "", "decision", "why")
    entries = sorted((VersionEntry.from_json(e) for e in data["versions"]), key=lambda e: parse_version(e.version))
    lines = _table([head, *(_row(e, prod) for e in entries)])
    lines += ["", LEGEND.format(prod=prod or "none")]
    events = [Event.from_json(ev) for ev in data.get("events", [])]
    if events:
        lines += ["", "Production changes:"]
        for ev in events[-EVENTS_SHOWN:]:
            lines.append(f"  {ev.at}  {ev.event:<9} {ev.from_ or '-'} -> {ev.to}  {ev.reason}")
        if len(events) > EVENTS_SHOWN:
            lines.append(f"  ... {len(events) - EVENTS_SHOWN} earlier changes in the JSON (--history --json)")
    return "\n".join(lines)
