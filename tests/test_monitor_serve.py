"""The key scenario end to end: a worse version put in production by --promote, a real serve.py
answering real HTTP requests and logging them with the bake shadow, outcomes arriving, monitor.py
rolling back, and the server answering with the previous version again."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import test_serve
from helpers import make_frame, retrain_script, run_main, write_csv
from test_serve import own_predictions

from retraining.ab.logfiles import log_files
from retraining.monitoring.cli import main

pytestmark = pytest.mark.skipif(os.name == "nt", reason="serve.py's tests send SIGTERM (POSIX)")
serve = test_serve.serve


def logged(log: Path) -> list[dict]:
    return [json.loads(line) for f in log_files(log) for line in f.read_text().splitlines()]


def test_a_worse_promoted_version_is_rolled_back_and_the_server_answers_with_the_previous(tmp_path: Path, serve) -> None:
    project = tmp_path
    write_csv(project / "data.csv", make_frame(600))
    write_csv(project / "noise.csv", make_frame(600, seed=3, noise=True, start_id=50_000))
    for data, extra in (("data.csv", ()), ("noise.csv", ("--force",))):
        proc = retrain_script(project, "--iterations", "30", "--id-column", "customer_id", "--no-report", *extra, data=data)
        assert proc.returncode == 0, proc.stderr[-2000:]
    server = serve(project, "--id-column", "customer_id", "--log-flush-interval", "0.05")
    proc = retrain_script(project, "--promote", "v1.1.0", "--reason", "looked fine to me")
    assert proc.returncode == 0, proc.stderr[-2000:]
    server.wait_for(lambda h: h["version"] == "v1.1.0", "the promotion")

    live = make_frame(1200, seed=11, start_id=100_000)
    records = live.drop(columns=["target"]).to_dict("records")
    for i in range(0, len(records), 100):
        status, _, payload = server.post(records[i : i + 100])
        assert status == 200, payload
    log = project / "logs" / "predictions.jsonl"
    deadline = time.monotonic() + 60
    while sum(1 for x in logged(log) if not x["served"]) < len(records) and time.monotonic() < deadline:
        time.sleep(0.2)  # the bake shadow is scored off the request path
    assert sum(1 for x in logged(log) if not x["served"]) == len(records)
    write_csv(project / "outcomes.csv", live[["customer_id", "target"]])

    ran = run_main(main, "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--auto-rollback", "--json", cwd=project)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert [(a["action"], a["from"], a["to"]) for a in report["actions"]] == [("rollback", "v1.1.0", "v1.0.0")]
    assert report["bake"]["rows_with_outcome"] == len(records) and report["bake"]["p_worse"] < 0.05
    server.wait_for(lambda h: h["version"] == "v1.0.0", "the rollback's hot reload")
    status, _, payload = server.post(records[:5])
    assert status == 200 and payload["version"] == "v1.0.0" and np.allclose(payload["predictions"], own_predictions(project, "v1.0.0", records[:5]))
    again = run_main(main, "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--auto-rollback", "--json", cwd=project)
    assert json.loads(again.stdout)["actions"] == []
    assert server.stop() == 0
