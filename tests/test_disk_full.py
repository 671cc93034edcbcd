"""A full disk, for real: a small tmpfs holds the project, a filler file leaves a few KB free.

Every run that meets the full disk must exit 8 (``ExitCode.NO_SPACE``) with one line
``error: no space left on DIR: X free, Y needed ...``, leave production whole, and a
retry must not pile up identical backups. Linux as root only (it mounts a tmpfs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from catboost import CatBoostClassifier
from helpers import make_frame, run_main, sha, write_csv

from retraining.cli import retrain as retrain_cli

FAST = ("--data", "data.csv", "--iterations", "10", "--threads", "1", "--lock-timeout", "5", "--no-report")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk, leave_kb: int) -> None:
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave_kb * 1024))


def test_a_full_disk_is_exit_8_one_line_production_whole_and_one_backup_per_change(small_disk):
    write_csv(small_disk / "data.csv", make_frame(300))
    assert run_main(retrain_cli.main, *FAST, "-q", cwd=small_disk).returncode == 0
    prod = small_disk / "catboost_model.cbm"
    first = sha(prod)
    assert first
    outcomes = {}
    for leave in (0, 4, 8, 16, 24, 32, 40, 48, 56):
        fill(small_disk, leave)
        ran = run_main(retrain_cli.main, *FAST, "-q", "--force", cwd=small_disk)
        outcomes[leave] = ran.returncode
        if ran.returncode == 0:
            break
        lines = [line for line in ran.stderr.splitlines() if line.strip() and " WARNING " not in line and not line.startswith("warning: cannot write")]
        assert ran.returncode == 8, ran.stderr
        assert len(lines) == 1 and lines[0].startswith(f"error: no space left on {small_disk}"), ran.stderr
        assert " free, " in lines[0] and "Traceback" not in ran.stderr and "Logging error" not in ran.stderr
        CatBoostClassifier().load_model(str(prod))  # production is a whole model after every failure
        log = json.loads((small_disk / "models" / "version_log.json").read_text())
        named = {e["version"]: e["sha256"] for e in log["versions"]}.get(log["production"])
        pending = (log.get("pending_promotion") or {}).get("sha256")
        assert sha(prod) in {named, pending}, leave  # the log's production, or the one its recorded intent names
        backups = [sha(p) for p in (small_disk / "models").glob("production_backup_*.cbm")]
        assert len(backups) == len(set(backups)), leave  # a retry reuses an identical backup
    assert 8 in outcomes.values(), outcomes
    (small_disk / "filler").unlink()
    ran = run_main(retrain_cli.main, *FAST, "-q", "--force", cwd=small_disk)
    assert ran.returncode == 0, ran.stderr
    backups = [sha(p) for p in (small_disk / "models").glob("production_backup_*.cbm")]
    assert len(backups) == len(set(backups)) and first in backups
    CatBoostClassifier().load_model(str(prod))
