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
import hashlib
import json
import logging
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from retraining import abstats
from retraining.argparse_util import OneLineParser
from retraining.data import MISSING_CATEGORY, DataError, encode_target, read_csv
from retraining.errors import RetrainError, StateError, UsageError, VersionNotFoundError
from retraining.evaluation import compare_auc
from retraining.registry import Registry, parse_version

log = logging.getLogger("ab_test")
CHAMPION, CHALLENGER = "champion", "challenger"
LOG_FIELDS = ("request_id", "time", "experiment", "share", "entity", "variant", "model_version", "model_sha256", "score", "served")


def entity_hashes(ids, salt: str) -> np.ndarray:
    """Salted 64-bit hashes of entity ids (by their text: 42 and "42" are the same entity)."""
    key = hashlib.blake2b(salt.encode("utf-8"), digest_size=8).hexdigest()  # siphash takes a 16-byte key
    values = pd.Series(ids)
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    if values.isna().any():
        raise UsageError(f"{int(values.isna().sum())} rows have no entity id; every row needs one.")
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    return pd.util.hash_array(text, hash_key=key, categorize=False)


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
        X = frame[names]
        fix = [c for c in cats if not pd.api.types.is_string_dtype(X[c]) or X[c].hasnans]
        if fix:
            X = X.copy()
            for c in fix:
                X[c] = X[c].astype(object).where(X[c].notna(), MISSING_CATEGORY).astype(str)
        return X, cats

    def _same_inputs(self) -> bool:
        a, b = self.model(CHAMPION), self.model(CHALLENGER)
        return list(a.feature_names_) == list(b.feature_names_) and list(a.get_cat_feature_indices()) == list(b.get_cat_feature_indices())

    def _score(self, frame: pd.DataFrame, arm: str) -> np.ndarray:
        from catboost import Pool

        X, cats = self._features(frame, arm)
        return self.model(arm).predict_proba(Pool(X, cat_features=cats))[:, 1]

    def predict(self, frame: pd.DataFrame, ids) -> pd.DataFrame:
        """Score ``frame``; return id, variant, model_version, score (+ shadow columns); log it."""
        ids = np.asarray(ids)
        if len(ids) != len(frame):
            raise UsageError(f"{len(ids)} ids for {len(frame)} rows.")
        hashes = entity_hashes(ids, self.salt)
        if self.shadow:
            if self._same_inputs():  # build the Pool once, score it with both models
                from catboost import Pool

                X, cats = self._features(frame, CHAMPION)
                pool = Pool(X, cat_features=cats)
                served, shadow = (self.model(arm).predict_proba(pool)[:, 1] for arm in (CHAMPION, CHALLENGER))
            else:
                served, shadow = self._score(frame, CHAMPION), self._score(frame, CHALLENGER)
            variant = np.full(len(frame), CHAMPION)
            out = pd.DataFrame({"id": ids, "variant": variant, "model_version": self.versions[CHAMPION], "score": served})
            out["shadow_version"] = self.versions[CHALLENGER]
            out["shadow_score"] = shadow
            self._log(hashes, np.zeros(len(frame), np.int8), served, shadow)
            return out
        is_ch = (hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53) < self.share
        scores = np.empty(len(frame))
        if self._same_inputs():  # one Pool for both arms, sliced in C++: no copy of the frame
            from catboost import Pool

            X, cats = self._features(frame, CHAMPION)
            pool = Pool(X, cat_features=cats)
            for arm, mask in ((CHAMPION, ~is_ch), (CHALLENGER, is_ch)):
                if mask.any():
                    scores[mask] = self.model(arm).predict_proba(pool.slice(np.flatnonzero(mask)))[:, 1]
        else:
            for arm, mask in ((CHAMPION, ~is_ch), (CHALLENGER, is_ch)):
                if mask.any():
                    scores[mask] = self._score(frame[mask] if not mask.all() else frame, arm)
        codes = is_ch.astype(np.int8)
        out = pd.DataFrame(
            {
                "id": ids,
                "variant": pd.Categorical.from_codes(codes, [CHAMPION, CHALLENGER]),  # categoricals: no 100k strings to build
                "model_version": pd.Categorical.from_codes(codes, [self.versions[CHAMPION], self.versions[CHALLENGER]]),
                "score": scores,
            }
        )
        self._log(hashes, is_ch.astype(np.int8), scores, None)
        return out

    # -- the prediction log ---------------------------------------------------------------
    def _log(self, hashes: np.ndarray, codes: np.ndarray, scores: np.ndarray, shadow: np.ndarray | None) -> None:
        if self.log_path is None:
            return
        prefix = uuid.uuid4().hex[:16]
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        served_arms = [(CHAMPION, True), (CHALLENGER, True)]
        head = (prefix, now, self.experiment_id, None if self.shadow else self.share)
        blobs = [_lines(head, hashes, codes, scores, self.versions, self.sha, served_arms)]
        if shadow is not None:
            blobs.append(_lines(head, hashes, np.ones_like(codes), shadow, self.versions, self.sha, [(CHAMPION, True), (CHALLENGER, False)]))
        append_atomically(self.log_path, blobs, durable=self.durable)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width lower-case hex of unsigned integers (n x width uint8), from their bytes."""
    nbytes = width // 2
    raw = values.astype(f">u{nbytes}").view(np.uint8).reshape(-1, nbytes)  # big-endian bytes
    out = np.empty((len(values), width), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _decimal(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width decimal digits of non-negative integers below 10**9 (n x width uint8)."""
    v = values.astype(np.int32)
    out = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = v % 10 + 48
        v //= 10
    return out


