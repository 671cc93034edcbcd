"""retrain_model.py as a user runs it: real subprocesses, real files, exit codes, messages."""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
from helpers import ROOT, make_frame, run_main, sha, snapshot, write_csv

from retraining.ab import cli as ab_cli
from retraining.cli import retrain as retrain_cli
from retraining.monitoring import cli as monitoring_cli
from retraining.scheduling import cli as scheduling_cli

MAINS = {"retrain_model.py": retrain_cli.main, "scheduler.py": scheduling_cli.main, "ab_test.py": ab_cli.main, "monitor.py": monitoring_cli.main}


def run(script: str, *argv: str, cwd):
    """A script's ``main(argv)`` in this process (the scripts are one-line wrappers; the process
    boundary itself is tested by the shipped-dataset test here and by tests/test_packaging.py)."""
    return run_main(MAINS[script], *argv, cwd=cwd)


FAST = ["--data", "data.csv", "--iterations", "20", "--threads", "2"]


def test_history_json_promote_and_quiet(project):
    assert run("retrain_model.py", *FAST, "-q", cwd=project).returncode == 0
    proc = run("retrain_model.py", *FAST, "--force", "--json", "-q", cwd=project)
    assert proc.returncode == 0 and proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result["version"] == "v1.1.0" and result["status"] == "deployed"
    hist = run("retrain_model.py", "--history", cwd=project)
    assert hist.returncode == 0 and re.search(r"^\*\s+v1\.1\.0", hist.stdout, re.M)
    promo = run("retrain_model.py", "--promote", "v1.0.0", cwd=project)
    assert promo.returncode == 0 and "rollback: v1.1.0 -> v1.0.0 is now production" in promo.stdout
    data = json.loads(run("retrain_model.py", "--history", "--json", cwd=project).stdout)
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One project with v1.0.0 in production, trained once; each case works on its own copy."""
    folder = tmp_path_factory.mktemp("trained")
    write_csv(folder / "data.csv", make_frame())
    assert run_main(retrain_cli.main, *FAST, "-q", cwd=folder).returncode == 0
    return folder


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_one_line_exit_code_nothing_changed(trained, tmp_path, name):
    """In-process ``main(argv)``: the message, the exit code, nothing changed, the details in the log file."""
    project = tmp_path / "project"
    shutil.copytree(trained, project)
    args = _bad(project, name)
    before = snapshot(project)
    proc = run_main(retrain_cli.main, *FAST, *args, cwd=project)
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
        proc = run("retrain_model.py", *FAST, "--lock-timeout", "0.5", cwd=project)
    assert proc.returncode == 4 and "is busy" in proc.stderr
    assert not (project / "catboost_model.cbm").exists()


def test_verbose_shows_traceback(project):
    (project / "data.csv").unlink()
    proc = run("retrain_model.py", *FAST, "-v", cwd=project)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "error: " in proc.stderr


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]+|-[vq])\b")


@pytest.mark.parametrize(
    ("commands", "start", "end"),
    [
        ([["retrain_model.py"]], "## `retrain_model.py`", "## `scheduler.py`"),
        ([["scheduler.py"]], "## `scheduler.py`", "## `ab_test.py`"),
        ([["ab_test.py", "score"], ["ab_test.py", "analyze"]], "## `ab_test.py`", "## Exit codes"),
        ([["monitor.py"]], "## `monitor.py`", "## From Python"),
    ],
)
def test_cli_reference_and_help_agree_on_every_flag(commands, start, end):
    """The docs cannot drift: each flag docs/cli.md shows for a script exists, and each real flag is documented there."""
    documented = set(FLAG.findall(_section((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), start, end))) - {"--help"}
    real: set[str] = set()
    for command in commands:
        proc = run(*command, "--help", cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        real |= set(FLAG.findall(proc.stdout.split("\nexit codes:")[0])) - {"--help"}  # the epilog names other scripts' flags
    passed_through = {"--data", "--min-auc"} if commands[0][0] == "scheduler.py" else set()
    assert len(real) >= 10
    assert documented - passed_through <= real, documented - real
    assert real <= documented, real - documented


def test_exit_code_table_in_the_docs_matches_ExitCode():
    """docs/cli.md's table and the --help epilogs come from one enum; the docs cannot drift from it."""
    from retraining.errors import ExitCode

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = _section(text, "## Exit codes", "\n## ") if "\n## " in text[text.index("## Exit codes") + 1 :] else text[text.index("## Exit codes") :]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`?([A-Z_]+)`?\s*\|\s*(.+?)\s*\|\s*$", section, re.M)
    assert [(int(code), name, meaning) for code, name, meaning in rows] == [(int(c), c.name, c.meaning) for c in ExitCode]


@pytest.mark.parametrize("script", [["retrain_model.py"], ["scheduler.py"], ["ab_test.py", "score"], ["ab_test.py", "analyze"], ["monitor.py"]])
def test_help_lists_the_exit_codes(script):
    from retraining.errors import ExitCode

    proc = run(*script, "--help", cwd=ROOT)
    assert proc.returncode == 0 and "exit codes:" in proc.stdout
    listed = {int(m) for m in re.findall(r"^  (\d+) +\S", proc.stdout.split("exit codes:")[1], re.M)}
    assert {0, 1, 2, 130, 124} <= listed <= {int(c) for c in ExitCode}


