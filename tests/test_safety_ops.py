"""Safety rules around the data and the models a user runs: SQL sources only read, Excel's
decimal comma, the live A/B split at its share, checksums before serving, schedule units.

In-process wherever the process boundary is not the subject (the serving app is driven
through its ASGI interface; PostgreSQL is a real throwaway server from tests/pg.py).
Expected values are computed in the test, never by the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import math
import shutil
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import schedule
from helpers import make_frame, reference_arms, retrainer, run_main, sha, snapshot, write_csv
from pg import postgres  # noqa: F401 - the session fixture

from retraining.data.dataset import load_dataset
from retraining.errors import ExitCode, SourceError, StateError
from retraining.sources import SourceSpec, read_table


# -- SQL sources only ever read ------------------------------------------------------------
def _read_leaves_data(spec: SourceSpec) -> None:
    """Run a writing statement as the source: it fails with one line, or it runs and changes nothing (checked by the caller)."""
    try:
        read_table(spec)
    except SourceError as exc:
        assert "\n" not in str(exc) and exc.exit_code in (ExitCode.DAMAGED_STATE, ExitCode.SOURCE_UNREACHABLE)


@pytest.mark.parametrize(
    "query",
    ["DELETE FROM features WHERE customer_id < 50 RETURNING *", "DROP TABLE features", "UPDATE features SET target = 0 RETURNING *"],
)
def test_postgres_source_never_writes_a_row(postgres, query):  # noqa: F811
    """Bug 1 of issue #25: a --query that writes must leave every row in the table (the transaction is rolled back)."""
    frame = make_frame(100)
    postgres.psql(
        "DROP TABLE IF EXISTS features; CREATE TABLE features (customer_id bigint, x1 double precision, x2 double precision, "
        "x3 bigint, c1 text, c2 text, target bigint)"
    )
    postgres.psql("COPY features FROM STDIN WITH (FORMAT csv, HEADER)", stdin=frame.to_csv(index=False))
    _read_leaves_data(SourceSpec(postgres.url(), query=query))
    counts = postgres.psql("COPY (SELECT count(*), sum(target), min(customer_id) FROM features) TO STDOUT").split()
    assert counts == ["100", str(int(frame.target.sum())), "0"], counts


@pytest.mark.parametrize(
    "query",
    ["DELETE FROM features WHERE customer_id < 50 RETURNING *", "DROP TABLE features", "UPDATE features SET target = 0 RETURNING *"],
)
def test_sqlite_source_never_writes_a_byte(tmp_path, query):
    """Bug 1 of issue #25 on SQLite: the file is opened read-only, so DROP TABLE fails and the file is byte for byte the same."""
    frame = make_frame(100)
    db = tmp_path / "d.db"
    with sqlite3.connect(db) as conn:
        frame.to_sql("features", conn, index=False)
    conn.close()
    before = snapshot(tmp_path)
    _read_leaves_data(SourceSpec(f"sqlite:///{db}", query=query))
    assert snapshot(tmp_path) == before  # no journal or WAL left beside it either
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), sum(target) FROM features").fetchone() == (100, int(frame.target.sum()))
    conn.close()


# -- Excel's decimal comma -------------------------------------------------------------------
def test_a_decimal_comma_column_with_a_few_words_reads_0_126_as_0_126(tmp_path):
    """Bug 4 of issue #25: in a ;-file, '0,126' is 0.126 (not 126) even when a few cells are not numbers."""
    frame = make_frame(300)
    cents = np.random.default_rng(4).integers(1, 100_000, size=300)  # 0,001 ... 99,999
    cents[0] = 126
    text = [f"{c // 1000},{c % 1000:03d}" for c in cents]  # cents[0] is written 0,126
    text[7], text[150] = "n/a", "?"
    frame["amount"] = text
    frame["big"] = [f"{c} {c % 1000:03d},5" for c in cents]  # a space as the thousands separator: 12 345,5
    frame.loc[[3, 9], "big"] = "-"
    path = tmp_path / "export.csv"
    path.write_text(frame.to_csv(index=False, sep=";"), encoding="utf-8")
    ds = load_dataset(path)
    assert dict(ds.schema())["amount"] == "numeric" and dict(ds.schema())["big"] == "numeric"
    expected = cents / 1000
    expected[[7, 150]] = np.nan
    assert ds.X["amount"].iloc[0] == 0.126
    np.testing.assert_allclose(ds.X["amount"].to_numpy(dtype=float), expected, rtol=0, atol=1e-12)
    big = cents * 1000 + cents % 1000 + 0.5
    assert np.isnan(ds.X["big"].iloc[3]) and ds.X["big"].iloc[0] == big[0]
    assert ds.missing["amount"] == 2 and ds.missing["big"] == 2


