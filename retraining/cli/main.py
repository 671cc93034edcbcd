"""What the three scripts share: the guarded main, the logging setup, the output flags.

``retrain_model.py``, ``scheduler.py`` and ``ab_test.py`` each parse their flags, set up
logging with :func:`setup_logging`, and hand a ``program`` (a function without error
handling of its own) to :func:`guarded_main`, which turns what it raises into one line
on stderr and an :class:`~retraining.errors.ExitCode`:

- a :class:`~retraining.errors.RetrainError`: ``error: <message>``, its ``exit_code``;
- Ctrl+C: 130; a ``TimeoutError`` that nothing translated: 124;
- anything else is a bug: ``internal error: ...`` and 1; the traceback goes to the log
  file, and to the console with ``-v``.

A ``on_failure`` hook sees every failure (the exit code and the line) after it has been
reported, e.g. to send a ``failed`` notification; a hook that raises is logged, never fatal.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from retraining.errors import ExitCode, RetrainError
from retraining.fsutil import NO_SPACE_ERRNOS, no_space_error

FailureHook = Callable[[ExitCode, str], None]
CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def add_output_arguments(parser: argparse.ArgumentParser, quiet: bool = True) -> None:
    """``-v/--verbose`` and (optionally) ``-q/--quiet``, which exclude each other, in a group named "output"."""
    group = parser.add_argument_group("output")
    loudness = group.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors")
    if quiet:
        loudness.add_argument("-q", "--quiet", action="store_true", help="warnings and the summary only")


def setup_logging(names: Iterable[str], verbose: bool = False, quiet: bool = False, log_file: Path | None = None) -> None:
    """Console on stderr (stdout stays for results) plus, with ``log_file``, a rotating file.

    Records with ``extra={"file_only": True}`` (tracebacks of reported errors) skip the console.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(level)
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT, "%H:%M:%S"))
        console.addFilter(lambda record: not getattr(record, "file_only", False))
        logger.addHandler(console)
        if log_file is not None:
            _add_file_handler(logger, log_file, verbose)


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """A log file that cannot be written (a full disk) is one warning line, then console only: never a traceback."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            exc = sys.exc_info()[1]
            print(f"warning: cannot write {self.baseFilename} ({exc}); logging to the console only", file=sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)


def _add_file_handler(logger: logging.Logger, log_file: Path, verbose: bool) -> None:
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = _QuietFileHandler(log_file, maxBytes=5_000_000, backupCount=5, encoding="utf-8", delay=True)
    except OSError as exc:
        print(f"warning: cannot write logs to {log_file.parent} ({exc}); logging to the console only", file=sys.stderr)
        return
    fh.setLevel(logging.DEBUG if verbose else logging.INFO)
    fh.setFormatter(logging.Formatter(FILE_FORMAT))
    logger.addHandler(fh)


def guarded_main(
    program: Callable[[], int],
    *,
    log: logging.Logger,
    verbose: bool = False,
    log_file: Path | None = None,
    interrupted: str = "interrupted",
    on_failure: FailureHook | None = None,
) -> int:
    """Run ``program()``; return its exit code, or the one for what it raised (see the module docstring)."""
    try:
        return int(program())
    except RetrainError as exc:
        code, line = ExitCode(exc.exit_code), f"error: {exc}"
        error: BaseException = exc
    except KeyboardInterrupt as exc:
        code, line, error = ExitCode.INTERRUPTED, f"error: {interrupted}", exc
    except TimeoutError as exc:  # what no layer below translated (e.g. a lock on a log file)
        code, line, error = ExitCode.TIMED_OUT, f"error: timed out: {exc or type(exc).__name__}", exc
    except Exception as exc:  # a bug: one line for the user, the traceback in the log file
        code, line, error = _unexpected(exc, log_file)
    report_error(line, error, log, verbose)
    if on_failure is not None:
        try:
            on_failure(code, line)
        except Exception as exc:  # a failing hook must not hide the error it reports
            log.warning("Could not report the failure (%s: %s).", type(exc).__name__, exc)
    return code


def _unexpected(exc: Exception, log_file: Path | None) -> tuple[ExitCode, str, BaseException]:
    """A full disk that no layer below translated (a library's own write) is exit 8; anything else is a bug (exit 1)."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        folder = Path(exc.filename).parent if exc.filename else Path.cwd()
        return ExitCode.NO_SPACE, f"error: {no_space_error(exc, folder, None)}", exc
    where = f"; it is also in {log_file}" if log_file else ""
    return ExitCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback{where})", exc


def report_error(line: str, error: BaseException, log: logging.Logger, verbose: bool) -> None:
    """One line on stderr for the user; the full story (traceback) in the log file, and on the console with -v."""
    if log.hasHandlers():  # never logging's last-resort handler: it would print the traceback
        log.error("%s", line, exc_info=error, extra={"file_only": True})
    if verbose:
        traceback.print_exception(type(error), error, error.__traceback__)
    print(line, file=sys.stderr)
