"""Kill retrain_model.py (and --promote) at every rename and fsync, and at random moments.

strace's fault injection delivers SIGKILL when the run makes its K-th rename (or fsync),
before that call happens: every step of the write path is interrupted once. Timed kills
(seeded) land anywhere else, training included. After every kill, and after the next
normal run, the models folder must be consistent and the next run must succeed.

The killed runs are processes (the kill is the subject); the runs that set a project up
and the next run after a kill, which recovers, call ``main(argv)`` in this process: the same
code and flags, without an interpreter's start each time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, make_frame, run_main, sha, snapshot, write_csv

from retraining.cli.retrain import main

STRACE = shutil.which("strace")
RUN = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", "15", "--threads", "1", "-q", "--lock-timeout", "5"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="strace and SIGKILL timing are Linux-specific")


def run_here(project: Path, argv: list[str]):
    """``argv`` (a python command line of retrain_model.py) as ``main(argv)`` in this process."""
    assert argv[:2] == [sys.executable, str(ROOT / "retrain_model.py")], argv
    return run_main(main, *argv[2:], cwd=project)


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


def first_version(tmp_path: Path) -> Path:
    """A project with 400 rows and v1.0.0 in production."""
    write_csv(tmp_path / "data.csv", make_frame(400))
    assert run_here(tmp_path, RUN).returncode == 0
    return tmp_path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return first_version(tmp_path)


def grow(project: Path, k: int) -> None:
    """New rows, so that the next run has work to do."""
    df = pd.read_csv(project / "data.csv")
    write_csv(project / "data.csv", pd.concat([df, make_frame(20, seed=100 + k, start_id=len(df))], ignore_index=True))


def count_calls(project: Path, argv: list[str]) -> dict[str, int]:
    out = project / "trace.txt"
    # --seccomp-bpf: the run stops only at the traced calls (a fraction of the time of a full trace)
    subprocess.run([STRACE, "-f", "-qq", "--seccomp-bpf", "-o", str(out), "-e", "trace=rename,fsync", *argv], cwd=project, check=True)
    text = out.read_text()
    out.unlink()
    return {call: text.count(f"{call}(") for call in ("rename", "fsync")}


def kill_at(project: Path, argv: list[str], call: str, k: int) -> int:
    """SIGKILL the run at the entry of its K-th ``call``, before the call happens; strace's exit code.

    strace holds the K-th call at its entry (``delay_enter``, far longer than a run), so its
    trace shows that call begun and not finished; then the process that made it is killed.
    With --seccomp-bpf the run stops in the tracer only at ``call``, not at every system call.
    (strace's ``signal=KILL`` injection would do both in one step, but strace 6.1 does not
    deliver it with --seccomp-bpf, and without that flag a traced run costs half again its CPU.)
    """
    trace = project / f"kill-{call}-{k}.txt"
    inject = f"inject={call}:delay_enter=120000000:when={k}"  # 120 s
    argv = [STRACE, "-f", "-qq", "--seccomp-bpf", "-o", str(trace), "-e", f"trace={call}", "-e", inject, *argv]
    proc = subprocess.Popen(argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            text = trace.read_text() if trace.exists() else ""
            calls = [line for line in text.split("\n") if f" {call}(" in line]
            if len(calls) >= k and " = " not in calls[k - 1]:  # the K-th call, begun and held at its entry (no result yet)
                pid = int(calls[k - 1].split()[0])
                os.kill(pid, signal.SIGKILL)
                proc.kill()  # strace sleeps out its delay otherwise
                proc.wait(timeout=60)
                gone(pid)
                return -signal.SIGKILL
            time.sleep(0.02)
        return proc.wait(timeout=60)  # the run ended before its K-th call: not killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        trace.unlink(missing_ok=True)


def gone(pid: int) -> None:
    """Wait until the killed process has left the system (its parent, strace, is gone; init reaps it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} is still there 30 s after SIGKILL")


def recover_and_check(project: Path, argv: list[str]) -> None:
    check(project, after_recovery=False)
    nxt = run_here(project, [*argv, "--force"] if "--promote" not in argv else argv)
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
