"""Kill retrain_model.py (and --promote) at every rename and fsync, and at random moments.

strace's fault injection delivers SIGKILL when the run makes its K-th rename (or fsync),
before that call happens: every step of the write path is interrupted once. Timed kills
(seeded) land anywhere else, training included. After every kill, and after the next
normal run, the models folder must be consistent and the next run must succeed.
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

import pandas as pd
import pytest
from helpers import ROOT, make_frame, sha, snapshot, write_csv

STRACE = shutil.which("strace")
RUN = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", "15", "--threads", "1", "-q", "--lock-timeout", "5"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="strace and SIGKILL timing are Linux-specific")


def check(project: Path, after_recovery: bool) -> None:
    """The promises of the core, checked on disk."""
    from catboost import CatBoostClassifier

    models = project / "models"
    log = json.loads((models / "version_log.json").read_text())  # parses
    versions = all_versions(models)
    assert len({e["version"] for e in versions}) == len(versions)  # none listed twice
    prod = project / "catboost_model.cbm"
    CatBoostClassifier().load_model(str(prod))  # loads
    named = next(e for e in versions if e["version"] == log["production"])
    pending = log.get("pending_promotion")
    if after_recovery:
        assert pending is None
        assert sha(prod) == named["sha256"]
    else:  # killed between replacing production and recording it: the intent names the file
        assert sha(prod) in {named["sha256"], (pending or {}).get("sha256")}
    for entry in versions:
        assert sha(models / entry["file"]) == entry["sha256"], entry["version"]
    for backup in models.glob("production_backup_*.cbm"):
        CatBoostClassifier().load_model(str(backup))
    if after_recovery:
        assert not list(models.rglob("*.partial")) and not list(project.glob(".*.partial"))


def all_versions(models: Path) -> list[dict]:
    """Every version the log lists, the parts moved to models/history/ included, read independently."""
    log = json.loads((models / "version_log.json").read_text())
    return [e for name in log.get("archive", []) for e in json.loads((models / name).read_text())["versions"]] + log["versions"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_csv(tmp_path / "data.csv", make_frame(400))
    assert subprocess.run(RUN, cwd=tmp_path).returncode == 0  # v1.0.0 in production
    return tmp_path


def grow(project: Path, k: int) -> None:
    """New rows, so that the next run has work to do."""
    df = pd.read_csv(project / "data.csv")
    write_csv(project / "data.csv", pd.concat([df, make_frame(20, seed=100 + k, start_id=len(df))], ignore_index=True))


def count_calls(project: Path, argv: list[str]) -> dict[str, int]:
    out = project / "trace.txt"
    subprocess.run([STRACE, "-f", "-qq", "-o", str(out), "-e", "trace=rename,fsync", *argv], cwd=project, check=True)
    text = out.read_text()
    out.unlink()
    return {call: text.count(f"{call}(") for call in ("rename", "fsync")}


def kill_at(project: Path, argv: list[str], call: str, k: int) -> int:
    proc = subprocess.run([STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}", "-e", f"inject={call}:signal=KILL:when={k}", *argv], cwd=project)
    return proc.returncode


def recover_and_check(project: Path, argv: list[str]) -> None:
    check(project, after_recovery=False)
    nxt = subprocess.run([*argv, "--force"] if "--promote" not in argv else argv, cwd=project, capture_output=True, text=True)
    assert nxt.returncode == 0, nxt.stderr
    check(project, after_recovery=True)


@pytest.mark.skipif(STRACE is None, reason="strace is needed (Debian package strace); .ci/run installs it")
def test_kill_at_every_rename_and_fsync_of_a_retrain(project):
    # --force on unchanged data retrains the same model: a tie, so every run deploys and
    # makes the same calls in the same order
    before = snapshot(project, skip=("logs", "trace.txt"))
    calls = count_calls(project, [*RUN, "--force"])
    after = snapshot(project, skip=("logs", "trace.txt"))
    written = {name for name in after if before.get(name) != after[name]}  # every file the run added or replaced
    # each is written atomically: a temp file, fsynced, renamed into place (the log more than once)
    assert calls["rename"] >= len(written) and calls["fsync"] >= len(written), (calls, sorted(written))
    assert {"catboost_model.cbm", "models/version_log.json", "models/catboost_model_v1.1.0.cbm"} <= written
    for call, n in calls.items():
        for k in range(1, n + 1):
            code = kill_at(project, [*RUN, "--force"], call, k)
            assert code != 0, f"{call} #{k}: the run was not killed"
            recover_and_check(project, RUN)


@pytest.mark.skipif(STRACE is None, reason="strace is needed (Debian package strace); .ci/run installs it")
def test_kill_at_every_rename_and_fsync_of_a_promotion(project):
    grow(project, 0)
    assert subprocess.run([*RUN, "--force"], cwd=project).returncode == 0  # v1.1.0
    promote = [sys.executable, str(ROOT / "retrain_model.py"), "--promote", "v1.0.0", "-q"]
    back = [sys.executable, str(ROOT / "retrain_model.py"), "--promote", "v1.1.0", "-q"]
    calls = count_calls(project, promote)
    assert subprocess.run(back, cwd=project).returncode == 0
    for call, n in calls.items():
        for k in range(1, n + 1):
            assert kill_at(project, promote, call, k) != 0
            recover_and_check(project, promote)
            assert json.loads((project / "models" / "version_log.json").read_text())["production"] == "v1.0.0"
            assert subprocess.run(back, cwd=project).returncode == 0


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
        nxt = subprocess.run([*RUN, "--force"], cwd=project, capture_output=True, text=True)
        assert nxt.returncode == 0, nxt.stderr
        check(project, after_recovery=True)
        listed = [e["version"] for e in all_versions(models)]
        assert listed[: len(before)] == before and set(listed[len(before) :]) <= {"v1.1001.0", "v1.1002.0"}
        assert len(json.loads((models / "version_log.json").read_text())["versions"]) <= 502
    assert states == {"not yet", "unnamed file", "named"}  # killed before, between and after the two writes
