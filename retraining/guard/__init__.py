"""What may block a deploy: ledgers of the rows each version saw, data checks, drift, findings.

May import: the ground modules, ``data`` and ``evaluation``. Imported by the run's steps,
``ab`` and ``report``.

Modules: ``findings`` (Finding, CheckSettings, CheckReport: no numpy), ``ledger`` (the
rows each version trained on; new, seen, re-sent rows), ``drift`` (profiles and PSI),
``checks`` (the data checks on the new rows), ``learned`` (checks that fit or score on
the rows: a leaked label, multivariate drift by a CatBoost classifier), ``outcome`` (checks
on both models' holdout scores after training: slices, calibration, an AUC jump), ``slide``
(the recent versions scored on tonight's holdout: the deploy rule's slow-slide guard).
"""
