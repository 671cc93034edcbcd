"""The analysis of an A/B or shadow test: join the prediction log with outcomes, compare the arms.

:func:`analyze` returns per-arm ROC-AUCs, their difference, the sample-ratio check and a
recommendation (promote the challenger, keep the champion, keep collecting). Rows a model
trained on are left out when a registry is given (``counts["rows_excluded_trained_on"]``):
each log line carries the row's ledger key under its version (:mod:`retraining.ab.rowkeys`),
looked up in the version's training ledger, whether it was trained with an id column or not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.ab import stats as abstats
from retraining.ab.predlog import CHALLENGER, CHAMPION, entity_hashes, production_salt, read_prediction_logs
from retraining.data.dataset import encode_target
from retraining.errors import DataError, UsageError
from retraining.evaluation import compare_auc
from retraining.sources import column_list, suggest

log = logging.getLogger(__name__)
MIN_ROWS_TO_PROMOTE = 200  # labelled rows left after the training rows are left out


def analyze(
    log_path: Path,
    outcomes: pd.DataFrame,
    id_column: str,
    label_column: str,
    experiment: str | None = None,
    salt: str | None = None,
    positive_class: str | None = None,
    where: str = "outcomes",
    registry=None,
    id_text: pd.Series | None = None,
) -> dict:
    """Join the log with outcomes; per-arm AUCs, the difference, SRM, a recommendation.

    ``registry``: leave out outcome rows a version trained on (its ledger). ``id_text``: the
    ids as written (:func:`retraining.data.keys.written_id_text`), else the id column.
    """
    preds = _one_experiment(all_preds := read_prediction_logs(log_path), experiment, log_path)
    experiment = str(preds["experiment"].iloc[0])
    for col in (id_column, label_column):
        if col not in outcomes.columns:
            raise DataError(f"{where}: no column {col!r}; columns are {column_list(outcomes.columns)}.{suggest(col, outcomes.columns)}")
    shadow = not preds["served"].all()
    served = preds[preds["served"]].drop_duplicates("entity", keep="first")
    versions = served.groupby("variant")["model_version"].first().to_dict()
    if shadow:
        versions[CHALLENGER] = preds.loc[~preds["served"], "model_version"].iloc[0]
    report: dict = {"experiment": experiment, "mode": "shadow" if shadow else "split", "versions": versions, "predictions": len(served)}
    labels, counts = _join(outcomes if id_text is None else outcomes.assign(_id_text=id_text.to_numpy()), served, id_column, label_column, salt or experiment)
    counts["skipped_log_lines"] = int(all_preds.attrs.get("skipped_lines", 0))
    if registry is not None:
        labels, counts["rows_excluded_trained_on"], unknown = _without_training_rows(labels, preds, id_column, registry, versions)
        if unknown:
            counts["training_rows_unknown"] = unknown
    counts["labelled"] = len(labels)
    report["counts"] = counts
    distinct = labels[label_column].astype(str).nunique()
    if distinct < 2:
        report.update(arms={}, difference=None, srm=None)
        report["recommendation"] = {"action": "keep collecting", "reason": f"the joined outcomes hold {distinct} class(es); AUC needs both", "more_rows": None}
        return report
    y, _ = encode_target(labels[label_column], label_column, positive_class, where)
    joined = served[["entity", "variant", "score"]].set_index("entity").loc[labels["entity"]]
    if shadow:
        report.update(_compare_shadow(preds, labels, joined, y, counts))
    else:
        report.update(_compare_split(preds, served, joined, y, experiment))
    report["recommendation"] = abstats.recommend(report["difference"], report["srm"], counts["labelled"])
    return report


def _one_experiment(preds: pd.DataFrame, experiment: str | None, log_path: Path) -> pd.DataFrame:
    experiments = sorted(preds["experiment"].unique())
    if experiment is None:
        tests = [e for e in experiments if production_salt(e) is None]  # production lines are no A/B test (docs/monitoring.md)
        if not tests:
            raise UsageError(f"{log_path} holds production lines only, no A/B test; compare versions on outcomes with monitor.py.")
        experiments = tests
        if len(experiments) > 1:
            raise UsageError(f"{log_path} holds several experiments ({', '.join(experiments)}); pick one with --experiment.")
        experiment = experiments[0]
    elif experiment not in experiments:
        raise UsageError(f"{log_path} has no experiment {experiment!r} (it has {', '.join(experiments)}).")
    return preds[preds["experiment"] == experiment]


def _join(outcomes: pd.DataFrame, served: pd.DataFrame, id_column: str, label_column: str, salt: str) -> tuple[pd.DataFrame, dict]:
    """The labelled outcomes of scored entities (one per entity, the last), and what did not join."""
    text = "_id_text" if "_id_text" in outcomes.columns else id_column
    labels = outcomes[list(dict.fromkeys([id_column, label_column, text]))]
    no_label = labels[label_column].isna()
    labels = labels[~no_label]
    counts = {"outcome_rows": len(outcomes), "missing_labels": int(no_label.sum())}
    labels = labels.assign(entity=entity_hashes(labels[text], salt))
    labels, counts["conflicting_ids"] = _without_conflicts(labels, label_column)
    labels = labels.drop_duplicates("entity", keep="last")[list(dict.fromkeys([id_column, label_column, "entity", text]))]
    known = np.isin(labels["entity"].to_numpy(), served["entity"].to_numpy())
    counts["unknown_ids"] = int((~known).sum())
    counts["predictions_without_outcome"] = int((~np.isin(served["entity"].to_numpy(), labels["entity"].to_numpy())).sum())
    return labels[known], counts


def _without_conflicts(labels: pd.DataFrame, label_column: str) -> tuple[pd.DataFrame, int]:
    """Drop every row of an id whose rows carry different labels (neither is trusted); how many ids that was."""
    per_id = labels[label_column].astype(str).groupby(labels["entity"].to_numpy()).nunique()
    conflicting = labels["entity"].map(per_id).to_numpy() > 1
    n = int(labels.loc[conflicting, "entity"].nunique())
    if n:
        log.warning("%d id(s) have conflicting labels in the outcomes; left out of the analysis", n)
    return labels[~conflicting], n


def _without_training_rows(labels: pd.DataFrame, preds: pd.DataFrame, id_column: str, registry, versions: dict) -> tuple[pd.DataFrame, int, dict]:
    """``labels`` less the rows a model trained on, how many those were, and why a version could not be checked.

    Each line's ``key`` (the row's ledger key under the line's version) is looked up in that
    version's ledger, and in the other version's when both keyed rows alike (same key
    columns and kinds: the same row has the same key). Lines without keys (format 1) of a
    version trained with ``--id-column`` fall back to the outcomes' ids.
    """
    from retraining.guard.ledger import load_ledger

    lines = preds[np.isin(preds["entity"].to_numpy(), labels["entity"].to_numpy())]
    names = sorted({versions.get(CHAMPION), versions.get(CHALLENGER)} - {None})
    ledgers = {v: load_ledger(registry.artifact_path("ledger", v)) for v in names}
    trained = np.zeros(len(labels), dtype=bool)
    unknown: dict[str, str] = {}
    for version in names:
        ledger, mine = ledgers[version], lines[lines["model_version"] == version]
        known = mine["key_known"].to_numpy()
        if ledger is None:
            unknown[version] = "it has no training ledger (made before ledgers, or it was deleted)"
        elif not known.any() and ledger.key.get("method") == "id":  # format 1 lines: the outcomes' ids, as before
            trained |= _trained_ids(labels, id_column, ledger, version)
            continue
        elif not known.all():
            old = ~known & (mine["format"].to_numpy() < 2)
            unknown[version] = _why_no_keys(int(old.sum()), int((~known & ~old).sum()), len(known), ledger)
        if ledger is not None:
            for other in (v for v in names if ledgers[v] is not None and (v == version or _same_keys(ledger, ledgers[v]))):
                hit = mine.loc[known & np.isin(mine["key"].to_numpy(), ledgers[other].train), "entity"].to_numpy()
                trained |= np.isin(labels["entity"].to_numpy(), hit)
        if version in unknown:
            log.warning("%s: %s, so its training rows cannot all be left out of the analysis.", version, unknown[version])
    return labels[~trained], int(trained.sum()), unknown


def _why_no_keys(old: int, null: int, total: int, ledger) -> str:
    """Why some joined lines of a version have no key: written before keys, or a null key (and what that means)."""
    why = []
    if old:
        why.append(f"{old} of the {total} joined lines of it were written before the row key (prediction-log format 1); score its rows again to log keys")
    if null:
        how = f"by its id column {ledger.key.get('column')!r}" if ledger.key.get("method") == "id" else "by its feature values"
        why.append(
            f"{null} of the {total} joined lines of it carry no row key (it keys rows {how}: the rows sent lacked a column "
            "its key covers, or held a value its training could not have read; see the scorer's warning)"
        )
    return "; ".join(why)


def _same_keys(a, b) -> bool:
    """Whether two ledgers key the same row alike (so one logged key serves both)."""
    return a.key == b.key and (a.key.get("method") == "id" or not a.kinds or not b.kinds or a.kinds == b.kinds)


def _trained_ids(labels: pd.DataFrame, id_column: str, ledger, version: str) -> np.ndarray:
    """Lines without keys, a version trained with ``--id-column``: the outcomes' ids looked up in its ledger."""
    from retraining.data.keys import id_hashes

    if ledger.key.get("column") != id_column:
        log.info("%s was trained with --id-column %r; matching its ids to the outcomes' %r by value.", version, ledger.key.get("column"), id_column)
    as_written = ledger.ids == "text" and "_id_text" in labels.columns  # an older ledger holds the ids as the CSV reader parsed them
    return np.isin(id_hashes(labels["_id_text" if as_written else id_column]), ledger.train)


