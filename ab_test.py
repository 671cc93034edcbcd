"""A/B and shadow tests of the production model (champion) against a newer version (challenger).

    python ab_test.py score input.csv --id-column ID [--challenger vX.Y.Z] [--share 0.2] [--shadow] \\
        --out scored.csv --log predictions.jsonl
    python ab_test.py analyze --log predictions.jsonl --outcomes outcomes.csv --id-column ID \\
        --label-column LABEL [--promote-winner]

Split mode: each entity is assigned to an arm by a salted hash of its id (sticky across
calls, processes and days); ``--share`` is the challenger's share. Shadow mode: both
models score every row, only the champion's score is served; the comparison is paired.
Every prediction is appended to a JSON-lines log (one line per prediction; several
processes may append at once). ``analyze`` joins the log with outcomes and recommends:
promote the challenger, keep the champion, or keep collecting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from retraining import abstats
from retraining.argparse_util import OneLineParser
from retraining.data import DataError, encode_target, read_csv
from retraining.errors import RetrainError, StateError, UsageError, VersionNotFoundError
from retraining.evaluation import compare_auc
from retraining.predlog import append_atomically, entity_hashes, fill_scores, layout, read_prediction_log
from retraining.registry import Registry, parse_version

log = logging.getLogger("ab_test")
CHAMPION, CHALLENGER = "champion", "challenger"


class ABTest:
    """An experiment between two versions of the registry."""

    def __init__(
        self,
        models_dir: str | Path = "models",
        production_path: str | Path = "catboost_model.cbm",
        champion: str | None = None,
        challenger: str | None = None,
        share: float = 0.1,
        shadow: bool = False,
        salt: str | None = None,
        experiment_id: str | None = None,
        log_path: str | Path | None = None,
        durable: bool = False,
    ) -> None:
        if not 0 < share < 1:
            raise UsageError(f"--share must be between 0 and 1 (got {share}).")
        self.registry = Registry(models_dir, production_path)
        data = self.registry.read_log()
        champion = champion or data.get("production")
        if champion is None:
            raise StateError(f"no production version in {self.registry.log_path}; run retrain_model.py first or pass --champion.")
        if challenger is None:
            others = [e["version"] for e in data["versions"] if e["version"] != champion]
            if not others:
                raise VersionNotFoundError(f"no challenger: {champion} is the only version. Retrain first, or pass --challenger.")
            challenger = max(others, key=parse_version)
        if challenger == champion:
            raise UsageError(f"champion and challenger are both {champion}; pick two different versions.")
        self.versions = {CHAMPION: champion, CHALLENGER: challenger}
        self.sha = {arm: self.registry.find(data, v)["sha256"] for arm, v in self.versions.items()}
        self.share, self.shadow = share, shadow
        self.experiment_id = experiment_id or f"{champion}-vs-{challenger}"
        self.salt = salt or self.experiment_id
        self.log_path = Path(log_path) if log_path else None
        self.durable = durable
        self._models: dict = {}

    def model(self, arm: str):
        if arm not in self._models:
            from retraining.training import load_model

            entry = self.registry.find(self.registry.read_log(), self.versions[arm])
            self._models[arm] = load_model(self.registry.verify(entry), f"{arm} model {self.versions[arm]}")
        return self._models[arm]

    def assign(self, ids) -> np.ndarray:
        """``"champion"`` or ``"challenger"`` per id: sticky, and ``share`` of ids go to the challenger."""
        u = (entity_hashes(ids, self.salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        return np.where(u < self.share, CHALLENGER, CHAMPION)

    def _features(self, frame: pd.DataFrame, arm: str) -> tuple[pd.DataFrame, list[str]]:
        model = self.model(arm)
        names = list(model.feature_names_)
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise DataError(f"the input lacks columns the {arm} model {self.versions[arm]} needs: {', '.join(missing[:8])}.")
        cats = [names[i] for i in model.get_cat_feature_indices()]
        return frame[names], cats

    def _same_inputs(self) -> bool:
        a, b = self.model(CHAMPION), self.model(CHALLENGER)
        return list(a.feature_names_) == list(b.feature_names_) and list(a.get_cat_feature_indices()) == list(b.get_cat_feature_indices())

    def _score(self, frame: pd.DataFrame, arm: str) -> np.ndarray:
        from retraining.training import predict

        return predict(self.model(arm), *self._features(frame, arm))

    def predict(self, frame: pd.DataFrame, ids) -> pd.DataFrame:
        """Score ``frame``; return id, variant, model_version, score (+ shadow columns); log it.

        While this thread turns the frame into a CatBoost Pool, a second one hashes the ids,
        assigns the arms and lays out the log lines; once the models have scored, only the
        scores are filled in and the lines appended (in shadow mode the served lines are
        written while the challenger scores). ``predict`` returns after every line is written.
        """
        ids = np.asarray(ids)
        n = len(frame)
        if len(ids) != n:
            raise UsageError(f"{len(ids)} ids for {n} rows.")
        prepared = _InThread(self._prepare, ids) if n >= PARALLEL_ROWS else _Done(self._prepare(ids))
        try:
            pool = None
            if self._same_inputs():  # one Pool for both models; the arms are slices of it
                from catboost import Pool

                from retraining.training import as_categoricals

                X, cats = self._features(frame, CHAMPION)
                pool = Pool(as_categoricals(X, cats), cat_features=cats)
        finally:
            codes, lines = prepared.result()
        if self.shadow:

            def score(arm: str) -> np.ndarray:
                return self.model(arm).predict_proba(pool)[:, 1] if pool is not None else self._score(frame, arm)

            scores = score(CHAMPION)
            # the served lines are written while the challenger scores
            served = _InThread(self._append, lines[:1], scores) if lines is not None and n >= PARALLEL_ROWS else None
            try:
                shadow = score(CHALLENGER)
            except BaseException:
                if served is not None:
                    served.wait()
                raise
            if served is not None:
                served.result()
                self._append(lines[1:], shadow)
            else:
                self._append(lines, scores, shadow)
            out = pd.DataFrame({"id": ids, "variant": np.full(n, CHAMPION), "model_version": self.versions[CHAMPION], "score": scores})
            out["shadow_version"] = self.versions[CHALLENGER]
            out["shadow_score"] = shadow
            return out
        scores = np.empty(n)
        for code, arm in ((0, CHAMPION), (1, CHALLENGER)):
            rows = np.flatnonzero(codes == code)
            if len(rows) == 0:
                continue
            if pool is not None:
                scores[rows] = self.model(arm).predict_proba(pool if len(rows) == n else pool.slice(rows))[:, 1]
            else:
                scores[rows] = self._score(frame.iloc[rows] if len(rows) < n else frame, arm)
        self._append(lines, scores)
        return pd.DataFrame(
            {
                "id": ids,
                "variant": pd.Categorical.from_codes(codes, [CHAMPION, CHALLENGER]),  # categoricals: no 100k strings to build
                "model_version": pd.Categorical.from_codes(codes, [self.versions[CHAMPION], self.versions[CHALLENGER]]),
                "score": scores,
            }
        )

    # -- the prediction log ---------------------------------------------------------------
    def _prepare(self, ids: np.ndarray) -> tuple[np.ndarray, list | None]:
        """Arm codes (1 = challenger) and, with a log, its lines with the scores left blank."""
        hashes = entity_hashes(ids, self.salt)
        codes = np.zeros(len(ids), np.int8) if self.shadow else ((hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53) < self.share).astype(np.int8)
        return codes, self._layout(hashes, codes) if self.log_path is not None else None

    def _layout(self, hashes: np.ndarray, codes: np.ndarray) -> list:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        head = (uuid.uuid4().hex[:16], now, self.experiment_id, None if self.shadow else self.share)
        lines = [layout(head, hashes, codes, self.versions, self.sha, [(CHAMPION, True), (CHALLENGER, True)])]
        if self.shadow:
            lines.append(layout(head, hashes, np.ones_like(codes), self.versions, self.sha, [(CHAMPION, True), (CHALLENGER, False)]))
        return lines

    def _append(self, lines: list | None, *scores: np.ndarray) -> None:
        """Fill each laid-out block of lines with its scores and append them in one locked write."""
        if lines is None:
            return
        blobs = [fill_scores(rows, at, s) for (rows, at), s in zip(lines, scores, strict=True)]
        append_atomically(self.log_path, blobs, durable=self.durable)

    def _log(self, hashes: np.ndarray, codes: np.ndarray, scores: np.ndarray, shadow: np.ndarray | None) -> None:
        """Append the lines of predictions made elsewhere (simulations, benchmarks)."""
        if self.log_path is not None:
            self._append(self._layout(hashes, codes), *([scores] if shadow is None else [scores, shadow]))


PARALLEL_ROWS = 4096  # below this, preparing the log on a second thread costs more than it saves


class _InThread:
    """``fn(*args)`` on a second thread from now on; ``result()`` waits, returns or re-raises."""

    def __init__(self, fn, *args) -> None:
        self._out = self._exc = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name="ab-test", daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._out = fn(*args)
        except BaseException as exc:  # handed to the caller by result()
            self._exc = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._exc is not None:
            raise self._exc
        return self._out


class _Done:
    def __init__(self, out) -> None:
        self._out = out

    def result(self):
        return self._out


def analyze(
    log_path: Path,
    outcomes: pd.DataFrame,
    id_column: str,
    label_column: str,
    experiment: str | None = None,
    salt: str | None = None,
    positive_class: str | None = None,
    where: str = "outcomes",
) -> dict:
    """Join the log with outcomes; per-arm AUCs, the difference, SRM, a recommendation."""
    preds = read_prediction_log(log_path)
    experiments = sorted(preds["experiment"].unique())
    if experiment is None:
        if len(experiments) > 1:
            raise UsageError(f"{log_path} holds several experiments ({', '.join(experiments)}); pick one with --experiment.")
        experiment = experiments[0]
    elif experiment not in experiments:
        raise UsageError(f"{log_path} has no experiment {experiment!r} (it has {', '.join(experiments)}).")
    preds = preds[preds["experiment"] == experiment]
    for col in (id_column, label_column):
        if col not in outcomes.columns:
            raise DataError(f"{where}: no column {col!r}; columns are {', '.join(map(str, outcomes.columns[:12]))}.")
    shadow = not preds["served"].all()
    served = preds[preds["served"]].drop_duplicates("entity", keep="first")
    versions = served.groupby("variant")["model_version"].first().to_dict()
    if shadow:
        versions[CHALLENGER] = preds.loc[~preds["served"], "model_version"].iloc[0]
    report: dict = {"experiment": experiment, "mode": "shadow" if shadow else "split", "versions": versions, "predictions": len(served)}
    labels = outcomes[[id_column, label_column]]
    no_label = labels[label_column].isna()
    labels = labels[~no_label]
    counts = {"outcome_rows": len(outcomes), "missing_labels": int(no_label.sum())}
    labels = labels.assign(entity=entity_hashes(labels[id_column], salt or experiment))
    labels = labels.drop_duplicates("entity", keep="last")
    known = np.isin(labels["entity"].to_numpy(), served["entity"].to_numpy())
    counts["unknown_ids"] = int((~known).sum())
    counts["predictions_without_outcome"] = int((~np.isin(served["entity"].to_numpy(), labels["entity"].to_numpy())).sum())
    labels = labels[known]
    distinct = labels[label_column].astype(str).nunique()
    counts["labelled"] = len(labels)
    report["counts"] = counts
    if distinct < 2:
        report.update(arms={}, difference=None, srm=None)
        report["recommendation"] = {
            "action": "keep collecting",
            "reason": f"the joined outcomes hold {distinct} class(es); AUC needs both",
            "more_rows": None,
        }
        return report
    y, _ = encode_target(labels[label_column], label_column, positive_class, where)
    joined = served[["entity", "variant", "score"]].set_index("entity").loc[labels["entity"]]
    if shadow:
        sh = preds[~preds["served"]].drop_duplicates("entity").set_index("entity")["score"]
        paired = sh.reindex(labels["entity"]).to_numpy()
        ok = ~np.isnan(paired)
        counts["missing_shadow_scores"] = int((~ok).sum())
        champ, chall, yy = joined["score"].to_numpy()[ok], paired[ok], y[ok]
        report["arms"] = {CHAMPION: abstats.auc_with_ci(yy, champ), CHALLENGER: abstats.auc_with_ci(yy, chall)}
        enough = yy.sum() >= 2 and (1 - yy).sum() >= 2
        report["difference"] = abstats.paired_difference(compare_auc(yy, chall, champ)) if enough else None
        report["srm"] = None
    else:
        variant = joined["variant"].to_numpy()
        report["arms"] = {arm: abstats.auc_with_ci(y[variant == arm], joined["score"].to_numpy()[variant == arm]) for arm in (CHAMPION, CHALLENGER)}
        report["difference"] = abstats.unpaired_difference(report["arms"][CHAMPION], report["arms"][CHALLENGER])
        n = served["variant"].value_counts()
        shares = preds["share"].dropna().unique()
        if len(shares) > 1:
            log.warning("The share changed during experiment %s (%s); the split check uses the last one.", experiment, shares)
        share = float(preds["share"].dropna().iloc[-1]) if len(shares) else None
        report["srm"] = abstats.srm_test(int(n.get(CHAMPION, 0)), int(n.get(CHALLENGER, 0)), share) if share else None
    report["recommendation"] = abstats.recommend(report["difference"], report["srm"], counts["labelled"])
    return report


def format_report(r: dict) -> str:
    lines = [f"experiment {r['experiment']} ({r['mode']} mode): champion {r['versions'].get(CHAMPION)} vs challenger {r['versions'].get(CHALLENGER)}"]
    c = r["counts"]
    lines.append(
        f"  joined {c['labelled']} labelled entities of {r['predictions']} predicted; outcomes: {c['outcome_rows']} rows, "
        f"{c['missing_labels']} without a label, {c['unknown_ids']} with ids never scored; {c['predictions_without_outcome']} predictions have no outcome yet"
    )
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


# -- command line -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ab_test.py", description="A/B and shadow tests of the champion against a challenger version.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in ("score", "analyze"):
        sp = sub.add_parser(name, help="score rows" if name == "score" else "compare the arms on outcomes")
        sp.add_argument("--models-dir", default="models", metavar="DIR", help="the registry (default: %(default)s)")
        sp.add_argument("--production", default="catboost_model.cbm", metavar="PATH", help="production model file (default: %(default)s)")
        sp.add_argument("--id-column", required=True, metavar="NAME", help="entity id column")
        sp.add_argument("--log", required=True, type=Path, metavar="PATH", help="the JSON-lines prediction log")
        sp.add_argument("--salt", help="assignment salt (default: the experiment id)")
        sp.add_argument("--json", action="store_true", help="print the result as JSON")
        sp.add_argument("-v", "--verbose", action="store_true", help="tracebacks on errors")
        if name == "score":
            sp.add_argument("input", type=Path, help="CSV of rows to score")
            sp.add_argument("--champion", metavar="VERSION", help="default: the production version")
            sp.add_argument("--challenger", metavar="VERSION", help="default: the newest version not in production")
            sp.add_argument("--share", type=float, default=0.1, help="challenger's share in split mode (default: %(default)s)")
            sp.add_argument("--shadow", action="store_true", help="score every row with both; serve the champion's")
            sp.add_argument("--experiment-id", help="default: CHAMPION-vs-CHALLENGER")
            sp.add_argument("--out", required=True, type=Path, metavar="PATH", help="scored CSV to write")
        else:
            sp.add_argument("--outcomes", required=True, type=Path, metavar="PATH", help="CSV with the id and label columns")
            sp.add_argument("--label-column", required=True, metavar="NAME", help="outcome column")
            sp.add_argument("--positive-class", metavar="VALUE", help="label value that means 1 (if not 0/1, yes/no, ...)")
            sp.add_argument("--experiment", help="which experiment of the log (needed if it holds several)")
            sp.add_argument("--promote-winner", action="store_true", help="promote the challenger if it wins (through the registry)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        if args.command == "score":
            return _score_cli(args)
        return _analyze_cli(args)
    except RetrainError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _score_cli(args) -> int:
    frame = read_csv(args.input)
    if args.id_column not in frame.columns:
        raise DataError(f"{args.input}: no id column {args.id_column!r}; columns are {', '.join(map(str, frame.columns[:12]))}.")
    test = ABTest(args.models_dir, args.production, args.champion, args.challenger, args.share, args.shadow, args.salt, args.experiment_id, args.log)
    out = test.predict(frame, frame[args.id_column].to_numpy())
    out = out.rename(columns={"id": args.id_column})
    tmp = args.out.with_name(args.out.name + ".partial")
    out.to_csv(tmp, index=False)
    tmp.replace(args.out)
    counts = out["variant"].value_counts().to_dict()
    summary = {
        "experiment": test.experiment_id,
        "rows": len(out),
        "variants": counts,
        "versions": test.versions,
        "out": str(args.out),
        "log": str(args.log),
    }
    print(
        json.dumps(summary, indent=2)
        if args.json
        else f"scored {len(out)} rows ({test.experiment_id}, {'shadow' if args.shadow else 'split'}): {counts} -> {args.out}"
    )
    return 0


def _analyze_cli(args) -> int:
    outcomes = read_csv(args.outcomes) if args.outcomes.is_file() else None
    if outcomes is None:
        raise DataError(f"{args.outcomes}: file not found; pass the outcomes CSV with --outcomes PATH.")
    report = analyze(args.log, outcomes, args.id_column, args.label_column, args.experiment, args.salt, args.positive_class, str(args.outcomes))
    if args.promote_winner:
        if report["recommendation"]["action"] == "promote challenger":
            from retrain_model import ModelRetrainer

            winner = report["versions"][CHALLENGER]
            event = ModelRetrainer(models_dir=args.models_dir, production_path=args.production).promote_to_production(
                winner, reason=f"A/B test {report['experiment']}: {report['recommendation']['reason']}"
            )
            report["promoted"] = event
        else:
            report["promoted"] = None
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print(format_report(report))
        if args.promote_winner:
            print(f"promoted {report['promoted']['to']} to production" if report["promoted"] else "nothing promoted: the challenger did not win")
    return 0


if __name__ == "__main__":
    sys.exit(main())