def test_guarded_main_turns_each_failure_into_one_line_and_its_code(capsys, tmp_path):
    import logging

    from retraining.cli.main import guarded_main
    from retraining.errors import BusyError, ExitCode

    failures = []

    def run(exc: BaseException | None, verbose: bool = False) -> int:
        def program() -> int:
            if exc is not None:
                raise exc
            return 0

        return guarded_main(program, log=logging.getLogger("test_cli"), verbose=verbose, log_file=tmp_path / "x.log", on_failure=lambda *a: failures.append(a))

    cases = [
        (BusyError("models is busy"), ExitCode.BUSY, "error: models is busy"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "error: interrupted"),
        (TimeoutError("no answer in 5 s"), ExitCode.TIMED_OUT, "error: timed out: no answer in 5 s"),
        (ZeroDivisionError("division by zero"), ExitCode.INTERNAL, "internal error: ZeroDivisionError: division by zero (run with -v"),
    ]
    for exc, code, line in cases:
        assert run(exc) == code
        err = capsys.readouterr().err
        assert err.startswith(line) and len(err.splitlines()) == 1 and "Traceback" not in err
        assert failures.pop() == (code, err.strip())
    assert run(None) == 0 and not failures and capsys.readouterr().err == ""
    assert run(ValueError("boom"), verbose=True) == ExitCode.INTERNAL and "Traceback" in capsys.readouterr().err

    def broken_hook(code, line):
        raise RuntimeError("hook failed")

    assert guarded_main(lambda: 1 / 0, log=logging.getLogger("test_cli"), on_failure=broken_hook) == ExitCode.INTERNAL


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT POSIX-style")
def test_ctrl_c_exits_130_and_changes_nothing(project):
    """Ctrl+C while waiting for the models folder's lock: one line, exit 130, nothing on disk changed."""
    from filelock import FileLock
    from helpers import interrupt_after

    (project / "models").mkdir()
    with FileLock(str(project / "models" / ".retrain.lock")):
        before = snapshot(project)
        code, out, err = interrupt_after("retrain_model.py", *FAST, "--lock-timeout", "120", cwd=project, line="Loaded")  # next: the lock
    assert code == 130 and out == ""
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]]
    assert err.strip().splitlines()[-1].startswith("error: interrupted") and "Traceback" not in err
    assert snapshot(project) == before


def test_reason_is_recorded_and_needs_promote(project):
    assert run("retrain_model.py", *FAST, "-q", cwd=project).returncode == 0
    assert run("retrain_model.py", *FAST, "-q", "--force", cwd=project).returncode == 0
    promo = run("retrain_model.py", "--promote", "v1.0.0", "--reason", "v1.1.0 misbehaves", cwd=project)
    assert promo.returncode == 0, promo.stderr
    data = json.loads(run("retrain_model.py", "--history", "--json", cwd=project).stdout)
    assert data["events"][-1]["reason"] == "v1.1.0 misbehaves"
    lone = run("retrain_model.py", "--reason", "why", cwd=project)
    assert lone.returncode == 2 and lone.stderr.startswith("error: --reason goes with --promote")
    both = run("retrain_model.py", "--history", "--promote", "v1.0.0", cwd=project)
    assert both.returncode == 2 and "not allowed with" in both.stderr


EMPTY_ACTIONS = [
    (retrain_cli.main, ["--data", "data.csv", "--promote", ""]),
    (retrain_cli.main, ["--data", "data.csv", "--promote", "  "]),
    (retrain_cli.main, ["--data", "data.csv", "--promote="]),
    (retrain_cli.main, ["--data", "data.csv", "--report", ""]),
    (retrain_cli.main, ["--data", "data.csv", "--report", "\t"]),
    (retrain_cli.main, ["--data", "data.csv", "--promote", "v1.0.0", "--reason", ""]),
    (ab_cli.main, ["analyze", "--id-column", "customer_id", "--log", "p.jsonl", "--outcomes", "data.csv", "--label-column", "target", "--experiment", ""]),
    (ab_cli.main, ["analyze", "--id-column", "", "--log", "p.jsonl", "--outcomes", "data.csv", "--label-column", "target"]),
    (ab_cli.main, ["score", "data.csv", "--id-column", "customer_id", "--log", "p.jsonl", "--out", "s.csv", "--champion", " "]),
    (ab_cli.main, ["score", "data.csv", "--id-column", "customer_id", "--log", "p.jsonl", "--out", "s.csv", "--challenger", ""]),
    (scheduling_cli.main, ["--once", "--timezone", "", "--", "--data", "data.csv"]),
    (scheduling_cli.main, ["--once", "--", "--data", "data.csv", "--promote", ""]),
]


@pytest.mark.parametrize("main, argv", EMPTY_ACTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_an_empty_action_value_is_exit_2_and_never_a_retrain(project, main, argv):
    """`--promote "$VERSION"` with $VERSION unset must not fall through to a retrain and deploy."""
    before = snapshot(project)
    ran = run_main(main, *argv, cwd=project)
    assert ran.returncode == 2, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "empty value" in lines[0], ran.stderr
    assert snapshot(project) == before  # no model, no models/ folder, nothing written
    assert not (project / "models").exists() and not (project / "catboost_model.cbm").exists()
