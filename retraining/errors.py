"""One exception hierarchy for everything a user can get wrong or run into.

::

    RetrainError                 base class; ``exit_code`` says how the CLI exits
    ├── UsageError               bad arguments (exit 2)
    ├── DataError                the CSV cannot be used as given (exit 2)
    ├── VersionNotFoundError     a version that is not in the log / malformed (exit 2)
    ├── StateError               models folder or production file damaged (exit 3)
    ├── BusyError                another run or promotion holds the lock (exit 4)
    ├── TrainingError            CatBoost refused or failed to train (exit 5)
    └── MirrorError              --mlflow-sync could not reach or write MLflow (exit 6)

Every message says what is wrong, where (file, column, version) and what to do.
"""

from __future__ import annotations


class RetrainError(Exception):
    """Base class of every error this project raises on purpose."""

    exit_code = 1


class UsageError(RetrainError):
    """The arguments do not make sense together."""

    exit_code = 2


class DataError(RetrainError):
    """The training data cannot be used as given."""

    exit_code = 2


class VersionNotFoundError(RetrainError):
    """A version name is malformed or not in the version log."""

    exit_code = 2


class StateError(RetrainError):
    """The models folder, the version log or the production model is damaged."""

    exit_code = 3


class BusyError(RetrainError):
    """Another retrain or promotion holds the models folder's lock."""

    exit_code = 4


class TrainingError(RetrainError):
    """CatBoost could not train a model (for example no GPU for ``--task-type GPU``)."""

    exit_code = 5


class MirrorError(RetrainError):
    """An explicit ``--mlflow-sync`` could not push to MLflow (a run never fails for this)."""

    exit_code = 6


EXIT_OK = 0
EXIT_INTERNAL = 1
