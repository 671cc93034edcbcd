"""The Airflow DAG's exit codes are ExitCode's (it runs in Airflow's own environment, so it
cannot import the package: its table is read from the file and checked here)."""

from __future__ import annotations

import ast

from helpers import ROOT

from retraining.errors import ExitCode

DAG = ROOT / "deploy" / "airflow" / "retrain_dag.py"


def _literal(name: str):
    tree = ast.parse(DAG.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name for t in n.targets))
    return ast.literal_eval(node.value)


def test_every_exit_code_the_dag_names_is_an_exit_code_of_the_scripts_with_its_meaning():
    codes = _literal("EXIT_CODES")
    assert set(codes) == {
        int(c) for c in ExitCode if c not in (ExitCode.OK, ExitCode.INTERNAL, ExitCode.TIMED_OUT, ExitCode.INTERRUPTED, ExitCode.MIRROR_FAILED)
    }
    assert codes[int(ExitCode.NO_SPACE)].startswith("no space left") and codes[int(ExitCode.BUSY)] == "busy"


def test_the_dag_retries_only_what_a_retry_can_change():
    assert _literal("NOT_WORTH_A_RETRY") == {int(ExitCode.BAD_INPUT), int(ExitCode.DAMAGED_STATE)}


def test_the_monitor_dag_maps_every_exit_code_of_monitor_py_as_the_retrain_dag_does():
    from retraining.monitoring.cli import EXIT_CODES as MONITOR_CODES

    codes = _literal("EXIT_CODES")
    named = {int(c) for c in MONITOR_CODES if c not in (ExitCode.OK, ExitCode.INTERNAL, ExitCode.TIMED_OUT, ExitCode.INTERRUPTED)}
    assert named and named <= set(codes)
    assert codes[int(ExitCode.BAD_INPUT)] == "bad input" and int(ExitCode.BAD_INPUT) in _literal("NOT_WORTH_A_RETRY")
    tree = ast.parse(DAG.read_text(encoding="utf-8"))
    run_monitor = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_monitor")
    calls = [c for c in ast.walk(run_monitor) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "run_script"]
    assert len(calls) == 1 and ast.literal_eval(calls[0].args[0]) == "monitor.py"  # the one mapping: run_script's
