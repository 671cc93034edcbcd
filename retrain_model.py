"""Retrain the CatBoost model and deploy it only if it is at least as good.

Run it::

    python retrain_model.py                 # on Windows: py retrain_model.py
    python retrain_model.py --history       # every version, production marked
    python retrain_model.py --promote v1.0.0 --reason "rollback: v1.1.0 misbehaves"

Or use it from Python::

    from retrain_model import ModelRetrainer
    retrainer = ModelRetrainer()
    retrainer.print_version_history()
    retrainer.promote_to_production("v1.0.0")

One run: read the data -> stable holdout split -> data checks on the new rows -> train
CatBoost on the rest -> score the candidate and the production model (the champion) on
the same holdout, minus rows the champion trained on -> paired DeLong test -> save
``models/catboost_model_vX.Y.Z.cbm`` -> deploy to ``catboost_model.cbm`` if its ROC-AUC
is at least the champion's and no data check blocks it, backing up the old file ->
record everything in ``models/version_log.json``. The class lives in the library
(:mod:`retraining.retrainer`), the command line in :mod:`retraining.cli.retrain`; this
script is the user's entry point to both.
"""

from __future__ import annotations

import sys

from retraining import __version__
from retraining.cli.retrain import main
from retraining.records import Decision
from retraining.results import RunResult
from retraining.retrainer import DATA_CHECK_MODES, ModelRetrainer


def __getattr__(name: str):
    """``from retrain_model import compare_auc`` without importing numpy for --history."""
    if name == "compare_auc":
        from retraining.evaluation import compare_auc

        return compare_auc
    raise AttributeError(f"module 'retrain_model' has no attribute {name!r}")


__all__ = ["DATA_CHECK_MODES", "Decision", "ModelRetrainer", "RunResult", "__version__", "compare_auc", "main"]  # noqa: F822 - compare_auc comes from __getattr__

if __name__ == "__main__":
    sys.exit(main())
