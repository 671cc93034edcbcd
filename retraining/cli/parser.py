"""An ArgumentParser whose usage errors are one line, like every other error here."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from retraining.errors import ExitCode


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(ExitCode.BAD_INPUT)


def nonblank(value: str) -> str:
    """An argparse ``type`` for a flag that names something: an empty or blank value is a usage error.

    ``--promote "$VERSION"`` with ``$VERSION`` unset must not fall through to the default action
    (a retrain); the parser reports ``argument --promote: empty value ...`` and exits 2.
    """
    if not value.strip():
        raise argparse.ArgumentTypeError(f"empty value {value!r} (an unset shell variable?); give a value or leave the flag out")
    return value
