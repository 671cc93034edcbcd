"""Watch the production model on real outcomes: realized and estimated AUC, decay, drift, rollback.

    python monitor.py --outcomes outcomes.csv --id-column ID --label-column LABEL [--log predictions.jsonl] [--json]
    python monitor.py --history

A thin command line over :mod:`retraining.monitoring` (docs/monitoring.md).
"""

from __future__ import annotations

import sys

from retraining.monitoring.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
