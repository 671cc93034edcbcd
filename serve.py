"""Serve the production model over HTTP; pick up every deploy and rollback without a restart.

    python serve.py                                   # 127.0.0.1:8000, models/ and catboost_model.cbm
    python serve.py --host 0.0.0.0 --port 8080 --workers 4
    python serve.py --challenger v1.3.0 --share 0.1 --id-column customer_id    # live A/B test
    python serve.py --challenger v1.3.0 --shadow --id-column customer_id       # shadow test

POST /predict (or /invocations) with JSON records or MLflow's dataframe_split /
dataframe_records payloads answers the positive-class probabilities and the version that
scored them. The service polls the production file every --reload-interval seconds (and
checks at once on SIGHUP), verifies its sha256 against models/version_log.json and swaps
the new model in without dropping a request. SIGTERM finishes the requests in flight,
flushes the prediction log and exits 0. See docs/serving.md.

Needs ``pip install -r requirements-serve.txt`` (uvicorn, httptools, prometheus-client).
"""

from __future__ import annotations

import sys

from retraining.serving.cli import build_parser, config_from_args, main

__all__ = ["build_parser", "config_from_args", "main"]

if __name__ == "__main__":
    sys.exit(main())
