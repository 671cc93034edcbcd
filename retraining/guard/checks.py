"""Data checks before the deploy decision, in the spirit of TFX's ExampleValidator.

:func:`run_checks` compares the rows that are new since the previous version (or the
whole file, when fewer than :attr:`CheckSettings.min_new_rows` are new) with the
production model's training profile (:func:`retraining.guard.drift.profile`) and returns a
:class:`CheckReport` of :class:`Finding` records. :func:`champion_drop` compares the
champion's ROC-AUC on today's holdout with the ROC-AUC it was deployed with.

==================  ========  ===============================================================
check               severity  fires when (defaults in :class:`CheckSettings`)
==================  ========  ===============================================================
label_rate          block     positive rate differs from training: two-proportion z test
                              p < 0.001 AND Cohen's h >= 0.2 (26 % -> 42 % is h = 0.34)
labels_one_class    block     every judged row has the same label, and training's label rate
                              makes that unlikely: P(all alike) < 0.001 (300 rows at a 3 % rate)
all_missing         block     a column that had values is empty in every judged row
out_of_range        block     >= 10 % more rows than in training fall outside the training
                              1st-99th percentile range (a unit change, swapped columns)
infinite_values     block     a numeric column holds +-inf in more than 0 % of the judged rows
                              (a division by zero upstream); not counted as missing
id_like             block     a categorical column's judged rows are >= 90 % distinct values
                              (>= 100 rows): an id or free text leaking into a feature
kind_changed        block     a numeric column now holds text, or the reverse
column_gone         block     a column the production model trained on is missing from the
                              data, or empty in every row (not --drop-columns, id or time)
missing_rate        warn      a column's missing share rose by >= 0.2 (and p < 0.001)
new_categories      warn      >= 2 % of rows carry never-seen categories (the largest >= 10 rows)
resent_batch        block     >= 20 % of the new rows (and >= 20) repeat rows the previous
                              version already had (with an id column: exact copies; without:
                              beyond the share its own rows repeat): a batch sent again
repeated_ids        warn      ids that occur more than once among the new rows
drift               warn      PSI of the judged rows > 0.25 (whole-file PSI alongside)
champion_drop       warn      the champion's AUC fell >= 0.02 below its deployed AUC, p < 0.01
leak                block     a column alone predicts the judged rows' label: ROC-AUC >= 0.98
multivariate_drift  warn      a CatBoost classifier tells the new rows from the production
                              model's training rows: AUC >= 0.65 (block > 0.9 unless its top
                              column drifted on its own) -- :mod:`retraining.guard.learned`
auc_jump            block     AUC far above the version history, carried by a new or changed
                              column -- :mod:`retraining.guard.outcome` (so are the next two)
slice_regression    warn      the candidate wins overall but is clearly worse on a slice
calibration         warn      the candidate's Brier score or log loss >= 1.25 x the champion's
holdout_overlap     warn      the champion's training rows cannot be left out of the holdout
                              (no ledger, key changed) or too few rows would remain
==================  ========  ===============================================================

A user changes thresholds and severities with a :class:`CheckSettings` (``severity`` maps
a check name to ``block``, ``warn`` or ``off``); ``mode="warn"`` makes every finding a
warning and ``mode="off"`` skips the checks. Nothing here reads files or prints.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retraining.data.dataset import MISSING_CATEGORY
from retraining.errors import UsageError
from retraining.guard.drift import compare, known_categories
from retraining.guard.findings import BLOCK, MODES, OFF, WARN, CheckReport, CheckSettings, Finding, apply_severity

if TYPE_CHECKING:
    from retraining.data.dataset import Dataset
    from retraining.guard.ledger import RowSplit


# -- the entry points ----------------------------------------------------------------------
def run_checks(
    ds: Dataset,
    reference: dict | None,
    rows: RowSplit | None,
    *,
    mode: str = BLOCK,
    settings: CheckSettings | None = None,
    reference_version: str | None = None,
    reference_rows: np.ndarray | None = None,
    threads: int = -1,
) -> CheckReport:
    """Every data check on ``ds`` against the production profile ``reference``.

    ``rows`` is :func:`retraining.guard.ledger.split_rows` against the previous version; the
    checks judge its new rows, or the whole file when fewer than ``min_new_rows`` are new.
    ``reference`` ``None`` (no production model or profile) leaves only the checks that
    need none (all-missing columns, duplicates, a leaked label). ``reference_rows`` (the
    rows the production model trained on; default: the rows seen before) are what the
    multivariate drift check (:mod:`retraining.guard.learned`) tells the new rows from.
    """
    if mode not in MODES:
        raise UsageError(f"--data-checks must be one of {', '.join(MODES)} (got {mode!r}).")
    if mode == OFF:
        return CheckReport([], OFF, 0)
    s = settings or CheckSettings()
    judged = np.ones(ds.rows, bool)
    basis = "whole file"
    if rows is not None and s.min_new_rows <= int(rows.new.sum()) < ds.rows:
        judged, basis = rows.new, "new rows"
    X, y = ds.X[judged], ds.y[judged]
    ref_features = (reference or {}).get("features", {})
    found: list[Finding] = label_checks(y, reference["labels"], s) if reference and reference.get("labels") else []
    infinite = {name: mask[judged] for name, mask in ds.infinite.items()}
    found += infinite_values(infinite, s)
    found += id_like_columns(X, ds.cat_features, s)
    found += value_checks(X, ds.cat_features, ref_features, s, infinite)
    found += gone_columns(ds, ref_features)
    if rows is not None:
        found += duplicate_checks(ds, rows, s)
    drift = compare(reference, ds.X, ds.cat_features, reference_version, new=judged) if reference else {}  # compare ignores a mask of every row
    if drift:
        flagged = {c for f in found if f.severity == BLOCK for c in f.columns}
        found += drift_findings(drift, s, skip=flagged)
    found += _learned(ds, judged, basis, reference, rows, reference_rows, s, drift, threads, found)
    return CheckReport(apply_severity(found, s, mode), basis, int(judged.sum()), drift)


def _learned(ds: Dataset, judged, basis: str, reference, rows, reference_rows, s: CheckSettings, drift: dict, threads: int, before: list) -> list[Finding]:
    """The leak check on the judged rows; with new rows and a production model, the multivariate drift check."""
    from retraining.guard.learned import adversarial_check, leak_check

    leaks = [] if s.severity.get("leak") == OFF else leak_check(ds.X[judged], ds.y[judged], ds.cat_features, s)
    found = [*before, *leaks]
    if basis != "new rows" or reference is None or s.severity.get("multivariate_drift") == OFF:
        return leaks
    ref = reference_rows if reference_rows is not None else ~rows.new  # a re-sent row is a new row (split_rows)
    explained = {c for f in found for c in f.columns}  # a drift finding names every column whose PSI on the new rows passed drift_psi
    adversarial, summary = adversarial_check(ds.X, judged, np.asarray(ref, bool), ds.cat_features, s, explained=explained, threads=threads)
    drift["multivariate"] = summary
    return leaks + adversarial


def arrival_checks(ds: Dataset, reference: dict | None, arrivals: RowSplit, already: list[Finding], **kwargs) -> list[Finding]:
    """The checks again on tonight's arrivals alone (rows new since the previous run, whatever its outcome).

    After a night held back by a blocking finding, the new rows since the last accepted
    version span several nights; a failure in tonight's rows alone can hide among them.
    Returns the findings not already in ``already`` (same check, same columns), each
    message saying it was judged on tonight's arrivals.
    """
    s = kwargs.get("settings") or CheckSettings()
    new = int(arrivals.new.sum())
    if new < s.min_new_rows or new >= ds.rows:
        return []
    seen = {(f.name, tuple(f.columns)) for f in already}
    quiet = replace(s, severity={**s.severity, "multivariate_drift": OFF})  # the classifier ran on the wider rows already
    report = run_checks(ds, reference, arrivals, **{**kwargs, "settings": quiet})
    out = []
    for f in report.findings:
        if (f.name, tuple(f.columns)) in seen or f.name == "drift":  # the night's drift check judges drift (and the classifier is off here)
            continue
        numbers = {**f.numbers, "judged_on": f"tonight's {new} arrivals since {arrivals.previous}"}
        out.append(Finding(f.name, f.severity, f.columns, numbers, f"on tonight's {new} arrivals (since {arrivals.previous}, held back): {f.message}"))
    return out


def champion_drop(
    y: np.ndarray, champion_scores: np.ndarray, deployed: dict, *, version: str | None = None, settings: CheckSettings | None = None
) -> Finding | None:
    """A warning when the champion scores clearly worse today than when it was deployed.

    ``y``/``champion_scores``: today's holdout (without the champion's training rows);
    ``deployed``: the champion's log-entry ``metrics`` (``candidate.roc_auc``,
    ``holdout_rows``, ``holdout_positives``). Standard errors by Hanley & McNeil (1982).
    """
    from retraining.evaluation import roc_auc

    s = settings or CheckSettings()
    then = (deployed.get("candidate") or {}).get("roc_auc")
    pos_now = int(np.sum(y))
    neg_now = len(y) - pos_now
    if then is None or pos_now == 0 or neg_now == 0 or s.severity.get("champion_drop") == OFF:
        return None
    now = roc_auc(np.asarray(y), np.asarray(champion_scores))
    pos_then = int(deployed.get("holdout_positives") or 0)
    neg_then = int(deployed.get("holdout_rows") or 0) - pos_then
    se = math.sqrt(_auc_variance(now, pos_now, neg_now) + (_auc_variance(then, pos_then, neg_then) if pos_then and neg_then > 0 else 0.0))
    drop = then - now
    p = 0.5 * math.erfc(drop / se / math.sqrt(2)) if se > 0 else float(drop <= 0)  # se 0: both AUCs exact, the drop certain
    if drop < s.champion_drop_min or p >= s.champion_drop_p_value:
        return None
    who = version or "the champion"
    numbers = {"auc_deployed": round(then, 4), "auc_today": round(now, 4), "drop": round(drop, 4), "p_value": _round_p(p), "holdout_rows": len(y)}
    message = f"{who}'s ROC-AUC fell from {then:.4f} (when deployed) to {now:.4f} on today's holdout (p = {p:.2g}): the data or the labels changed"
    return Finding("champion_drop", s.severity.get("champion_drop", WARN), [], numbers, message)


# -- the checks ---------------------------------------------------------------------------
def label_checks(y: np.ndarray, ref: dict, s: CheckSettings) -> list[Finding]:
    """Label rate of the judged rows against the training label rate: significant AND large."""
    n1, x1 = len(y), int(np.sum(y))
    n0, x0 = int(ref.get("rows") or 0), int(ref.get("positives") or 0)
    if n1 == 0 or n1 < s.min_column_rows or n0 == 0 or x0 in (0, n0):
        return []
    p1, p0 = x1 / n1, x0 / n0
    if x1 in (0, n1):  # exact: how likely are n1 rows all alike at the training rate? (a z test misses it at low rates)
        chance = math.exp(n1 * math.log1p(-p0)) if x1 == 0 else math.exp(n1 * math.log(p0))
        if chance >= s.label_p_value:
            return []
        which = "positive" if x1 else "negative"
        numbers = {"rate": p1, "rows": n1, "positives": x1, "training_rate": round(p0, 4), "p_value": _round_p(chance)}  # p1 is 0.0 or 1.0
        message = f"all {n1} rows are {which} (training: {p0:.1%} positive; p = {chance:.2g}): are labels missing or defaulted?"
        return [Finding("labels_one_class", BLOCK, [], numbers, message)]
    pooled = (x0 + x1) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    z = (p1 - p0) / se
    p_value = math.erfc(abs(z) / math.sqrt(2))
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))
    if p_value >= s.label_p_value or abs(h) < s.label_effect:
        return []
    numbers = {"rate": round(p1, 4), "rows": n1, "positives": x1, "training_rate": round(p0, 4), "z": round(z, 2)}
    numbers.update(p_value=_round_p(p_value), cohens_h=round(h, 3))
    message = f"positive rate {p1:.1%} in {n1} rows vs {p0:.1%} in training (p = {p_value:.2g}, Cohen's h {h:+.2f}): check the label feed"
    return [Finding("label_rate", BLOCK, [], numbers, message)]


def infinite_values(infinite: dict[str, np.ndarray], s: CheckSettings) -> list[Finding]:
    """Numeric columns holding +-inf in the judged rows (``infinite``: the rows per column): a value problem, not "missing"."""
    counts = {name: int(mask.sum()) for name, mask in infinite.items() if len(mask) and mask.sum() / len(mask) > s.infinite_share}
    if not counts:
        return []
    rows = len(next(iter(infinite.values())))
    shown = ", ".join(f"{name!r} ({n} of {rows} rows)" for name, n in list(counts.items())[:5]) + (" and more" if len(counts) > 5 else "")
    message = f"infinite values in {shown}: a division by zero or overflow upstream? (raise infinite_share to tolerate some)"
    return [Finding("infinite_values", BLOCK, list(counts), {"rows": rows, "infinite_rows": counts}, message)]


def id_like_columns(X: pd.DataFrame, cat_features: list[str], s: CheckSettings) -> list[Finding]:
    """Categorical columns whose judged rows are nearly all distinct: an id or free text leaking into a feature."""
    found = []
    for name in cat_features:
        values = X[name][X[name] != MISSING_CATEGORY]
        if len(values) < s.min_column_rows:
            continue
        distinct = int(values.nunique())
        share = distinct / len(values)
        if share >= s.unique_share:
            numbers = {"distinct": distinct, "rows": len(values), "distinct_share": round(share, 4)}
            message = (
                f"categorical column {name!r} has {distinct} distinct values in {len(values)} rows ({share:.0%}): an id or free text "
                "leaking into a feature? Leave it out with --drop-columns, or name it with --id-column"
            )
            found.append(Finding("id_like", BLOCK, [name], numbers, message))
    return found


def value_checks(
    X: pd.DataFrame, cat_features: list[str], ref_features: dict, s: CheckSettings, infinite: dict[str, np.ndarray] | None = None
) -> list[Finding]:
    """Per column: empty, missing share, out of the training range, never-seen categories, kind (an infinity is not missing)."""
    cats = set(cat_features)
    found: list[Finding] = []
    for name in X.columns:
        col, ref = X[name], ref_features.get(name)
        kind = "categorical" if name in cats else "numeric"
        missing = col.eq(MISSING_CATEGORY).to_numpy() if kind == "categorical" else col.isna().to_numpy()
        if name in (infinite or {}):
            missing = missing & ~infinite[name]
        ref_missing = ref.get("missing", 0.0) if ref else 0.0
        if len(col) >= s.min_column_rows and missing.all() and ref_missing < 1.0:
            found.append(Finding("all_missing", BLOCK, [name], {"rows": len(col)}, f"column {name!r} is empty in all {len(col)} rows"))
            continue
        if ref is None:
            continue
        if ref["kind"] != kind:
            message = f"column {name!r} was {ref['kind']} in training and is {kind} now (text in a number column?)"
            found.append(Finding("kind_changed", BLOCK, [name], {"was": ref["kind"], "now": kind}, message))
            continue
        found += _missing_jump(name, missing, ref_missing, s)
        if kind == "numeric":
            found += _out_of_range(name, col.to_numpy(dtype=float), ref, s)
        else:
            found += _new_categories(name, col, ref, s)
    return found


def gone_columns(ds: Dataset, ref_features: dict) -> list[Finding]:
    """Columns the production model trained on that today's data lacks: not in the data (renamed upstream) or empty.

    A column left out as constant or unique is not reported: a file of only today's rows
    can hold one month or one campaign (the value checks and drift judge those). Columns
    the user dropped, or now uses as the id or time column, are the user's choice.
    """
    chosen = {ds.split.get("key", {}).get("column"), ds.split.get("column")}  # the id column; the time column
    why = {}
    for name in ref_features:
        if name in ds.X.columns or name in chosen:
            continue
        reason = ds.dropped.get(name, "not in the data")
        if reason == "not in the data" or ds.missing.get(name, 0) >= ds.rows:
            why[name] = reason if reason == "not in the data" else "empty in every row"
    if not why:
        return []
    shown = "; ".join(f"{name!r}: {reason}" for name, reason in list(why.items())[:5]) + (f"; and {len(why) - 5} more" if len(why) > 5 else "")
    message = f"{len(why)} column(s) the production model trained on are gone ({shown}): renamed or broken upstream?"
    return [Finding("column_gone", BLOCK, list(why), {"columns": why}, message)]


def _missing_jump(name: str, missing: np.ndarray, ref_missing: float, s: CheckSettings) -> list[Finding]:
    n, share = len(missing), float(missing.mean()) if len(missing) else 0.0
    if n < s.min_column_rows or share - ref_missing < s.missing_jump:
        return []
    se = math.sqrt(max(ref_missing * (1 - ref_missing), 1e-6) / n)
    p_value = 0.5 * math.erfc((share - ref_missing) / se / math.sqrt(2))
    if p_value >= s.missing_p_value:
        return []
    numbers = {"missing_share": round(share, 4), "training_missing_share": round(ref_missing, 4), "rows": n}
    return [Finding("missing_rate", WARN, [name], numbers, f"column {name!r} is missing in {share:.0%} of rows (training: {ref_missing:.0%})")]


def _out_of_range(name: str, values: np.ndarray, ref: dict, s: CheckSettings) -> list[Finding]:
    if "q01" not in ref:
        return []
    finite = values[~np.isnan(values)]
    if len(finite) < s.min_column_rows:
        return []
    low, high = (ref["q01"], ref["q99"]) if ref["q01"] < ref["q99"] else (ref["min"], ref["max"])
    outside = float(((finite < low) | (finite > high)).mean())
    expected = ref.get("outside", 0.02)
    if outside - expected < s.range_share:
        return []
    numbers = {"share_outside": round(outside, 4), "training_share_outside": round(expected, 4), "low": low, "high": high, "median": float(np.median(finite))}
    message = (
        f"{outside:.0%} of values of {name!r} lie outside its training range [{low:.4g}, {high:.4g}] (1st-99th percentile; "
        f"training: {expected:.0%}): a unit change or swapped columns?"
    )
    return [Finding("out_of_range", BLOCK, [name], numbers, message)]


def _new_categories(name: str, col: pd.Series, ref: dict, s: CheckSettings) -> list[Finding]:
    known = known_categories(ref)
    if known is None or len(col) < s.min_column_rows:
        return []
    counts = col[~col.isin(known)].value_counts()
    share = float(counts.sum()) / len(col)
    if share < s.new_category_share or (counts.iloc[0] if len(counts) else 0) < s.new_category_rows:
        return []
    shown = ", ".join(f"{k!r} ({v})" for k, v in counts.iloc[:5].items()) + (f" and {len(counts) - 5} more" if len(counts) > 5 else "")
    numbers = {"share": round(share, 4), "rows": int(counts.sum()), "categories": {str(k): int(v) for k, v in counts.iloc[:20].items()}}
    return [Finding("new_categories", WARN, [name], numbers, f"{share:.0%} of rows have never-seen categories in {name!r}: {shown} (renamed?)")]


def duplicate_checks(ds: Dataset, rows: RowSplit, s: CheckSettings) -> list[Finding]:
    """A batch that repeats rows the previous version had; ids repeated among the new rows."""
    key = ds.split.get("key", {})
    id_column = key.get("column") if key.get("method") == "id" else None
    columns = [id_column] if id_column else []
    if id_column and rows.resent.any():  # an id may repeat (a customer's next row): a re-sent row is an exact copy
        resent_rows, usual = rows.resent & _exact_copies(ds, rows.resent), 0.0
    else:  # a content key is the row already; some rows are alike anyway
        resent_rows, usual = rows.resent, rows.usual_repeats
    new, resent = int(rows.new.sum()), int(resent_rows.sum())
    found = []
    if new and resent >= s.resent_rows and resent - usual * new >= s.resent_share * new:
        what = f"ids of {id_column!r}" if id_column else "feature values"
        message = f"{resent} of the {new} new rows repeat rows the previous version already had ({what}): was a batch sent again?"
        if usual >= 0.01:
            message += f" (its own rows repeat a key {usual:.0%} of the time)"
        numbers = {"resent_rows": resent, "new_rows": new, "share": round(resent / new, 4), "usual_share": round(usual, 4)}
        found.append(Finding("resent_batch", BLOCK, columns, numbers, message))
    elif id_column:
        fresh = ds.keys[rows.new & ~rows.resent]
        repeated = int(rows.resent.sum()) + len(fresh) - len(np.unique(fresh))
        if repeated:
            message = f"{repeated} of the {new} new rows repeat an id of {id_column!r} (of each other or of earlier rows)"
            found.append(Finding("repeated_ids", WARN, columns, {"repeated_rows": int(repeated), "new_rows": new}, message))
    return found


def _exact_copies(ds: Dataset, resent: np.ndarray) -> np.ndarray:
    """Rows sharing a key with a re-sent row whose features and label equal another such row's."""
    from retraining.data.keys import content_hashes

    keys = np.asarray(ds.keys)
    involved = np.flatnonzero(np.isin(keys, np.unique(keys[resent])))
    frame = ds.X.iloc[involved].assign(_label=ds.y[involved])
    hashes = pd.Series(content_hashes(frame) ^ keys[involved].astype(np.uint64))
    out = np.zeros(len(keys), bool)
    out[involved] = hashes.map(hashes.value_counts()).to_numpy() > 1
    return out


def drift_findings(drift: dict, s: CheckSettings, skip: set[str] = frozenset()) -> list[Finding]:
    """One warning per feature whose PSI on the judged rows passes ``drift_psi``."""
    found = []
    on_new = drift.get("new_rows") is not None
    for name, r in drift.get("features", {}).items():
        value = r.get("psi_new") if on_new else r.get("psi")
        if value is None or value <= s.drift_psi or name in skip:
            continue
        numbers = {"psi": value, "psi_whole_file": r["psi"], "new_categories": r.get("new_categories", [])}
        where = f"PSI {value:.2f} on the {drift['new_rows']} new rows (whole file {r['psi']:.2f})" if on_new else f"PSI {value:.2f} on the whole file"
        unseen = f"; never-seen: {', '.join(map(repr, r['new_categories'][:5]))}" if r.get("new_categories") else ""
        found.append(Finding("drift", WARN, [name], numbers, f"{name!r} shifted: {where}{unseen}"))
    return found


def _auc_variance(auc: float, pos: int, neg: int) -> float:
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return (auc * (1 - auc) + (pos - 1) * (q1 - auc * auc) + (neg - 1) * (q2 - auc * auc)) / (pos * neg)


def _round_p(p: float) -> float:
    return float(f"{p:.3g}")
