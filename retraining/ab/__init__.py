"""A/B and shadow tests: sticky assignment, the prediction log, the analysis and its statistics.

May import: the ground modules, ``data`` and ``guard`` (row keys and ledgers: the analysis
leaves out rows a version trained on). Imported by ``serving`` and ``ab_test.py``.

Modules: ``experiment`` (assign_arms, ABTest, promote_winner), ``predlog`` (the JSON-lines
log), ``logfiles`` (rotation, every file of a log),
``rowkeys`` (each logged row's ledger key) and ``quickkeys`` (the same keys for a few JSON rows,
without a frame: serve.py's log thread), ``production`` (batch scoring as production),
``analysis`` (outcomes joined to the log), ``stats`` (paired and unpaired tests).
"""
