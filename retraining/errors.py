"""One exception hierarchy for everything a user can get wrong or run into, and the exit codes.

::

    RetrainError                 base class; ``exit_code`` says how the CLI exits
    ├── UsageError               bad arguments (exit 2)
    ├── DataError                the data cannot be used as given (exit 2)
    │   └── SourceError          a database cannot be read: URL, login, query, no rows (exit 3)
    │       └── SourceUnreachableError  the server did not answer or is shutting down (exit 7)
    ├── VersionNotFoundError     a version that is not in the log / malformed (exit 2)
    ├── StateError               models folder or production file damaged (exit 3)
    ├── BusyError                another run or promotion holds the lock (exit 4)
    ├── TrainingError            CatBoost refused or failed to train (exit 5)
    ├── MirrorError              --mlflow-sync could not reach or write MLflow (exit 6)
    ├── NoSpaceError             the disk is full: nothing was changed, free space and run again (exit 8)
    └── TimedOutError            something did not finish in the time it was given (exit 124)

Every message says what is wrong, where (file, column, version) and what to do.
:class:`ExitCode` is the one list of exit codes: the scripts' ``--help`` epilogs are
generated from it and the table in ``docs/cli.md`` is tested against it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How ``retrain_model.py``, ``scheduler.py`` and ``ab_test.py`` exit."""

    OK = 0
    INTERNAL = 1
    BAD_INPUT = 2
    DAMAGED_STATE = 3
    BUSY = 4
    TRAINING_FAILED = 5
    MIRROR_FAILED = 6
    SOURCE_UNREACHABLE = 7
    NO_SPACE = 8
    TIMED_OUT = 124
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """One line for ``--help`` and the docs."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "success: deployed, kept for review, nothing to do, history shown, promoted, scored, analysed",
    ExitCode.INTERNAL: "unexpected internal error (run with -v for the traceback; it is also in the log file)",
    ExitCode.BAD_INPUT: "bad input: arguments, data file, unknown or malformed version; scheduler.py --status: no status file",
    ExitCode.DAMAGED_STATE: (
        "damaged state: corrupted version log or production model, changed version file; a database source that fails "
        "(bad URL, wrong password, failing query, no rows); scheduler.py --status: not running"
    ),
    ExitCode.BUSY: "busy: another run, promotion or scheduler holds the models folder's lock",
    ExitCode.TRAINING_FAILED: "CatBoost could not train (e.g. --task-type GPU without a GPU)",
    ExitCode.MIRROR_FAILED: "--mlflow-sync could not reach or write MLflow (a retrain never fails for MLflow)",
    ExitCode.SOURCE_UNREACHABLE: (
        "a database source did not answer (refused, timed out, shutting down, too many connections): "
        "a retry may succeed, and scheduler.py and the Airflow DAG retry it"
    ),
    ExitCode.NO_SPACE: "no space left on the disk of the models folder, production or logs: free space and run again (production and the log are unchanged)",
    ExitCode.TIMED_OUT: "timed out: a run killed after scheduler.py --job-timeout, or a lock or service that did not answer in time",
    ExitCode.INTERRUPTED: "interrupted (Ctrl+C)",
}


def exit_code_epilog(codes: tuple[ExitCode, ...] = tuple(ExitCode)) -> str:
    """The ``exit codes:`` block of a script's ``--help``."""
    return "exit codes:\n" + "".join(f"  {int(c):<3} {c.meaning}\n" for c in codes)


def exit_code_table() -> str:
    """The Markdown table of exit codes that ``docs/cli.md`` holds (tests/test_cli.py compares them)."""
    rows = ["| code | name | meaning |", "| ---: | --- | --- |"]
    rows += [f"| {int(c)} | `{c.name}` | {c.meaning} |" for c in ExitCode]
    return "\n".join(rows) + "\n"


class RetrainError(Exception):
    """Base class of every error this project raises on purpose."""

    exit_code = ExitCode.INTERNAL


class UsageError(RetrainError):
    """The arguments do not make sense together."""

    exit_code = ExitCode.BAD_INPUT


class DataError(RetrainError):
    """The training data cannot be used as given."""

    exit_code = ExitCode.BAD_INPUT


class SourceError(DataError):
    """A database could not be read: bad URL, refused login, failed query or no rows (exit 3)."""

    exit_code = ExitCode.DAMAGED_STATE


class SourceUnreachableError(SourceError):
    """The database server did not answer, or said to come back later (exit 7: worth a retry)."""

    exit_code = ExitCode.SOURCE_UNREACHABLE


class VersionNotFoundError(RetrainError):
    """A version name is malformed or not in the version log."""

    exit_code = ExitCode.BAD_INPUT


class StateError(RetrainError):
    """The models folder, the version log or the production model is damaged."""

    exit_code = ExitCode.DAMAGED_STATE


class BusyError(RetrainError):
    """Another retrain or promotion holds the models folder's lock."""

    exit_code = ExitCode.BUSY


class TrainingError(RetrainError):
    """CatBoost could not train a model (for example no GPU for ``--task-type GPU``)."""

    exit_code = ExitCode.TRAINING_FAILED


class MirrorError(RetrainError):
    """An explicit ``--mlflow-sync`` could not push to MLflow (a run never fails for this)."""

    exit_code = ExitCode.MIRROR_FAILED


class NoSpaceError(RetrainError):
    """A write failed because the disk (or the user's quota) is full; what was half-written is removed."""

    exit_code = ExitCode.NO_SPACE


class TimedOutError(RetrainError):
    """Something did not finish in the time it was given (a job, a lock on a log file)."""

    exit_code = ExitCode.TIMED_OUT