def _compare_shadow(preds: pd.DataFrame, labels: pd.DataFrame, joined: pd.DataFrame, y: np.ndarray, counts: dict) -> dict:
    """Paired: both models scored every row."""
    sh = preds[~preds["served"]].drop_duplicates("entity").set_index("entity")["score"]
    paired = sh.reindex(labels["entity"]).to_numpy()
    ok = ~np.isnan(paired)
    counts["missing_shadow_scores"] = int((~ok).sum())
    champ, chall, yy = joined["score"].to_numpy()[ok], paired[ok], y[ok]
    enough = yy.sum() >= 2 and (1 - yy).sum() >= 2
    return {
        "arms": {CHAMPION: abstats.auc_with_ci(yy, champ), CHALLENGER: abstats.auc_with_ci(yy, chall)},
        "difference": abstats.paired_difference(compare_auc(yy, chall, champ)) if enough else None,
        "srm": None,
    }


def _compare_split(preds: pd.DataFrame, served: pd.DataFrame, joined: pd.DataFrame, y: np.ndarray, experiment: str) -> dict:
    """Unpaired: each entity saw one arm; the split is checked against the share."""
    variant = joined["variant"].to_numpy()
    arms = {arm: abstats.auc_with_ci(y[variant == arm], joined["score"].to_numpy()[variant == arm]) for arm in (CHAMPION, CHALLENGER)}
    n = served["variant"].value_counts()
    shares = preds["share"].dropna().unique()
    if len(shares) > 1:
        log.warning("The share changed during experiment %s (%s); the split check uses the last one.", experiment, shares)
    share = float(preds["share"].dropna().iloc[-1]) if len(shares) else None
    srm = abstats.srm_test(int(n.get(CHAMPION, 0)), int(n.get(CHALLENGER, 0)), share) if share else None
    return {"arms": arms, "difference": abstats.unpaired_difference(arms[CHAMPION], arms[CHALLENGER]), "srm": srm}


