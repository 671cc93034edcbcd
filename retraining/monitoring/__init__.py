"""After the deploy: the production prediction log joined to outcomes as they arrive.

Realized and label-free estimated ROC-AUC per version and per day, score drift, the
``decay`` test against the version's holdout AUC, the bake comparison of a new deploy with
the version it replaced (paired DeLong on the same live rows) and the automatic rollback
through the registry; the monitor's own state under ``models/monitoring/`` and its HTML page.

May import: the ground modules (registry, records, errors, fsutil, evaluation, notify),
``sources``, ``data``, ``guard`` (findings, drift) and ``ab`` (the prediction log's
format and statistics). Imported by ``monitor.py`` (through its own ``cli`` module, the
only module here that imports ``cli/``) and by the scheduler's command line.

Modules: ``settings`` (thresholds), ``stats`` (AUC with CI, the decay test, CBPE, PSI),
``logs`` (incremental reading of the log files), ``store`` (the state on disk),
``ids`` (outcome ids deduplicated, hashed and looked up at C speed),
``analysis`` (the join and the per-version summaries), ``bake`` (deploy vs previous,
rollback), ``page`` (the HTML page), ``monitor`` (one run), ``cli``.
"""
