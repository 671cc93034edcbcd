"""More kills (the harness is tests/test_crash_safety.py): every rename and fsync of a
promotion, timed kills anywhere in a run, every rename of a run that archives the log.

A module of its own so that pytest-xdist runs it beside the retrain's kill loop.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT
from test_crash_safety import RUN, STRACE, all_versions, check, count_calls, first_version, grow, kill_at, recover_and_check, run_here

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="strace and SIGKILL timing are Linux-specific")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return first_version(tmp_path)


@pytest.mark.skipif(STRACE is None, reason="strace is needed (Debian package strace); .ci/run installs it")
def test_kill_at_every_rename_and_fsync_of_a_promotion(project):
    grow(project, 0)
    assert run_here(project, [*RUN, "--force"]).returncode == 0  # v1.1.0, deployed or kept for review
    promote = [sys.executable, str(ROOT / "retrain_model.py"), "--promote", "v1.0.0", "-q"]
    back = [sys.executable, str(ROOT / "retrain_model.py"), "--promote", "v1.1.0", "-q"]
    assert run_here(project, back).returncode == 0  # v1.1.0 in production either way, so promoting v1.0.0 changes it
    calls = count_calls(project, promote)
    # a promotion writes, each atomically: the log's intent, the backup of production, production, the log's record
    # (a promotion of the version already in production writes nothing: this test once killed nothing at all)
    assert calls["rename"] >= 4 and calls["fsync"] >= 4, calls
    assert json.loads((project / "models" / "version_log.json").read_text())["production"] == "v1.0.0"
    assert run_here(project, back).returncode == 0
    for call, n in calls.items():
        for k in range(1, n + 1):
            assert kill_at(project, promote, call, k) != 0
            recover_and_check(project, promote)
            assert json.loads((project / "models" / "version_log.json").read_text())["production"] == "v1.0.0"
            assert run_here(project, back).returncode == 0


def test_timed_kills_anywhere(project):
    rng = random.Random(20261128)
    grow(project, 0)
    started = time.perf_counter()
    assert subprocess.run([*RUN, "--force"], cwd=project).returncode == 0
    duration = time.perf_counter() - started
    for trial in range(12):
        grow(project, trial + 1)
        delay = rng.uniform(0.2, 0.8 * duration)
        for _ in range(4):  # a run that finished before the kill is no kill: run again and kill it sooner (load varies)
            proc = subprocess.Popen([*RUN, "--force"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            if proc.wait() == -signal.SIGKILL:
                break
            delay /= 2
        assert proc.returncode == -signal.SIGKILL, f"trial {trial}: every run ended before the kill landed"  # killed mid-run
        recover_and_check(project, RUN)


@pytest.mark.skipif(STRACE is None, reason="strace is needed (Debian package strace); .ci/run installs it")
def test_kill_at_every_rename_of_a_run_that_archives_the_log(project):
    """A run that moves 1,000 old versions to models/history/ (issue #7's 10,000-version log)."""
    models = project / "models"
    log = json.loads((models / "version_log.json").read_text())
    first = log["versions"][0]
    log["versions"] += [{**first, "version": f"v1.{i}.0"} for i in range(1, 1001)]  # all share v1.0.0's file
    (models / "version_log.json").write_text(json.dumps(log))
    before = [e["version"] for e in log["versions"]]
    saved = project / "saved"
    shutil.copytree(models, saved / "models")
    shutil.copy(project / "catboost_model.cbm", saved)

    def restore() -> None:
        shutil.rmtree(models)
        shutil.copytree(saved / "models", models)
        shutil.copy(saved / "catboost_model.cbm", project)

    renames = count_calls(project, [*RUN, "--force"])["rename"]
    assert json.loads((models / "version_log.json").read_text())["archive"] == ["history/version_log_0001.json"]
    states = set()
    for k in range(1, renames + 1):
        restore()
        assert kill_at(project, [*RUN, "--force"], "rename", k) != 0
        check(project, after_recovery=False)
        assert [e["version"] for e in all_versions(models)][: len(before)] == before  # nothing lost, order kept
        named = bool(json.loads((models / "version_log.json").read_text()).get("archive"))
        states.add("named" if named else "unnamed file" if (models / "history" / "version_log_0001.json").exists() else "not yet")
        nxt = run_here(project, [*RUN, "--force"])
        assert nxt.returncode == 0, nxt.stderr
        check(project, after_recovery=True)
        listed = [e["version"] for e in all_versions(models)]
        assert listed[: len(before)] == before and set(listed[len(before) :]) <= {"v1.1001.0", "v1.1002.0"}
        assert len(json.loads((models / "version_log.json").read_text())["versions"]) <= 502
    assert states == {"not yet", "unnamed file", "named"}  # killed before, between and after the two writes