def promotion_refusal(report: dict) -> str | None:
    """Why ``--promote-winner`` must not act on this analysis (None: it may)."""
    c = report["counts"]
    unknown = c.get("training_rows_unknown")
    if unknown:
        why = "; ".join(f"{v}: {reason}" for v, reason in unknown.items())
        return (
            f"--promote-winner refused: the outcome rows may include rows a model trained on, which flatters it ({why}); "
            "promote by hand if you are sure the rows are new: retrain_model.py --promote VERSION --reason TEXT"
        )
    excluded = c.get("rows_excluded_trained_on", 0)
    if excluded and c["labelled"] < MIN_ROWS_TO_PROMOTE:
        return (
            f"--promote-winner refused: {excluded} outcome rows were left out because a model trained on them, and only "
            f"{c['labelled']} labelled rows remain (at least {MIN_ROWS_TO_PROMOTE} needed); score rows the models never trained on"
        )
    return None


def format_report(r: dict) -> str:
    lines = [f"experiment {r['experiment']} ({r['mode']} mode): champion {r['versions'].get(CHAMPION)} vs challenger {r['versions'].get(CHALLENGER)}"]
    c = r["counts"]
    lines.append(
        f"  joined {c['labelled']} labelled entities of {r['predictions']} predicted; outcomes: {c['outcome_rows']} rows, "
        f"{c['missing_labels']} without a label, {c['unknown_ids']} with ids never scored; {c['predictions_without_outcome']} predictions have no outcome yet"
    )
    if c.get("conflicting_ids"):
        lines.append(f"  left out {c['conflicting_ids']} ids with conflicting labels")
    if c.get("skipped_log_lines"):
        lines.append(f"  skipped {c['skipped_log_lines']} torn or invalid lines of the prediction log")
    if c.get("rows_excluded_trained_on"):
        lines.append(f"  left out {c['rows_excluded_trained_on']} rows a model trained on")
    for arm, a in r.get("arms", {}).items():
        auc = "n/a" if a["roc_auc"] is None else f"{a['roc_auc']:.4f} [{a['ci_low']:.4f}, {a['ci_high']:.4f}]"
        lines.append(f"  {arm:<10} n={a['n']:<8} positives={a['positives']:<7} ROC-AUC {auc}")
    d = r.get("difference")
    if d:
        lines.append(f"  difference {d['delta']:+.4f} AUC, 95% CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p = {d['p_value']:.3g} ({d['test']})")
    if r.get("srm"):
        s = r["srm"]
        lines.append(f"  split check: challenger share {s['observed_share']:.3%} (expected {s['expected_share']:.1%}), SRM p = {s['p_value']:.3g}")
    rec = r["recommendation"]
    lines.append(f"recommendation: {rec['action']}: {rec['reason']}")
    return "\n".join(lines)
