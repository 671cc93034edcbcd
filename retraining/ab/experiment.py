"""A/B and shadow tests of the production model (champion) against a newer version (challenger).

Split mode: each entity is assigned to an arm by a salted hash of its id (sticky across
calls, processes and days); ``share`` is the challenger's share. Shadow mode: both models
score every row, only the champion's score is served; the comparison is paired. Every
prediction is appended to a JSON-lines log (:mod:`retraining.ab.predlog`).

Public for other modules (``ab_test.py``, a live server): :func:`assign_arms` (the one
assignment rule: scoring uses it, and so does :meth:`ABTest.assign`), :class:`ABTest`,
:func:`promote_winner`; the analysis is :mod:`retraining.ab.analysis`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from retraining.ab.predlog import CHALLENGER, CHAMPION, append_predictions, entity_hashes, fill_keys, lay_out_predictions
from retraining.errors import DataError, StateError, UsageError, VersionNotFoundError
from retraining.registry import Registry, parse_version

__all__ = ["CHALLENGER", "CHAMPION", "PARALLEL_ROWS", "ABTest", "assign_arms", "promote_winner"]

PARALLEL_ROWS = 4096  # below this, preparing the log on a second thread costs more than it saves


def assign_arms(hashes: np.ndarray, share: float) -> np.ndarray:
    """The arm of each entity: 1 (challenger) or 0 (champion), as int8.

    ``hashes`` are :func:`retraining.ab.predlog.entity_hashes` of the ids; the top 53 bits of
    each, read as a number in [0, 1), below ``share`` put the entity in the challenger arm.
    """
    u = (np.asarray(hashes, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return (u < share).astype(np.int8)


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
        self.versions = _arms(data, champion, challenger, self.registry.log_path)
        self.sha = {arm: self.registry.find(data, v)["sha256"] for arm, v in self.versions.items()}
        self.share, self.shadow = share, shadow
        self.experiment_id = experiment_id or f"{self.versions[CHAMPION]}-vs-{self.versions[CHALLENGER]}"
        self.salt = salt or self.experiment_id
        self.log_path = Path(log_path) if log_path else None
        self.durable = durable
        self._models: dict = {}
        self._book = None  # the arms' KeySpecs (retraining.ab.rowkeys.KeyBook), read at the first logged batch

    def model(self, arm: str):
        if arm not in self._models:
            from retraining.training import load_model

            entry = self.registry.find(self.registry.read_log(), self.versions[arm])
            self._models[arm] = load_model(self.registry.verify(entry), f"{arm} model {self.versions[arm]}")
        return self._models[arm]

    def assign(self, ids) -> np.ndarray:
        """``"champion"`` or ``"challenger"`` per id: sticky, and ``share`` of ids go to the challenger."""
        return np.where(assign_arms(entity_hashes(ids, self.salt), self.share) == 1, CHALLENGER, CHAMPION)

    def features(self, frame: pd.DataFrame, arm: str) -> tuple[pd.DataFrame, list[str]]:
        """The columns ``arm``'s model takes, and which of them are categorical."""
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

        return predict(self.model(arm), *self.features(frame, arm))

    def predict(self, frame: pd.DataFrame, ids, key_frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Score ``frame``; return id, variant, model_version, score (+ shadow columns); log it.

        ``key_frame``: the rows as the log's keys read them (a CSV's id column as written), if not ``frame``.

        While this thread turns the frame into a CatBoost Pool, a second one hashes the ids,
        assigns the arms and lays out the log lines; once the models have scored, only the
        scores are filled in and the lines appended (in shadow mode the served lines are
        written while the challenger scores). ``predict`` returns after every line is written.
        """
        ids = np.asarray(ids)
        n = len(frame)
        if len(ids) != n:
            raise UsageError(f"{len(ids)} ids for {n} rows.")
        keyed = self._keys_of(frame if key_frame is None else key_frame)  # each arm's ledger keys, while the models score
        prepared = _InThread(self._prepare, ids) if n >= PARALLEL_ROWS else _Done(self._prepare(ids))
        try:
            pool = self._pool(frame) if self._same_inputs() else None  # one Pool for both models; the arms are slices of it
        finally:
            codes, lines = prepared.result()
        lines = _Keyed(lines, codes, keyed, self.shadow) if lines is not None else None
        if self.shadow:
            return self._predict_shadow(frame, ids, pool, lines)
        return self._predict_split(frame, ids, pool, codes, lines)

    def _pool(self, frame: pd.DataFrame):
        from catboost import Pool

        from retraining.training import as_categoricals

        X, cats = self.features(frame, CHAMPION)
        return Pool(as_categoricals(X, cats), cat_features=cats)

    def _predict_shadow(self, frame: pd.DataFrame, ids: np.ndarray, pool, lines: list | None) -> pd.DataFrame:
        def score(arm: str) -> np.ndarray:
            return self.model(arm).predict_proba(pool)[:, 1] if pool is not None else self._score(frame, arm)

        n = len(frame)
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

    def _predict_split(self, frame: pd.DataFrame, ids: np.ndarray, pool, codes: np.ndarray, lines: list | None) -> pd.DataFrame:
        n = len(frame)
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
        """Arm codes (1 = challenger) and, with a log, its lines with the scores (and keys) left blank."""
        hashes = entity_hashes(ids, self.salt)
        codes = np.zeros(len(ids), np.int8) if self.shadow else assign_arms(hashes, self.share)
        return codes, self._layout(hashes, codes) if self.log_path is not None else None

    def _keys_of(self, frame: pd.DataFrame):
        """:meth:`row_keys` on a third thread (big batches), or now; None without a log."""
        if self.log_path is None:
            return None
        return _InThread(self.row_keys, frame) if len(frame) >= PARALLEL_ROWS else _Done(self.row_keys(frame))

    def row_keys(self, frame: pd.DataFrame) -> dict:
        """Each arm's ledger key of every row of ``frame`` (:func:`retraining.ab.rowkeys.frame_keys`), warning once when some have none."""
        from retraining.ab.rowkeys import KeyBook, frame_keys

        self._book = self._book or KeyBook(self.registry)
        keys, done = {}, {}
        for arm, version in self.versions.items():
            spec = self._book.spec(version)
            if spec.rule not in done:  # both versions usually key rows alike: hashed once
                done[spec.rule] = frame_keys(spec, frame)
            keys[arm] = done[spec.rule]
            self._book.warn_unkeyed(spec, frame.columns, keys[arm][1])
        return keys

    def _layout(self, hashes: np.ndarray, codes: np.ndarray, keys: dict | None = None) -> list:
        return lay_out_predictions(
            hashes, codes, experiment=self.experiment_id, share=self.share, versions=self.versions, shas=self.sha, shadow=self.shadow, keys=keys
        )

    def _append(self, lines, *scores: np.ndarray) -> None:
        if isinstance(lines, _Keyed):
            lines = lines.blocks()
        if lines is not None:
            append_predictions(self.log_path, lines, *scores, durable=self.durable)

    def log_predictions(self, hashes: np.ndarray, codes: np.ndarray, scores: np.ndarray, shadow: np.ndarray | None = None) -> None:
        """Append the lines of predictions made elsewhere (simulations, benchmarks) to this test's log."""
        if self.log_path is not None:
            self._append(self._layout(hashes, codes), *([scores] if shadow is None else [scores, shadow]))


