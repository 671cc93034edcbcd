"""retrain_model.py as a user runs it: real subprocesses, real files, exit codes, messages."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import ROOT, make_frame, run_script, sha, snapshot, write_csv

FAST = ["--data", "data.csv", "--iterations", "20", "--threads", "2"]


def test_shipped_dataset_exactly_as_a_user_runs_it(tmp_path):
    """`python retrain_model.py` with no flags, in a folder holding featured_dataset.csv."""
    shutil.copy(ROOT / "featured_dataset.csv", tmp_path / "featured_dataset.csv")
    proc = run_script("retrain_model.py", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("v1.0.0: deployed -> production (v1.0.0)")
    assert "catboost: 499:" in proc.stderr  # CatBoost's progress, every 100 iterations
    assert (tmp_path / "catboost_model.cbm").is_file()
    assert (tmp_path / "models" / "catboost_model_v1.0.0.cbm").is_file()
    log = json.loads((tmp_path / "models" / "version_log.json").read_text())
    entry = log["versions"][0]
    assert entry["params"]["iterations"] == 500 and entry["dataset"]["rows"] == 45211
    assert 0.70 < entry["metrics"]["candidate"]["roc_auc"] < 0.85  # bank marketing without `duration`
    assert "duration" not in entry["features"]
    # nothing else in the user's folder: no catboost_info/, only what the README lists
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catboost_model.cbm", "featured_dataset.csv", "logs", "models"]
    assert (tmp_path / "logs" / "retrain.log").read_text().count("deployed") >= 1
    # the second nightly run on the same data does nothing
    again = run_script("retrain_model.py", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith("Nothing to do")


def test_history_json_promote_and_quiet(project):
    assert run_script("retrain_model.py", *FAST, "-q", cwd=project).returncode == 0
    proc = run_script("retrain_model.py", *FAST, "--force", "--json", "-q", cwd=project)
    assert proc.returncode == 0 and proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result["version"] == "v1.1.0" and result["status"] == "deployed"
    hist = run_script("retrain_model.py", "--history", cwd=project)
    assert hist.returncode == 0 and re.search(r"^\*\s+v1\.1\.0", hist.stdout, re.M)
    promo = run_script("retrain_model.py", "--promote", "v1.0.0", cwd=project)
    assert promo.returncode == 0 and "rollback: v1.1.0 -> v1.0.0 is now production" in promo.stdout
    data = json.loads(run_script("retrain_model.py", "--history", "--json", cwd=project).stdout)
    assert data["production"] == "v1.0.0"
    assert sha(project / "catboost_model.cbm") == data["versions"][0]["sha256"]


def test_library_usage_from_the_readme(project):
    code = (
        "from retrain_model import ModelRetrainer\n"
        "retrainer = ModelRetrainer(data_path='data.csv', iterations=20)\n"
        "retrainer.retrain(); retrainer.retrain(force=True)\n"
        "retrainer.print_version_history()\n"
        "retrainer.promote_to_production('v1.0.0')\n"
        "print('production is', retrainer.production_version())\n"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "production is v1.0.0" in proc.stdout and "v1.1.0" in proc.stdout


def _bad(project, name):
    """Write a bad input for case ``name``; return extra CLI args."""
    data = project / "data.csv"
    if name == "missing file":
        data.unlink()
    elif name == "empty file":
        data.write_bytes(b"")
    elif name == "not a csv":
        data.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00binary")
    elif name == "target missing":
        write_csv(data, make_frame().drop(columns="target"))
    elif name == "one class":
        write_csv(data, make_frame().assign(target=0))
    elif name == "three values":
        write_csv(data, make_frame().assign(target=lambda d: d.index % 3))
    elif name == "missing target values":
        write_csv(data, make_frame().assign(target=lambda d: d.target.astype(float).where(d.index % 50 != 0)))
    elif name == "too few rows":
        write_csv(data, make_frame(25))
    elif name == "corrupted log":
        (project / "models" / "version_log.json").write_text("{ not json")
    elif name == "corrupted production":
        (project / "catboost_model.cbm").write_bytes(b"garbage")
    elif name == "unknown version":
        return ["--promote", "v7.7.7"]
    elif name == "path as version":
        return ["--promote", "../catboost_model"]
    elif name == "bad flag value":
        return ["--iterations", "0"]
    return ["--force"]


CASES = {
    "missing file": (2, "data.csv: file not found"),
    "empty file": (2, "data.csv: file is empty"),
    "not a csv": (2, "not a text CSV"),
    "target missing": (2, "no target column 'target'"),
    "one class": (2, "only one class"),
    "three values": (2, "3 distinct values"),
    "missing target values": (2, "is empty in 12 rows"),
    "too few rows": (2, "too few rows for a fair holdout"),
    "corrupted log": (3, "version_log.json is corrupted"),
    "corrupted production": (3, "catboost_model.cbm: the production model cannot be loaded"),
    "unknown version": (2, "v7.7.7 is not in"),
    "path as version": (2, "is not a version name"),
    "bad flag value": (2, "iterations must be at least 1"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_one_line_exit_code_nothing_changed(project, name):
    assert run_script("retrain_model.py", *FAST, "-q", cwd=project).returncode == 0
    args = _bad(project, name)
    before = snapshot(project)
    proc = run_script("retrain_model.py", *FAST, *args, cwd=project)
    code, message = CASES[name]
    assert proc.returncode == code, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(project) == before
    assert "Traceback" in (project / "logs" / "retrain.log").read_text()  # the details are kept


def test_busy_models_folder_exits_4(project):
    from filelock import FileLock

    (project / "models").mkdir()
    with FileLock(str(project / "models" / ".retrain.lock")):
        proc = run_script("retrain_model.py", *FAST, "--lock-timeout", "0.5", cwd=project)
    assert proc.returncode == 4 and "is busy" in proc.stderr
    assert not (project / "catboost_model.cbm").exists()


def test_verbose_shows_traceback(project):
    (project / "data.csv").unlink()
    proc = run_script("retrain_model.py", *FAST, "-v", cwd=project)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "error: " in proc.stderr


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]+|-[vq])\b")


@pytest.mark.parametrize(
    ("script", "start", "end"),
    [("retrain_model.py", "## Flags of `retrain_model.py`", "### Exit codes"), ("scheduler.py", "## `scheduler.py`", "### Running it")],
)
def test_readme_and_help_agree_on_every_flag(script, start, end):
    """The docs cannot drift: each flag the README shows exists, and each real flag is documented."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(FLAG.findall(_section(readme, start, end))) - {"--help"}
    proc = run_script(script, "--help", cwd=ROOT)
    real = set(FLAG.findall(proc.stdout)) - {"--help"}
    passed_through = {"--data", "--min-auc"} if script == "scheduler.py" else set()
    assert proc.returncode == 0 and len(real) >= 10
    assert documented - passed_through <= real, documented - real
    assert real <= set(FLAG.findall(readme)), real - set(FLAG.findall(readme))
