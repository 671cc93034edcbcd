"""Building blocks behind ``retrain_model.py`` and ``scheduler.py``.

The modules are small and each holds one concern:

- :mod:`retraining.errors`     the exception hierarchy and exit codes
- :mod:`retraining.fsutil`     atomic writes, sha256, fsync helpers
- :mod:`retraining.data`       reading and validating the CSV, features, the stable split
- :mod:`retraining.evaluation` holdout metrics, the fast DeLong test, the deploy rule
- :mod:`retraining.registry`   the version log, version files, backups, promotion, the lock

Nothing here parses command lines or configures logging; the scripts do that.
"""