def _lines(head, hashes, codes, scores, versions, shas, served) -> np.ndarray:
    """One JSON line per prediction, built as fixed-width rows with numpy (no Python loop).

    JSON allows spaces between tokens, so values of different lengths are padded after
    their closing quote and every line of a batch has the same width.
    """
    prefix, now, experiment, share = head
    n = len(hashes)
    width = 8 if n <= 1 << 32 else 16
    pad = max(len(json.dumps(versions[a])) for a in versions) + 1
    templates = []
    for arm, is_served in served:
        t = (
            f'{{"request_id":"{prefix}-{"#" * width}","time":"{now}","experiment":{json.dumps(experiment)},"share":{json.dumps(share)},'
            f'"entity":"{"$" * 16}","variant":{json.dumps(arm):<13},"model_version":{json.dumps(versions[arm]):<{pad}},'
            f'"model_sha256":"{shas[arm]}","score":{"%" * 11},"served":{"true " if is_served else "false"}}}\n'
        )
        templates.append(np.frombuffer(t.encode("utf-8"), dtype=np.uint8))
    rows = np.stack(templates)[codes]
    text = templates[0].tobytes().decode("utf-8")
    i, e, s = text.index("#"), text.index("$"), text.index("%")
    rows[:, i : i + width] = _hex(np.arange(n, dtype=np.uint32 if width == 8 else np.uint64), width)  # request index, hex
    rows[:, e : e + 16] = _hex(hashes, 16)
    fixed = np.rint(np.clip(scores, 0, 1) * 1e9).astype(np.int64)
    rows[:, s] = 48 + (fixed // 1_000_000_000)
    rows[:, s + 1] = ord(".")
    rows[:, s + 2 : s + 11] = _decimal(fixed % 1_000_000_000, 9)
    return rows


def append_atomically(path: Path, blobs: list, durable: bool = False) -> None:
    """Append whole batches under a lock, so concurrent writers never interleave lines.

    With ``durable`` the batch is fsynced before the lock is released (slower; survives a
    power cut, not only a crash of this process).
    """
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=60):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            for blob in blobs:
                view = memoryview(np.ascontiguousarray(blob)).cast("B")
                while view:
                    view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)


def read_prediction_log(path: Path) -> pd.DataFrame:
    """The prediction log as a frame; a clear error naming the first bad line."""
    import pyarrow as pa
    import pyarrow.json as pj

    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: no prediction log there (missing or empty); score something with `ab_test.py score --log {path}` first.")
    try:
        table = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 24))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path}: {_first_bad_line(path) or 'not a JSON-lines prediction log'} ({str(exc).splitlines()[0]}).") from exc
    missing = [f for f in LOG_FIELDS if f not in table.column_names]
    if missing:
        raise DataError(f"{path}: not a prediction log of ab_test.py (fields missing: {', '.join(missing)}).")
    entity = _parse_hex(table.column("entity").combine_chunks(), path)
    frame = table.select([f for f in LOG_FIELDS if f != "entity"]).to_pandas()
    frame["entity"] = entity
    return frame


def _parse_hex(column, path: Path) -> np.ndarray:
    """16-character hex strings (an Arrow array) to uint64, vectorised over the raw buffer."""
    import pyarrow as pa

    if column.null_count or not pa.types.is_string(column.type):
        raise DataError(f"{path}: some lines have no entity hash, or it is not text.")
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    if len(column) and not (np.diff(offsets) == 16).all():
        raise DataError(f"{path}: an entity hash is not 16 hex characters (line {int(np.argmax(np.diff(offsets) != 16)) + 1}).")
    raw = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 16)
    lookup = np.full(256, 255, dtype=np.uint8)
    lookup[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
    nibbles = lookup[raw]
    if (nibbles == 255).any():
        raise DataError(f"{path}: an entity hash holds characters that are not lower-case hex.")
    value = np.zeros(len(raw), dtype=np.uint64)
    for k in range(16):
        value = (value << np.uint64(4)) | nibbles[:, k].astype(np.uint64)
    return value


def _first_bad_line(path: Path) -> str | None:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                json.loads(raw)
            except ValueError:
                return f"line {number} is not valid JSON: {raw[:60]!r}"
    return None


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
