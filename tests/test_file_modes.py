"""Every file the tool writes gets the mode a plain open() gives under the process umask (issue #11.5)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from helpers import ROOT, make_frame, write_csv

from retraining.fsutil import atomic_write_json, current_umask, plain_file_mode

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_a_real_run_writes_files_readable_as_the_umask_allows(tmp_path, umask, expected):
    write_csv(tmp_path / "data.csv", make_frame(400))
    args = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--id-column", "customer_id", "--iterations", "20", "--threads", "1"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr
    models = tmp_path / "models"
    written = [
        tmp_path / "catboost_model.cbm",
        next(models.glob("catboost_model_v*.cbm")),
        models / "version_log.json",
        next(models.rglob("*.html")),
    ]
    for path in written:
        assert _mode(path) == expected, f"{path.relative_to(tmp_path)} has mode {oct(_mode(path))}, want {oct(expected)} under umask {oct(umask)}"


def test_atomic_writes_follow_the_umask_of_this_process(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert plain_file_mode() == 0o640
        atomic_write_json(tmp_path / "x.json", {"a": 1})
        with open(tmp_path / "plain.txt", "w") as fh:  # what the tool must match
            fh.write("x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.json") == _mode(tmp_path / "plain.txt") == 0o640
    assert current_umask() == old  # reading it changed nothing
