"""The service recipes in deploy/, checked with the real tools: systemd-analyze, flock, cron syntax."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, make_frame, write_csv

DEPLOY = ROOT / "deploy"
INSTALL = "/opt/catboost-retrain"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="Linux service recipes")


def installed_copy(tmp_path: Path) -> Path:
    """A stand-in for /opt/catboost-retrain: the scripts, the package and a small dataset."""
    home = tmp_path / "catboost-retrain"
    home.mkdir()
    for name in ("retrain_model.py", "scheduler.py", "retraining"):
        (home / name).symlink_to(ROOT / name)
    write_csv(home / "featured_dataset.csv", make_frame(400))
    return home


def localise(text: str, home: Path) -> str:
    python = sys.executable
    return text.replace(f"{INSTALL}/.venv/bin/python", python).replace(INSTALL, str(home))


def test_systemd_units_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is needed (Debian package systemd); .ci/run installs it"
    home = installed_copy(tmp_path)
    units = tmp_path / "units"
    units.mkdir()
    for unit in (DEPLOY / "systemd").iterdir():
        text = localise(unit.read_text(), home).replace("User=retrain", "User=root")
        (units / unit.name).write_text(text)
    proc = subprocess.run([tool, "verify", "--man=no", *sorted(str(p) for p in units.iterdir())], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "catboost-retrain" not in proc.stderr, proc.stderr  # no warnings about our units
    timer = (DEPLOY / "systemd" / "catboost-retrain.timer").read_text()
    assert "OnCalendar=*-*-* 03:00:00" in timer and "Persistent=true" in timer
    assert "Restart=on-failure" in (DEPLOY / "systemd" / "catboost-retrain-scheduler.service").read_text()
    assert "--once" in (DEPLOY / "systemd" / "catboost-retrain.service").read_text()


def cron_command(home: Path) -> tuple[str, str]:
    lines = [ln for ln in (DEPLOY / "cron" / "crontab").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    return " ".join(fields[:5]), localise(fields[5], home)


def test_cron_line_runs_once_under_flock(tmp_path):
    home = installed_copy(tmp_path)
    when, command = cron_command(home)
    assert when == "0 3 * * *"
    assert re.search(r"flock -n \S+ .*scheduler\.py --once", command)
    proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (home / "logs" / "cron.log").read_text()
    assert (home / "catboost_model.cbm").is_file()
    assert "v1.0.0 deployed" in (home / "logs" / "cron.log").read_text()


def test_cron_line_skips_while_the_previous_run_holds_the_lock(tmp_path):
    home = installed_copy(tmp_path)
    _, command = cron_command(home)
    lock_path = re.search(r"flock -n (\S+)", command)[1]
    with open(lock_path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1  # flock -n: busy, nothing ran
    assert not (home / "catboost_model.cbm").exists()


def test_windows_recipes_use_the_venvs_interpreter_and_the_right_stop():
    task = (DEPLOY / "windows" / "install-task.cmd").read_text()
    assert "/SC DAILY /ST 03:00" in task and ".venv\\Scripts\\python.exe scheduler.py --once" in task
    background = (DEPLOY / "windows" / "run-scheduler-in-background.cmd").read_text()
    assert ".venv\\Scripts\\pythonw.exe scheduler.py" in background and "taskkill /F /PID" in background
    for text in (task, background):  # never `py`/`pyw`, which run whatever Python the launcher finds, not the venv's
        commands = [line for line in text.splitlines() if not line.strip().lower().startswith(("rem ", "echo "))]
        assert not any(re.search(r"(^|[\s\"])pyw?(\.exe)?\s", line) for line in commands), commands
        assert 'if not exist ".venv\\Scripts\\' in text and "exit /b 2" in text