# -- the registry the serving tests use: v1.0.0 in production, v1.1.0 not deployed ---------
@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("registry")
    write_csv(project / "data.csv", make_frame(600))
    assert retrainer(project, id_column="customer_id", iterations=20, report=False).retrain().deployed
    kept = retrainer(project, id_column="customer_id", iterations=20, report=False, seed=7, min_improvement=1.0).retrain(force=True)
    assert kept.version == "v1.1.0" and not kept.deployed
    return project


@pytest.fixture
def project(registry, tmp_path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(registry, copy)
    return copy


def _app(project: Path, *flags: str):
    from retraining.serving.app import App
    from retraining.serving.cli import build_parser, config_from_args

    argv = ["--models-dir", str(project / "models"), "--production", str(project / "catboost_model.cbm"), *flags]
    return App(config_from_args(build_parser().parse_args(argv)))


def _post(app, records: list[dict]) -> tuple[int, dict]:
    """One POST /predict through the app's ASGI interface, in this process."""
    sent: list[dict] = []
    body = json.dumps(records).encode()

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-length", str(len(body)).encode())]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def _split_arms(project: Path, share: float, ids: np.ndarray, salt: str = "s1") -> list[str]:
    log = project / f"predictions-{share}.jsonl"
    app = _app(project, "--challenger", "v1.1.0", "--share", str(share), "--id-column", "customer_id", "--salt", salt, "--log", str(log))
    app.startup()
    try:
        frame = make_frame(len(ids), seed=5).drop(columns="target").assign(customer_id=ids)
        status, payload = _post(app, frame.to_dict("records"))
    finally:
        app.shutdown()
    assert status == 200, payload
    return payload["arms"]


def test_serve_share_01_sends_the_documented_10_percent_to_the_challenger(registry):
    """Bug 5 of issue #25: the arms served with --share 0.1 are the ones the documented hash gives (computed here)."""
    ids = np.arange(7000, 9000)
    arms = _split_arms(registry, 0.1, ids)
    assert arms == reference_arms(ids.tolist(), "s1", 0.1)
    assert 140 < arms.count("challenger") < 260  # 10 % of 2000 = 200, +- 4.5 standard deviations (13.4)


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5])
def test_serve_splits_traffic_at_its_share(registry, share):
    """At each share the challenger gets that share of entities, within 4.5 binomial standard deviations."""
    n = 2000
    arms = _split_arms(registry, share, np.arange(20_000, 20_000 + n), salt=f"share-{share}")
    bound = 4.5 * math.sqrt(n * share * (1 - share))
    assert abs(arms.count("challenger") - n * share) < bound, (arms.count("challenger"), n * share)


# -- checksums before serving ----------------------------------------------------------------
def _tamper(path: Path) -> None:
    with path.open("ab") as fh:
        fh.write(b"\0")


