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
