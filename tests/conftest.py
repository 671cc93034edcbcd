"""Shared fixtures: real CSV files under tmp_path, real CatBoost, real subprocesses (helpers in helpers.py)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from helpers import ROOT, make_frame, write_csv


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working folder with a small dataset at data.csv."""
    write_csv(tmp_path / "data.csv", make_frame())
    return tmp_path


@pytest.fixture(autouse=True)
def environment_restored():
    """A test that changes os.environ (MLflow's set_tracking_uri does) must not leak it into later tests' subprocesses."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def repository_stays_clean():
    """No test may leave files in the repository's top folder (mlflow.db once slipped in)."""
    allowed = {".pytest_cache", ".hypothesis", "test-artifacts", "__pycache__", ".venv-airflow", ".venv-ci-airflow"}
    before = set(os.listdir(ROOT))
    yield
    stray = set(os.listdir(ROOT)) - before - allowed
    assert not stray, f"tests left files in {ROOT}: {sorted(stray)}"


# -- the fast lane: pytest -m "not process and not slow" -----------------------------------
# A test is marked `process` when it, or a fixture it uses, starts a process (a script run as a
# user would, a server, a database): read from the source, so a new test is marked by itself;
# the modules below start one in nearly every test (servers, schedulers, databases, crashes).
PROCESS_STARTERS = ("run_script(", "retrain_script(", "interrupt_after(", "subprocess.", "Popen(")
PROCESS_MODULES = {
    "test_airflow",
    "test_airflow_celery",
    "test_airflow_monitor",
    "test_concurrency",
    "test_crash_safety",
    "test_crash_safety_more",
    "test_deploy_recipes",
    "test_docker",
    "test_file_modes",
    "test_mlflow",
    "test_production_log",
    "test_readme",
    "test_scheduler",
    "test_serve",
}


def _starts_a_process(fn) -> bool:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return any(s in source for s in PROCESS_STARTERS)


# -- the longest modules first ------------------------------------------------------------
# pytest-xdist's --dist loadfile hands out whole modules in collection order; starting the
# longest ones first keeps one worker from finishing a long module alone at the end. The order
# is the measured one (docs/contributing.md, "How long the suite takes"); a module not listed
# keeps its place after these.
LONGEST_FIRST = (
    "test_airflow",
    "test_crash_safety",
    "test_mlflow",
    "test_airflow_celery",
    "test_airflow_monitor",
    "test_readme",
    "test_crash_safety_more",
    "test_docker",
    "test_notify",
    "test_serve",
    "test_scheduler",
    "test_production_log",
    "test_fuzz_inputs",
    "test_fleet",
    "test_retrain",
)


def pytest_configure(config) -> None:
    """Keep that order: pytest-xdist otherwise re-sorts the modules by their number of tests."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    if not hasattr(config, "workerinput"):  # once, in the controller, before any worker starts
        compile_the_package()


def compile_the_package() -> None:
    """Byte-compile retraining/ once, so that every script the tests start reads the cached code.

    Python writes these files itself on the first import, unless PYTHONDONTWRITEBYTECODE is
    set (as on this project's machines): then each of the suite's hundreds of processes
    compiled the whole package again (about 0.1 s of CPU per process).
    """
    import compileall

    compileall.compile_dir(str(ROOT / "retraining"), quiet=1)


def _longest_first(items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.module.__name__, len(rank)), order[id(item)]))


def pytest_collection_modifyitems(items) -> None:
    _longest_first(items)
    for item in items:
        fn = getattr(item, "function", None)
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}) or {}
        fixtures = [d.func for ds in defs.values() for d in ds if d.func.__module__ not in ("conftest",) and not d.func.__module__.startswith("_pytest")]
        if item.module.__name__ in PROCESS_MODULES or (fn is not None and _starts_a_process(fn)) or any(_starts_a_process(f) for f in fixtures):
            item.add_marker(pytest.mark.process)


# -- how many workers `-n auto` starts -----------------------------------------------------
# Most of the suite's long tests wait on other processes (Airflow, Celery, MLflow, PostgreSQL,
# servers, strace-killed runs), so one worker per core leaves the cores idle much of the time:
# the full suite starts three per core. The fast lane (-m "not process ...") is in-process
# work that keeps a core busy, where each extra worker only adds its start-up and contention:
# two per core. Measured on the 2-core machine (docs/contributing.md, "How long they take").
WORKERS_PER_CORE = 3
FAST_LANE_WORKERS_PER_CORE = 2


def pytest_xdist_auto_num_workers(config) -> int:
    fast_lane = "not process" in (config.getoption("markexpr", default="") or "")
    return max(2, (FAST_LANE_WORKERS_PER_CORE if fast_lane else WORKERS_PER_CORE) * (os.cpu_count() or 1))