def test_serve_refuses_a_challenger_whose_file_no_longer_matches_the_log(project):
    """Bug 6 of issue #25: both the command line's check and the server's load refuse it."""
    from retraining.serving.cli import check_challenger
    from retraining.serving.cli import main as serve_main

    _tamper(project / "models" / "catboost_model_v1.1.0.cbm")
    flags = ("--challenger", "v1.1.0", "--id-column", "customer_id", "--log", str(project / "p.jsonl"))
    app = _app(project, *flags)
    with pytest.raises(StateError, match="does not match the sha256 in the version log"):
        check_challenger(app.config)
    with pytest.raises(StateError, match="does not match the sha256 in the version log"):
        app.startup()
    app.shutdown()
    ran = run_main(serve_main, "--models-dir", "models", "--production", "catboost_model.cbm", *flags, "--port", "1", cwd=project)
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert ran.returncode == ExitCode.DAMAGED_STATE and "v1.1.0" in lines[-1] and "sha256" in lines[-1]


def test_serve_refuses_a_production_file_that_no_longer_matches_the_log(project):
    from retraining.registry import Registry
    from retraining.serving.models import ModelWatcher

    _tamper(project / "catboost_model.cbm")
    watcher = ModelWatcher(Registry(project / "models", project / "catboost_model.cbm"))
    assert watcher.check() is False and watcher.current is None
    assert "the version log says production is v1.0.0" in watcher.last_error


def test_a_version_whose_file_changed_is_neither_promoted_nor_rolled_back_to(project):
    """Promote and rollback check the sha256 too; production stays byte for byte what it was."""
    from retrain_model import main as retrain_main

    _tamper(project / "models" / "catboost_model_v1.1.0.cbm")
    before = sha(project / "catboost_model.cbm")
    ran = run_main(retrain_main, "--promote", "v1.1.0", "--reason", "test", cwd=project)
    assert ran.returncode == ExitCode.DAMAGED_STATE and "sha256" in ran.stderr.strip().splitlines()[-1]
    assert sha(project / "catboost_model.cbm") == before
    assert json.loads((project / "models" / "version_log.json").read_text())["production"] == "v1.0.0"


# -- each schedule unit: the scheduler's flags -> the user's schedule line -> the plan --------
def _plan(*flags: str):
    from retraining.scheduling.cli import parse_args
    from retraining.scheduling.timeplan import Plan
    from scheduler import schedule_job

    args, _ = parse_args([*flags, "--timezone", "UTC"], None)
    try:
        return Plan.from_job(schedule_job(args, lambda: None), ZoneInfo("UTC"))
    finally:
        schedule.clear()


def _runs(plan, start: dt.datetime, count: int) -> list[dt.datetime]:
    due, runs = plan.first_run(start), []
    while len(runs) < count:
        runs.append(due)
        due = plan.next_run(due, due)
    return runs


START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)  # a Monday, noon UTC


@pytest.mark.parametrize(
    ("flags", "first", "gap"),
    [
        (["--every", "1", "--unit", "weeks", "--at", "03:00"], dt.datetime(2026, 3, 3, 3, 0), dt.timedelta(days=7)),
        (["--every", "2", "--unit", "weeks", "--at", "03:00"], dt.datetime(2026, 3, 3, 3, 0), dt.timedelta(days=14)),
        (["--every", "1", "--unit", "weeks"], START.replace(tzinfo=None) + dt.timedelta(days=7), dt.timedelta(days=7)),
        (["--at", "03:00"], dt.datetime(2026, 3, 3, 3, 0), dt.timedelta(days=1)),
        (["--every", "3", "--unit", "days", "--at", "22:15"], dt.datetime(2026, 3, 2, 22, 15), dt.timedelta(days=3)),
        (["--every", "6", "--unit", "hours"], dt.datetime(2026, 3, 2, 18, 0), dt.timedelta(hours=6)),
        (["--every", "15", "--unit", "minutes"], dt.datetime(2026, 3, 2, 12, 15), dt.timedelta(minutes=15)),
        (["--every", "90", "--unit", "seconds"], dt.datetime(2026, 3, 2, 12, 1, 30), dt.timedelta(seconds=90)),
    ],
)
def test_each_schedule_unit_runs_at_its_own_pace(flags, first, gap):
    """Bug 7 of issue #25: a weekly schedule runs every 7 days, not daily; every unit keeps its period."""
    runs = _runs(_plan(*flags), START, 5)
    expected = [first.replace(tzinfo=dt.timezone.utc) + i * gap for i in range(5)]
    assert runs == expected