def _arms(data: dict, champion: str | None, challenger: str | None, log_path: Path) -> dict[str, str]:
    """Champion (default: production) and challenger (default: the newest other version)."""
    champion = champion or data.get("production")
    if champion is None:
        raise StateError(f"no production version in {log_path}; run retrain_model.py first or pass --champion.")
    if challenger is None:
        others = [e["version"] for e in data["versions"] if e["version"] != champion]
        if not others:
            raise VersionNotFoundError(f"no challenger: {champion} is the only version. Retrain first, or pass --challenger.")
        challenger = max(others, key=parse_version)
    if challenger == champion:
        raise UsageError(f"champion and challenger are both {champion}; pick two different versions.")
    return {CHAMPION: champion, CHALLENGER: challenger}


def promote_winner(registry: Registry, version: str, reason: str) -> dict:
    """Make the winning ``version`` production through the registry's locked promotion; return the event."""
    with registry.session() as data:
        if data.get("production") == version:
            return {"event": "none", "from": version, "to": version, "reason": "already in production"}
        event = registry.promote(data, version, reason)
    return event.to_json() if hasattr(event, "to_json") else event


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


class _Keyed:
    """Laid-out blocks of lines whose ledger keys are written in once, when first appended (the keys come from another thread)."""

    def __init__(self, lines: list, codes: np.ndarray, keyed, shadow: bool, part: slice = slice(None), parent: _Keyed | None = None) -> None:
        self.lines, self.codes, self.keyed, self.shadow, self.part = lines, codes, keyed, shadow, part
        self.parent = parent or self
        self.filled = False

    def __getitem__(self, part: slice) -> _Keyed:
        return _Keyed(self.lines, self.codes, self.keyed, self.shadow, part, self.parent)

    def blocks(self) -> list:
        """This part's blocks, with every block's keys filled in (by the first call)."""
        parent = self.parent
        if not parent.filled:
            codes = [self.codes] if not self.shadow else [self.codes, np.ones_like(self.codes)]
            fill_keys(self.lines, self.keyed.result(), [[CHAMPION, CHALLENGER]] * len(codes), codes)
            parent.filled = True
        return self.lines[self.part]


class _Done:
    def __init__(self, out) -> None:
        self._out = out

    def result(self):
        return self._out
