"""The production prediction log of serve.py (docs/monitoring.md): real servers on 127.0.0.1, real HTTP, real promotions."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import test_serve
from helpers import make_frame, run_main, write_csv
from test_serve import own_predictions, retrain, rows

from retraining.ab.logfiles import Rotation, log_files, rotate_if_due
from retraining.ab.predlog import LOG_FIELDS, entity_hashes, read_feature_logs, read_prediction_logs

pytestmark = pytest.mark.skipif(os.name == "nt", reason="serve.py's tests send SIGTERM (POSIX)")
FAST = ("--log-flush-interval", "0.05")
registry, project, serve = test_serve.registry, test_serve.project, test_serve.serve  # the fixtures of serve.py's tests


def lines_of(log: Path) -> list[dict]:
    return [json.loads(line) for f in log_files(log) for line in f.read_text().splitlines()]


def post_all(server, batches: list[list[dict]]) -> list[dict]:
    answers = []
    for batch in batches:
        status, _, payload = server.post(batch)
        assert status == 200, payload
        answers.append(payload)
    return answers


def epoch(at: str) -> float:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def test_every_production_prediction_is_logged_with_and_without_an_ab_test(registry, serve, tmp_path):
    log = tmp_path / "logs" / "predictions.jsonl"
    batches = [rows(10, seed=s, start_id=100 * s) for s in range(3)]
    server = serve(registry, "--id-column", "customer_id", "--log", str(log), *FAST)
    answers = post_all(server, batches)
    no_id = [{k: v for k, v in r.items() if k != "customer_id"} for r in batches[0][:2]]
    status, _, payload = server.post(no_id)
    assert status == 422 and "customer_id" in payload["error"]  # the log needs every row's id: refused, not logged
    assert server.stop() == 0
    lines = lines_of(log)
    assert len(lines) == 30 and all([f for f in x if f not in ("format", "key")] == list(LOG_FIELDS) for x in lines)
    assert {(x["experiment"], x["share"], x["variant"], x["served"], x["model_version"]) for x in lines} == {("production", None, "production", True, "v1.0.0")}
    ids = [r["customer_id"] for b in batches for r in b]
    assert [x["entity"] for x in lines] == [f"{h:016x}" for h in entity_hashes(ids, "production")]  # the salt the contract names
    expected = np.concatenate([own_predictions(registry, "v1.0.0", b) for b in batches])
    assert np.allclose([x["score"] for x in lines], expected, atol=1e-9)
    assert np.allclose([x["score"] for x in lines], [p for a in answers for p in a["predictions"]], atol=1e-9)
    assert len({x["request_id"] for x in lines}) == 30

    salted = tmp_path / "salted.jsonl"
    server = serve(registry, "--id-column", "customer_id", "--salt", "s3cret", "--log", str(salted), *FAST)
    post_all(server, batches[:1])
    assert server.stop() == 0
    lines = lines_of(salted)
    assert {x["experiment"] for x in lines} == {"production:s3cret"}
    assert [x["entity"] for x in lines] == [f"{h:016x}" for h in entity_hashes(ids[:10], "s3cret")]

    ab_log = tmp_path / "ab.jsonl"  # an A/B test running: its lines as before, and no production lines
    server = serve(registry, "--challenger", "v1.1.0", "--share", "0.5", "--id-column", "customer_id", "--log", str(ab_log), *FAST)
    post_all(server, batches)
    assert server.stop() == 0
    lines = lines_of(ab_log)
    assert len(lines) == 30 and {x["experiment"] for x in lines} == {"v1.0.0-vs-v1.1.0"} and {x["variant"] for x in lines} == {"champion", "challenger"}


def test_rotation_with_two_workers_loses_and_duplicates_no_line_and_readers_see_every_file(registry, serve, tmp_path):
    log = tmp_path / "logs" / "predictions.jsonl"
    flags = ("--id-column", "customer_id", "--log", str(log), "--workers", "2", "--log-rotate-bytes", "4000", "--log-features", "1", *FAST)
    server = serve(registry, *flags)
    deadline = time.monotonic() + 30
    while len({server.get("/health")[2]["pid"] for _ in range(20)}) < 2:  # a new connection each: both workers answer
        assert time.monotonic() < deadline, "only one worker ever answered"
    batches = [rows(2, seed=k, start_id=2 * k) for k in range(120)]
    post_all(server, batches)  # a new connection each: both workers write
    assert server.stop() == 0
    files = log_files(log)
    assert len(files) >= 3 and files[-1] == log and all(f.name.startswith("predictions-") for f in files[:-1])
    assert all(f.stat().st_size >= 4000 for f in files[:-1])  # rotated once it held 4000 bytes, not before
    lines = lines_of(log)
    ids = [r["customer_id"] for b in batches for r in b]
    assert len(lines) == 240 and len({x["request_id"] for x in lines}) == 240  # none lost, none twice
    assert sorted(x["entity"] for x in lines) == sorted(f"{h:016x}" for h in entity_hashes(ids, "production"))
    frame = read_prediction_logs(log)
    assert len(frame) == 240 and set(frame["request_id"]) == {x["request_id"] for x in lines}
    assert len(log_files(log.with_name("features.jsonl"))) > 1  # rotated by the same rule
    head, features = read_feature_logs(log.with_name("features.jsonl"))
    assert len(head) == len(features) == 240 and set(head["model_version"]) == {"v1.0.0"}  # rate 1: every row
    assert sorted(head["entity"]) == sorted(int(x["entity"], 16) for x in lines)
    by_entity = dict(zip(entity_hashes(ids, "production"), [r for b in batches for r in b], strict=True))
    for k in (0, 117, 239):  # the features the model received for that entity
        sent = by_entity[head["entity"].iloc[k]]
        assert features.iloc[k].to_dict() == {name: sent[name] for name in ("x1", "x2", "x3", "c1", "c2")}


def test_rotation_names_sort_oldest_first_and_daily_rotation_follows_the_utc_day(tmp_path):
    log = tmp_path / "p.jsonl"
    for k in range(3):
        log.write_text(f"{k}\n")
        assert rotate_if_due(log, Rotation(max_bytes=1)) is not None  # three rotations within a second or two: -N suffixes
    log.write_text("3\n")
    assert [f.read_text() for f in log_files(log)] == ["0\n", "1\n", "2\n", "3\n"]
    assert rotate_if_due(log, Rotation(daily=True)) is None  # written today
    yesterday = time.time() - 86400
    os.utime(log, (yesterday, yesterday))
    assert rotate_if_due(log, Rotation(max_bytes=10**9)) is None
    assert rotate_if_due(log, Rotation(daily=True)) is not None and not log.exists()
    assert log_files(tmp_path / "none" / "p.jsonl") == []


def test_bake_shadows_the_previous_version_after_a_promotion_and_stops_after_the_window(project, serve):
    log = project / "logs" / "predictions.jsonl"
    window = 0.003  # hours: 10.8 s
    server = serve(project, "--id-column", "customer_id", "--bake-hours", str(window), *FAST)
    post_all(server, [rows(5, seed=1)])  # v1.0.0 came from the first deploy: nothing before it, no shadow
    retrain(project, "--promote", "v1.1.0")
    server.wait_for(lambda h: h["version"] == "v1.1.0", "the promotion")
    event = json.loads((project / "models" / "version_log.json").read_text())["events"][-1]
    assert (event["event"], event["from"], event["to"]) == ("promotion", "v1.0.0", "v1.1.0")
    end = epoch(event["at"]) + window * 3600
    batch = rows(4, seed=9, start_id=700)
    while time.time() < end + 1.5:
        post_all(server, [batch])
        time.sleep(0.2)
    assert server.stop() == 0
    lines = lines_of(log)
    served = [x for x in lines if x["served"]]
    shadow = {x["request_id"]: x for x in lines if not x["served"]}
    assert all(x["variant"] == "production" for x in served) and len(served) == len(lines) - len(shadow)
    assert all((x["experiment"], x["variant"], x["model_version"]) == ("production", "previous", "v1.0.0") for x in shadow.values())
    assert shadow and all(epoch(x["time"]) < end for x in shadow.values())  # never after the window
    assert any(x["model_version"] == "v1.1.0" and epoch(x["time"]) > end for x in served)  # served on, without a shadow
    assert not any(x["model_version"] == "v1.0.0" and x["request_id"] in shadow for x in served)
    previous = own_predictions(project, "v1.0.0", batch)
    for x in served:
        if x["request_id"] in shadow:
            twin = shadow[x["request_id"]]
            assert twin["entity"] == x["entity"] and twin["time"] == x["time"] and x["model_version"] == "v1.1.0"
            row = int(x["request_id"].split("-")[1], 16) % 4
            assert abs(twin["score"] - previous[row]) < 1e-8


def test_bake_after_a_restart_inside_the_window_and_no_bake_and_a_damaged_previous_file(project, serve):
    retrain(project, "--promote", "v1.1.0")  # the deploy happened before the server (re)starts
    log = project / "logs" / "predictions.jsonl"
    server = serve(project, "--id-column", "customer_id", *FAST)  # the default window: 72 h
    post_all(server, [rows(6, seed=2)])
    bake = server.get("/health")[2]["bake"]
    assert (bake["version"], bake["previous"]) == ("v1.1.0", "v1.0.0") and 71 * 3600 < epoch(bake["until"]) - time.time() <= 72 * 3600
    assert server.stop() == 0
    lines = lines_of(log)
    assert sorted((x["variant"], x["model_version"], x["served"]) for x in lines) == [("previous", "v1.0.0", False)] * 6 + [("production", "v1.1.0", True)] * 6

    log.unlink()
    server = serve(project, "--id-column", "customer_id", "--no-bake", *FAST)
    post_all(server, [rows(6, seed=2)])
    assert server.stop() == 0
    assert {x["variant"] for x in lines_of(log)} == {"production"} and len(lines_of(log)) == 6

    log.unlink()
    file = project / "models" / "catboost_model_v1.0.0.cbm"
    file.write_bytes(file.read_bytes()[:-10])  # the previous version's file no longer matches its sha256
    server = serve(project, "--id-column", "customer_id", *FAST)
    post_all(server, [rows(6, seed=2)])
    assert server.stop() == 0
    assert {x["variant"] for x in lines_of(log)} == {"production"} and len(lines_of(log)) == 6
    assert "No bake shadow for v1.1.0" in server.log() and "does not match the sha256" in server.log()


def test_the_bake_window_is_read_from_the_version_log_and_ends_by_the_clock(project, tmp_path):
    from retraining.registry import Registry
    from retraining.serving.ab import PredictionLog
    from retraining.serving.models import load_version
    from retraining.serving.production import ProductionLogger

    retrain(project, "--promote", "v1.1.0")
    event = json.loads((project / "models" / "version_log.json").read_text())["events"][-1]
    start = epoch(event["at"])
    reg = Registry(project / "models", project / "catboost_model.cbm")
    current, first = load_version(reg, "v1.1.0"), load_version(reg, "v1.0.0")
    plog = PredictionLog(tmp_path / "p.jsonl", lambda experiment: "production")
    now = [start + 3599.5]  # an hour's window, half a second before its end: a server (re)started now bakes
    prod = ProductionLogger(reg, plog, id_column="customer_id", bake_hours=1, clock=lambda: now[0])
    prod.production_changed(current)
    bake = prod.baking(current)
    assert bake is not None and bake.previous.version == "v1.0.0" and bake.until == start + 3600
    assert prod.baking(first) is None  # serving another version than the one baking: no shadow
    now[0] = start + 3600
    assert prod.baking(current) is None and prod.bake is None  # the window is over
    late = ProductionLogger(reg, plog, id_column="customer_id", bake_hours=1, clock=lambda: start + 3600.5)
    late.production_changed(current)
    assert late.bake is None  # started after the window: no shadow
    fresh = ProductionLogger(reg, plog, id_column="customer_id", bake_hours=1, clock=lambda: start)
    fresh.production_changed(first)
    assert fresh.bake is None  # v1.0.0's newest event is its first deploy (from nothing)
    for p in (prod, late, fresh):
        p.close()
    plog.close()


def test_ab_test_score_production_only_writes_production_lines_and_analyze_skips_them(registry, tmp_path):
    from ab_test import main

    frame = make_frame(50, seed=4, start_id=900)
    write_csv(tmp_path / "in.csv", frame.drop(columns=["target"]))
    log = tmp_path / "batch.jsonl"
    argv = ("score", "in.csv", "--id-column", "customer_id", "--production-only", "--out", "out.csv", "--log", str(log))
    base = ("--models-dir", str(registry / "models"), "--production", str(registry / "catboost_model.cbm"))
    ran = run_main(main, *argv, *base, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    lines = lines_of(log)
    assert len(lines) == 50
    assert {(x["experiment"], x["variant"], x["model_version"], x["served"]) for x in lines} == {("production", "production", "v1.0.0", True)}
    assert [x["entity"] for x in lines] == [f"{h:016x}" for h in entity_hashes(frame["customer_id"], "production")]
    assert np.allclose([x["score"] for x in lines], own_predictions(registry, "v1.0.0", frame.drop(columns=["target"]).to_dict("records")), atol=1e-9)
    ran = run_main(main, *argv, *base, "--challenger", "v1.1.0", cwd=tmp_path)
    assert ran.returncode == 2 and "--challenger belongs to an A/B test" in ran.stderr
    write_csv(tmp_path / "outcomes.csv", frame[["customer_id", "target"]])
    analyze = ("analyze", "--log", str(log), "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", *base)
    ran = run_main(main, *analyze, cwd=tmp_path)
    assert ran.returncode == 2 and "production lines only" in ran.stderr and len(ran.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--log-features", "0.1"), "--log-features needs --id-column NAME"),
        (("--no-bake",), "--no-bake needs --id-column NAME"),
        (("--id-column", "customer_id", "--log-features", "1.5"), "--log-features must be between 0 and 1"),
        (("--id-column", "customer_id", "--bake-hours", "-1"), "--bake-hours takes hours >= 0"),
        (("--id-column", "customer_id", "--log-rotate-bytes", "0"), "--log-rotate-bytes must be positive"),
        (("--id-column", "customer_id", "--challenger", "v1.1.0", "--experiment-id", "production"), "belong to the production log"),
        (("--id-column", "customer_id", "--challenger", "v1.1.0", "--log-features", "0.5"), "not with --challenger"),
    ],
)
def test_production_log_flags_that_make_no_sense_are_one_line_and_exit_2(registry, flags, message):
    from serve import main

    ran = run_main(main, *flags, cwd=registry)
    assert ran.returncode == 2 and message in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
