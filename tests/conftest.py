"""Shared fixtures: real CSV files under tmp_path, real CatBoost, real subprocesses (helpers in helpers.py)."""

from __future__ import annotations

import functools
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
# user would, a server, a database): read from the names its code uses (its nested functions'
# too), so a new test is marked by itself; the modules below start one in nearly every test
# (servers, schedulers, databases, crashes).
PROCESS_STARTERS = frozenset({"run_script", "retrain_script", "interrupt_after", "subprocess", "Popen"})
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


@functools.cache  # a fixture or a parametrized test is asked once, however many tests use it
def _starts_a_process(fn) -> bool:
    code = getattr(inspect.unwrap(fn), "__code__", None)
    return code is not None and _code_names_a_starter(code)


def _code_names_a_starter(code) -> bool:
    """The names a function's code reads (globals, attributes, locals) include a process starter.

    This reads the compiled code, not the source: inspect.getsource tokenised the file for each
    of the ~500 functions, about 1 s of every worker's collection.
    """
    names = (*code.co_names, *code.co_varnames, *code.co_cellvars, *code.co_freevars)
    if PROCESS_STARTERS.intersection(names):
        return True
    return any(_code_names_a_starter(c) for c in code.co_consts if inspect.iscode(c))


# -- the longest modules first ------------------------------------------------------------
# pytest-xdist's --dist loadfile hands out whole modules in this order; a module not listed
# keeps its place after these. A worker is sent its next module as soon as two or fewer of
# its tests are left to run, so a module of one or two long tests is followed at once, on
# the same worker, by the next module in the queue. With 6 workers the first six modules
# start together and the next three become the partners of the three such modules among them
# (crash_safety, airflow_celery, airflow_monitor, in worker order): a short one behind the
# longest, the long crash_safety_more behind the shortest. Before, crash_safety_more came
# right behind crash_safety on one worker, 455 s of the 482 s run. bench/replay_order.py
# replays a measured run through this rule: on the 10:59 run's times, 432 s against 451 s for
# the old order; in the 12:20 run with this order the six workers ended within 11 s of each
# other (docs/contributing.md, "How long they take").
LONGEST_FIRST = (
    "test_airflow",
    "test_crash_safety",
    "test_mlflow",
    "test_airflow_celery",
    "test_airflow_monitor",
    "test_readme",
    "test_fleet",  # behind test_crash_safety
    "test_crash_safety_more",  # behind test_airflow_celery
    "test_docker",  # behind test_airflow_monitor
    "test_notify",
    "test_scheduler",
    "test_serve",
    "test_production_log",
    "test_monitor",
    "test_retrain",
    "test_checks",
    "test_serve_hostile",
    "test_fuzz_inputs",
    "test_packaging",
)


def pytest_configure(config) -> None:
    """Keep that order: pytest-xdist otherwise re-sorts the modules by their number of tests."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    leave_hypothesis_unrewritten(config)
    if not hasattr(config, "workerinput"):  # once, in the controller, before any worker starts
        compile_the_package()
        rewrite_the_tests(config)


def leave_hypothesis_unrewritten(config) -> None:
    """Keep pytest from rewriting the asserts inside Hypothesis's own modules.

    pytest rewrites every module of a distribution that ships a pytest plugin, so each worker
    rewrote Hypothesis's package when test_fuzz_inputs imported it (about 1.4 s of CPU per
    worker, profiled), for assertion messages from inside Hypothesis no test ever shows. The
    set is pytest's private state: where it is missing, nothing changes.
    """
    marked = getattr(config.pluginmanager.rewrite_hook, "_must_rewrite", None)
    if isinstance(marked, set):
        marked.discard("hypothesis")


def compile_the_package() -> None:
    """Byte-compile retraining/ once, so that every script the tests start reads the cached code.

    Python writes these files itself on the first import, unless PYTHONDONTWRITEBYTECODE is
    set (as on this project's machines): then each of the suite's hundreds of processes
    compiled the whole package again (about 0.1 s of CPU per process).
    """
    import compileall

    compileall.compile_dir(str(ROOT / "retraining"), quiet=1)


def rewrite_the_tests(config) -> None:
    """Write pytest's assertion-rewritten code of each test module once, before the workers start.

    Each worker rewrites the asserts of every test module it collects (all of them, with
    --dist loadfile) and caches the result beside the module, unless PYTHONDONTWRITEBYTECODE
    is set: then the six workers each spent about 6 s of CPU rewriting the same 60 modules
    (profiled on the 2-core machine). The controller writes the cache the workers then read
    (pytest reads it whatever PYTHONDONTWRITEBYTECODE says). This uses pytest's private
    functions, so any failure here only costs the time it was meant to save.
    """
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        for fn in sorted(Path(__file__).parent.glob("*.py")):
            if not (fn.name.startswith("test_") or fn.name == "conftest.py"):
                continue
            cache_dir = rewrite.get_cache_dir(fn)
            pyc = cache_dir / (fn.name[:-3] + rewrite.PYC_TAIL)
            if rewrite._read_pyc(fn, pyc) is None and rewrite.try_makedirs(cache_dir):
                source_hash, code = rewrite._rewrite_test(fn, config)
                rewrite._write_pyc(state, code, source_hash, pyc)
    except Exception:  # an optimisation: on any failure the workers rewrite for themselves
        return


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
