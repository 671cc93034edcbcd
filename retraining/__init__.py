"""Building blocks behind ``retrain_model.py``, ``scheduler.py`` and ``ab_test.py``.

The modules are small and each holds one concern, for example:

- :mod:`retraining.errors`     the exception hierarchy and :class:`~retraining.errors.ExitCode`
- :mod:`retraining.fsutil`     atomic writes, sha256, fsync helpers
- :mod:`retraining.data`       reading and validating the data, features, the stable split
- :mod:`retraining.evaluation` holdout metrics, the fast DeLong test, the deploy rule
- :mod:`retraining.registry`   the version log, version files, backups, promotion, the lock
- :mod:`retraining.abtest`     A/B assignment and scoring; :mod:`retraining.predlog` its log
- :mod:`retraining.cli`        the command line of ``retrain_model.py``
- :mod:`retraining.cliutil`    what the three scripts share: the guarded main, logging setup

The library modules neither parse command lines nor configure logging; only
:mod:`retraining.cli` and :mod:`retraining.cliutil` do, for the scripts.
"""

__version__ = "0.1.0"  # recorded in every version's metadata ("retrain_model")
