"""Many processes on one models folder at once: nothing lost, nothing duplicated, no crash."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import ROOT, make_frame, write_csv

RETRAIN = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", "15", "--threads", "1", "-q", "--no-report"]


def test_four_retrains_and_two_promotions_at_once(tmp_path):
    write_csv(tmp_path / "data.csv", make_frame(400))
    assert subprocess.run(RETRAIN, cwd=tmp_path).returncode == 0  # v1.0.0 to promote to
    procs = [subprocess.Popen([*RETRAIN, "--force", "--seed", str(i)], cwd=tmp_path, stderr=subprocess.PIPE, text=True) for i in range(4)]
    promote = [sys.executable, str(ROOT / "retrain_model.py"), "--promote", "v1.0.0", "-q"]
    procs += [subprocess.Popen(promote, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.returncode, err) for p in procs for _, err in [p.communicate(timeout=300)]]
    for code, err in results:
        assert code in (0, 4), err  # done, or a clear "busy" after the lock timeout
        assert "Traceback" not in err
        if code == 4:
            assert "is busy" in err
    finished = sum(1 for code, _ in results[:4] if code == 0)
    log = json.loads((tmp_path / "models" / "version_log.json").read_text())
    versions = [e["version"] for e in log["versions"]]
    assert len(versions) == len(set(versions)) == 1 + finished
    assert log["production"] in versions and log["pending_promotion"] is None
    deploys = [e for e in log["events"] if e["event"] == "deploy"]
    assert len(deploys) == 1 + sum(1 for e in log["versions"][1:] if e["decision"] == "deployed")
    for entry in log["versions"]:
        assert (tmp_path / "models" / entry["file"]).is_file()


def test_two_schedulers_at_once_one_runs_one_is_refused(tmp_path):
    write_csv(tmp_path / "data.csv", make_frame(400))
    cmd = [sys.executable, str(ROOT / "scheduler.py"), "--once", "--", "--data", "data.csv", "--iterations", "15", "-q", "--no-report"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.returncode, err) for p in procs for _, err in [p.communicate(timeout=300)])
    assert [code for code, _ in results] == [0, 4], results
    assert "another scheduler" in results[1][1] and "Traceback" not in results[1][1]
    log = json.loads((tmp_path / "models" / "version_log.json").read_text())
    assert [e["version"] for e in log["versions"]] == ["v1.0.0"]
