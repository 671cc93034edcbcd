"""A/B and shadow tests: sticky assignment, the prediction log, the analysis and its statistics.

May import: the ground modules, ``data`` and ``guard`` (row keys and ledgers: the analysis
leaves out rows a version trained on). Imported by ``serving`` and ``ab_test.py``.

Modules: ``experiment`` (assign_arms, ABTest, promote_winner), ``predlog`` (the JSON-lines
log), ``logfiles`` (rotation, every file of a log),
``production`` (batch scoring as production), ``analysis`` (outcomes joined to the log), ``stats`` (paired and unpaired tests).
"""