def test_the_default_schedule_line_and_the_scripts_copy_agree():
    """scheduler.py carries the schedule line for the user to edit; the library's default must read the same flags the same way."""
    from retraining.scheduling.cli import parse_args
    from retraining.scheduling.loop import default_schedule_job
    from retraining.scheduling.timeplan import Plan
    from scheduler import schedule_job

    for flags in (["--every", "1", "--unit", "weeks", "--at", "03:00"], ["--every", "4", "--unit", "hours"], ["--at", "05:30"]):
        args, _ = parse_args([*flags, "--timezone", "UTC"], None)
        try:
            plans = [Plan.from_job(make(args, lambda: None), ZoneInfo("UTC")) for make in (schedule_job, default_schedule_job)]
        finally:
            schedule.clear()
        assert plans[0] == plans[1], flags


@pytest.mark.parametrize(("every", "unit", "gap"), [(1, "weeks", 7), (2, "weeks", 14), (1, "days", 1), (4, "days", 4)])
def test_a_plan_at_a_wall_time_steps_whole_weeks_or_days(every, unit, gap):
    """The plan itself (as a user's own schedule line may build it): weekly at 03:00 is 7 days apart, in local time across DST."""
    from retraining.scheduling.timeplan import Plan

    helsinki = ZoneInfo("Europe/Helsinki")
    plan = Plan(every, unit, dt.time(3, 0), helsinki)
    runs = _runs(plan, dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.timezone.utc), 4)  # spans the spring-forward Sunday, 2026-03-29
    local = [r.astimezone(helsinki) for r in runs]
    assert [(b.date() - a.date()).days for a, b in itertools.pairwise(local)] == [gap] * 3
    assert [r.strftime("%H:%M") for r in local] == ["04:00" if r.date() == dt.date(2026, 3, 29) else "03:00" for r in local]  # 03:00 does not exist that day


# -- notifications: which event a run is, and which targets get it ----------------------------
@pytest.mark.parametrize(
    ("result", "events"),
    [
        ({"status": "kept for review", "checks": [{"name": "label_rate", "severity": "block"}]}, ["blocked"]),
        ({"status": "kept for review", "checks": [{"name": "drift", "severity": "warn"}]}, ["review"]),  # a warning does not block
        ({"status": "kept for review", "checks": []}, ["review"]),
        ({"status": "deployed", "checks": [{"name": "drift", "severity": "warn"}]}, ["deployed"]),
        ({"status": "deployed", "drift": {"significant": ["x1"]}}, ["deployed", "drift"]),
        ({"status": "unchanged", "drift": {"significant": ["x1"]}}, []),
        ({"status": "kept for review", "drift": {"significant": []}}, ["review"]),
    ],
)
def test_a_runs_severity_decides_its_event(result, events):
    from retraining.notify import run_events

    assert run_events(result) == events


def test_every_target_source_given_urls_a_config_file_or_the_environment():
    from retraining.notify import parse_events, targets

    env = {"RETRAIN_NOTIFY": "json://a:1/x, mailto://u:p@h  ntfy://t"}
    assert targets((), None, env) == (("json://a:1/x", "mailto://u:p@h", "ntfy://t"), None)  # each of the variable's targets
    assert targets(["json://b/"], None, env) == (("json://b/",), None)  # the flag wins over the variable
    assert targets((), "notify.yml", env) == ((), "notify.yml")  # so does a config file
    assert targets((), None, {}) == ((), None)
    assert parse_events("all") == ("review", "blocked", "deployed", "rollback", "failed", "drift", "decay")
    assert parse_events("failed, review failed") == ("failed", "review")
    with pytest.raises(ValueError, match="unknown event nope; choose from"):
        parse_events("review,nope")
