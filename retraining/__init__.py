"""The library behind ``retrain_model.py``, ``scheduler.py``, ``serve.py`` and ``ab_test.py``.

Ground modules sit flat here and import no room; rooms are subpackages, one concern each
(docs/architecture.md draws the house and what each room may import):

- :mod:`retraining.errors`      the exception hierarchy and :class:`~retraining.errors.ExitCode`
- :mod:`retraining.records`     typed records that cross rooms (VersionEntry, Event, Decision)
- :mod:`retraining.fsutil`      atomic writes, sha256, fsync helpers
- :mod:`retraining.registry`    the version log, version files, backups, promotion, the lock
- :mod:`retraining.training`    CatBoost fit, predict, load
- :mod:`retraining.evaluation`  holdout metrics, the fast DeLong test
- :mod:`retraining.rules`       the deploy rule
- :mod:`retraining.notify`      notifications through Apprise
- :mod:`retraining.mlflow_sync` the MLflow mirror
- :mod:`retraining.results`     RunResult and the records the steps pass on
- :mod:`retraining.run`         the steps of one run
- :mod:`retraining.retrainer`   ModelRetrainer: the settings and the story of one run

Rooms: ``sources``, ``data``, ``guard``, ``report``, ``ab``, ``serving``, ``scheduling``,
``cli``. Only :mod:`retraining.cli` (and a room's own ``cli`` module) parses command
lines or configures logging; the library never imports a script.
"""

__version__ = "0.1.0"  # recorded in every version's metadata ("retrain_model")
