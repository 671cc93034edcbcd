"""Every production prediction the monitor has read: the kept parts and this run's new rows.

A run needs two things of them. The sums per version and day (:mod:`.aggregates`): kept
beside the parts and merged with the new rows' sums, so old rows are not reread; computed
from the parts once when the state has none (format 1) or when a version's holdout deciles
changed. And the outcome of every row (outcomes arrive for old predictions too): the join
reads only the ``entity`` and ``experiment`` columns of the parts, then the other columns of
the rows that have an outcome, in log order.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from retraining.monitoring import aggregates, analysis
from retraining.monitoring.aggregates import Aggregates, stack, union
from retraining.monitoring.store import State, Store

log = logging.getLogger(__name__)
LABELLED = ["model_version", "previous_version", "score", "previous_score", "day"]
SUMMED = ["model_version", "day", "score", "previous_version"]


class Kept:
    """The kept parts of ``state`` followed by ``new`` (this run's compact rows)."""

    def __init__(self, store: Store, state: State, new: pd.DataFrame) -> None:
        self.store, self.state, self.new = store, state, new
        self.cache: dict | None = None  # this run's join, for the next run (Store.save)

    def frames(self, columns: list[str]):
        """Each part's ``columns``, oldest first, then the new rows'."""
        for name in self.state.parts:
            yield self.store.part(name, columns)
        yield self.new[columns]

    def sums(self, edges) -> Aggregates:
        """The sums over every row; ``edges[version]`` gives a version's PSI edges (None without holdout scores)."""
        kept = self.store.aggregates(self.state)
        if kept is not None and not kept.edges_agree({v: edges[v] for v in kept.versions()}):
            log.warning("%s: a version's holdout scores changed since the sums were kept; computing them again from the kept predictions.", self.store.folder)
            kept = None
        if kept is None:
            kept = Aggregates()
            for name in self.state.parts:
                kept = kept.merge(aggregates.of_frame(self.store.part(name, SUMMED), edges))
        return kept.merge(aggregates.of_frame(self.new, edges))

    def join(self, outcomes: analysis.Outcomes | None) -> tuple[analysis.Joined, pd.DataFrame, list[str]]:
        """The join's counts, the rows with an outcome (``LABELLED`` columns and ``y``, in log order) and the notes.

        When the outcomes are those of the last run (same fingerprint), the kept parts' outcomes
        come from its join (:meth:`Store.joined`) and only the new rows are joined.
        """
        if outcomes is None:
            return analysis.Joined(pd.DataFrame(), {}, []), stack([self.new[LABELLED].iloc[:0].assign(y=np.int8(-1))]), []
        sizes = [self.store.rows(name) for name in self.state.parts] + [len(self.new)]
        experiment = union([self.new["experiment"]])
        last = self.store.joined(self.state)
        fp = outcomes.fingerprint(last)
        salts = {analysis.production_salt(e) or outcomes.salt or e for e in experiment.categories}
        covers = last is not None and len(last["y"]) == sum(sizes[:-1])  # the last join is of every kept row
        if fp is not None and covers and last["fingerprint"] == fp and salts <= set(last["hashes"]):
            labels, counts, notes = pd.DataFrame({"y": last["label_y"]}), last["counts"], last["notes"]
            known = {"hashes": last["hashes"], "matched": last["matched"], "rows": len(last["y"])}
            joined = analysis.join(self.new["entity"].to_numpy(), _codes(experiment), labels, counts, outcomes.salt, outcomes.where, known)
            y = np.concatenate([last["y"], joined.y])
        else:
            labels, counts, notes = outcomes.labels()
            joined, known = self._join_anew(labels, counts, outcomes, last if covers and "salt" in last and last["salt"] == outcomes.salt else None)
            y = joined.y
        if fp is not None:
            self.cache = {"fingerprint": fp, "y": y, "matched": joined.matched, "hashes": known["hashes"], "label_y": labels["y"].to_numpy()}
            self.cache.update(counts=counts, notes=notes, source=outcomes.source, salt=outcomes.salt)
        ends = np.cumsum(sizes)
        labelled = []
        for name, end, size in zip([*self.state.parts, None], ends, sizes, strict=True):
            hit = np.flatnonzero(y[end - size : end] >= 0)
            frame = self.store.part(name, LABELLED, hit) if name is not None else self.new[LABELLED].iloc[hit].reset_index(drop=True)
            labelled.append(frame.assign(y=y[end - size : end][hit]))
        return joined, stack(labelled), notes

    def _join_anew(self, labels: pd.DataFrame, counts: dict, outcomes: analysis.Outcomes, last: dict | None) -> tuple[analysis.Joined, dict]:
        """Every row joined to new labels: the kept rows from ``last`` (their join with the last labels) when it serves, then the new rows."""
        keys = list(self.frames(["entity", "experiment"]))
        again = None
        if last is not None and len(keys) > 1:
            entity = np.concatenate([k["entity"].to_numpy() for k in keys[:-1]])
            again = analysis.rejoin(entity, _codes(union([k["experiment"] for k in keys[:-1]])), labels, outcomes.salt, last)
        if again is None:
            entity = np.concatenate([k["entity"].to_numpy() for k in keys])
            known = {}
            return analysis.join(entity, _codes(union([k["experiment"] for k in keys])), labels, counts, outcomes.salt, outcomes.where, known), known
        y, matched, hashes = again
        known = {"hashes": hashes, "matched": matched, "rows": len(y)}
        joined = analysis.join(self.new["entity"].to_numpy(), _codes(union([self.new["experiment"]])), labels, counts, outcomes.salt, outcomes.where, known)
        joined.y = np.concatenate([y, joined.y])
        return joined, known


def _codes(cat: pd.Categorical) -> tuple[np.ndarray, list[str]]:
    return np.asarray(cat.codes), [str(c) for c in cat.categories]
