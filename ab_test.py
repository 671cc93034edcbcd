"""A/B and shadow tests of the production model (champion) against a newer version (challenger).

    python ab_test.py score input.csv --id-column ID [--challenger vX.Y.Z] [--share 0.2] [--shadow] \\
        --out scored.csv --log predictions.jsonl
    python ab_test.py analyze --log predictions.jsonl --outcomes outcomes.csv --id-column ID \\
        --label-column LABEL [--promote-winner]

A thin command line over :mod:`retraining.ab.experiment` (assignment and scoring),
:mod:`retraining.ab.analysis` (the analysis) and :mod:`retraining.ab.predlog` (the log).
Split mode: each entity is assigned to an arm by a salted hash of its id (sticky across
calls, processes and days); ``--share`` is the challenger's share. Shadow mode: both
models score every row, only the champion's score is served; the comparison is paired.
``analyze`` joins the log with outcomes, leaves out rows either model trained on, and
recommends: promote the challenger, keep the champion, or keep collecting.
"""

from __future__ import annotations

import sys

from retraining.ab.cli import CHALLENGER, CHAMPION, ABTest, analyze, assign_arms, entity_hashes, main, read_prediction_log

__all__ = ["CHALLENGER", "CHAMPION", "ABTest", "analyze", "assign_arms", "entity_hashes", "main", "read_prediction_log"]

if __name__ == "__main__":
    sys.exit(main())
