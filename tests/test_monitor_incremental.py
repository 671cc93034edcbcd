"""monitor.py's incremental state (issue #20, speed): a rerun gives the numbers of a fresh run over everything.

A rerun reads only the appended log lines, merges their sums per version and day with the
kept ones and joins the outcomes to every kept prediction; these tests run it after more
lines and more outcomes, then delete the state and run again over everything (the
independent computation), and compare. Also: an older state (format 1: Parquet parts, no
sums) is read with one log line, and the fast path for the writers' fixed-width lines reads
them as pyarrow's JSON reader does.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, run_main, write_csv
from sklearn.metrics import roc_auc_score
from test_monitor import entry, monitor, traffic, write_log

from retraining.ab.predlog import append_predictions, entity_hashes, lay_out_predictions, lay_out_production
from retraining.errors import DataError
from retraining.monitoring import fastlog, logs
from retraining.monitoring.store import Store

FLAGS = ("--json", "--no-auto-rollback", "--no-page")


@pytest.fixture
def one_version(project: Path) -> Path:
    """A registry with v1.0.0 in production (as test_monitor's ``deployed``)."""
    assert retrainer(project).retrain().deployed
    return project


@pytest.fixture
def two_versions(one_version: Path) -> Path:
    """v1.1.0 put in production by --promote over v1.0.0 (as test_monitor's ``worse_promoted``)."""
    from retrain_model import main as retrain_main

    write_csv(one_version / "noise.csv", make_frame(n=600, seed=3, noise=True, start_id=50_000))
    retrainer(one_version, data_path=one_version / "noise.csv").retrain(force=True)
    assert run_main(retrain_main, "--promote", "v1.1.0", "--reason", "by hand", cwd=one_version).returncode == 0
    return one_version


def assert_same(a, b, path: str = "report") -> None:
    """Equal reports: counts, names and messages exactly, numbers to 1e-12 (sums may add in another order)."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: {set(a) ^ set(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def fresh_report(project: Path) -> dict:
    shutil.rmtree(project / "models" / "monitoring")
    ran = monitor(project, *FLAGS)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_an_incremental_rerun_gives_the_numbers_of_a_fresh_run(two_versions: Path) -> None:
    project, log = two_versions, two_versions / "predictions.jsonl"
    live = traffic(n=2400)
    day1 = write_log(log, project, live.iloc[:1200], "v1.1.0", previous="v1.0.0", day="2026-12-01")
    write_csv(project / "outcomes.csv", live.iloc[:500][["customer_id", "target"]])
    assert monitor(project, *FLAGS).returncode == 0
    day2 = write_log(log, project, live.iloc[1200:], "v1.1.0", previous="v1.0.0", day="2026-12-02")
    day3 = write_log(log, project, live.iloc[:300], "v1.1.0", previous="v1.0.0", day="2026-12-03")  # entities seen before come back
    unknown = traffic(n=3, start_id=900_000)  # ids never logged, and five ids twice: counted and noted
    outcomes = pd.concat([live.iloc[:1800], unknown, live.iloc[:5]])[["customer_id", "target"]]
    write_csv(project / "outcomes.csv", outcomes)  # more outcomes, for old predictions too
    ran = monitor(project, *FLAGS)
    assert ran.returncode == 0, ran.stderr
    incremental = json.loads(ran.stdout)
    assert len(json.loads((project / "models" / "monitoring" / "state.json").read_text())["parts"]) == 2  # it did read only the new lines

    kept = project / "models" / "monitoring"
    shutil.copytree(kept, project / "kept")
    assert_same(incremental, fresh_report(project))
    # and one number by scikit-learn: the outcome of every logged row of an entity in the outcomes
    y = np.concatenate([live["target"].to_numpy()[:1200], live["target"].to_numpy()[1200:1800], live["target"].to_numpy()[:300]])
    written = np.concatenate([day1, day2[:600], day3])
    v = next(v for v in incremental["versions"] if v["version"] == "v1.1.0")
    assert v["rows"] == 2700 and v["rows_with_outcome"] == 2100
    assert v["realized_auc"] == pytest.approx(roc_auc_score(y, np.round(written, 9).astype(np.float32)), abs=1e-12)
    assert incremental["bake"]["shadowed_rows"] == 2700 and incremental["bake"]["rows_with_outcome"] == 2100
    assert incremental["counts"]["duplicate_ids"] == 5 and incremental["counts"]["unknown_ids"] == 3 and len(incremental["notes"]) == 2

    # more lines, the same outcomes: the kept join is reused and only the new lines are joined
    shutil.rmtree(kept)
    shutil.copytree(project / "kept", kept)
    write_log(log, project, live.iloc[1000:1500], "v1.1.0", previous="v1.0.0", day="2026-12-04")
    ran = monitor(project, *FLAGS)
    assert ran.returncode == 0, ran.stderr
    state = json.loads((kept / "state.json").read_text())
    assert len(state["parts"]) == 3 and (kept / state["joined"]).is_file()
    assert_same(json.loads(ran.stdout), fresh_report(project))


def test_a_state_of_format_1_is_read_and_its_sums_computed_once(one_version: Path) -> None:
    project, log = one_version, one_version / "predictions.jsonl"
    live = traffic(n=1600)
    write_log(log, project, live.iloc[:800], "v1.0.0", day="2026-12-01")
    write_csv(project / "outcomes.csv", live[["customer_id", "target"]])
    assert monitor(project, *FLAGS).returncode == 0
    folder = project / "models" / "monitoring"
    state = json.loads((folder / "state.json").read_text())
    # what the first monitor kept: the same columns in a Parquet part, no sums, format 1
    columns = ["entity", "experiment", "model_version", "model_sha256", "score", "day", "previous_version", "previous_sha256", "previous_score"]
    Store(project / "models").part(state["parts"][0], columns).to_parquet(folder / "predictions" / "part-000001.parquet", index=False)
    for p in [*(folder / "predictions").glob("part-000001.*.npy"), folder / "predictions" / "part-000001.json", folder / state["aggregates"]]:
        p.unlink()
    old = {k: state[k] for k in ("offsets", "files", "last")}
    (folder / "state.json").write_text(json.dumps({"format": 1, **old, "parts": ["predictions/part-000001.parquet"]}))

    write_log(log, project, live.iloc[800:], "v1.0.0", day="2026-12-02")
    ran = monitor(project, *FLAGS)
    assert ran.returncode == 0, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if "format 1" in line]
    assert len(lines) == 1 and "computing them once" in lines[0], ran.stderr
    state = json.loads((folder / "state.json").read_text())
    assert state["format"] == 2 and state["parts"][0].endswith(".parquet") and (folder / state["aggregates"]).is_file()
    again = monitor(project, *FLAGS)  # the sums are kept now: no second line
    assert again.returncode == 0 and "format 1" not in again.stderr
    assert_same(json.loads(again.stdout), fresh_report(project))


def test_a_state_of_a_newer_format_is_refused_with_one_line(one_version: Path) -> None:
    folder = one_version / "models" / "monitoring"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"format": 3, "parts": []}))
    write_log(one_version / "predictions.jsonl", one_version, traffic(n=200), "v1.0.0")
    write_csv(one_version / "outcomes.csv", traffic(n=200)[["customer_id", "target"]])
    ran = monitor(one_version, *FLAGS)
    assert ran.returncode != 0 and "format 3" in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr


def writer_block(n: int = 300) -> bytes:
    """Lines as serve.py and ab_test.py write them: production with a bake shadow, an A/B batch."""
    rng = np.random.default_rng(0)
    hashes = entity_hashes(np.arange(n), "production")
    prod = lay_out_production(hashes, version="v1.1.0", sha="b" * 64, previous=("v1.0.0", "a" * 64), at="2026-12-01T10:00:00.000Z")
    ab = lay_out_predictions(
        entity_hashes(np.arange(n), "exp1"),
        (rng.random(n) < 0.5).astype(np.int8),
        experiment="exp1",
        share=0.5,
        versions={"champion": "v1.0.0", "challenger": "v1.1.0"},
        shas={"champion": "a" * 64, "challenger": "b" * 64},
        at="2026-12-02T23:59:59.999Z",
    )
    from retraining.ab.predlog import filled

    blobs = filled(prod, rng.random(n), rng.random(n)) + filled(ab, rng.random(n))
    return b"".join(b.tobytes() for b in blobs)


def same_lines(block: bytes) -> None:
    fast = logs.decode(block, Path("x"))
    slow = logs._of_table(logs._parse(block, Path("x")), Path("x"))
    for k in ("served", "score"):
        assert np.array_equal(getattr(fast, k), getattr(slow, k)), k
    rows = np.flatnonzero(slow.served)
    assert np.array_equal(fast.entity[rows], slow.entity[rows]) and np.array_equal(fast.day[rows], slow.day[rows])
    for k in fast.cats:
        assert list(fast.cats[k].astype(object)) == list(slow.cats[k].astype(object)), k
    every = np.arange(len(fast.served))
    assert list(fast.request_ids(every)) == list(slow.request_ids(every))
    a, b = logs.compact(fast, Path("x")), logs.compact(slow, Path("x"))
    for col in a.columns:
        assert list(a[col].astype(object)) == list(b[col].astype(object)) or np.array_equal(a[col], b[col], equal_nan=True), col


def test_the_fast_path_reads_the_writers_lines_as_the_json_reader_does() -> None:
    block = writer_block()
    # the production lines and their shadows (the A/B arms alternate line by line: the JSON reader)
    assert sum(run.n for _, _, run in fastlog.spans(block) if run is not None) == 600
    same_lines(block)
    # lines of other writers among them: keys in another order, spaces, an escape, an exponent, another version of the same width
    lines = block.splitlines(keepends=True)
    odd = [
        b'{"served": true, "score": 1e-05, "entity": "00000000000000ff", "model_sha256": "' + b"b" * 64 + b'", "model_version": "v1.1.0",'
        b' "variant": "production", "share": null, "experiment": "production", "time": "2026-12-03T00:00:00Z", "request_id": "r\\u0031"}\n',
        lines[5].replace(b'"v1.1.0"', b'"v9.9.9"'),
        lines[7].replace(b'"score":0.', b'"score":1.'),
    ]
    lines[5], lines[7] = odd[1], odd[2]  # same width, not the template: the run splits around them
    mixed = b"".join(lines[:5] + odd[:1] + lines[5:])
    same_lines(mixed)
    assert b"v9.9.9" in mixed and (logs.decode(mixed, Path("x")).cats["model_version"] == "v9.9.9").sum() == 1


def test_a_damaged_line_inside_a_run_of_the_writers_lines_is_an_error() -> None:
    lines = writer_block().splitlines(keepends=True)
    bad = lines[150].replace(b'"score":0.', b'"score":0x')
    assert len(bad) == len(lines[150])
    with pytest.raises(DataError, match="not a JSON-lines prediction log"):
        logs.decode(b"".join([*lines[:150], bad, *lines[151:]]), Path("x"))


def test_a_rerun_with_grown_or_changed_outcomes_gives_the_report_of_a_fresh_run(two_versions: Path) -> None:
    """Outcomes appended (new ids, an old id again with another label: the last row wins), then relabelled and removed.

    Each rerun joins again only the predictions of ids whose label is new, changed or gone
    (the log line says so); its JSON report must equal, field for field, that of a fresh run
    over the same log and outcomes (state deleted).
    """
    project, log = two_versions, two_versions / "predictions.jsonl"
    live = traffic(n=1800)
    write_log(log, project, live.iloc[:900], "v1.1.0", previous="v1.0.0", day="2026-12-01")
    write_log(log, project, live.iloc[600:1200], "v1.1.0", previous="v1.0.0", day="2026-12-02")  # ids on both days
    ab = live.iloc[50:400]  # an A/B test too: its rows are joined by the experiment's salt
    arms = (np.arange(len(ab)) % 2).astype(np.int8)
    versions = {"champion": "v1.0.0", "challenger": "v1.1.0"}
    shas = {arm: entry(project, v)["sha256"] for arm, v in versions.items()}
    hashes = entity_hashes(ab["customer_id"], "exp1")
    lines = lay_out_predictions(hashes, arms, experiment="exp1", share=0.5, versions=versions, shas=shas, at="2026-12-02T12:00:00.000Z")
    append_predictions(log, lines, np.random.default_rng(1).random(len(ab)))
    first = live.iloc[:700][["customer_id", "target"]]
    write_csv(project / "outcomes.csv", first)
    assert monitor(project, *FLAGS).returncode == 0
    kept = project / "models" / "monitoring"

    def rerun_equals_fresh(outcomes: pd.DataFrame, changed: int, gone: int) -> dict:
        write_csv(project / "outcomes.csv", outcomes)
        ran = monitor(project, *FLAGS)
        assert ran.returncode == 0, ran.stderr
        assert f"{changed} outcome ids are new or relabelled and {gone} gone" in ran.stderr, ran.stderr
        shutil.copytree(kept, project / "kept")
        report = json.loads(ran.stdout)
        assert report == fresh_report(project)
        shutil.rmtree(kept)
        shutil.move(project / "kept", kept)
        return report

    # appended: 200 new ids and 3 unknown ones (the last labels come first, unchanged)
    grown = pd.concat([first, live.iloc[700:900][["customer_id", "target"]], traffic(n=3, start_id=900_000)[["customer_id", "target"]]])
    rerun_equals_fresh(grown, 200 + 3, 0)
    # appended again: 100 new ids, and 4 old ids again with the other label (the last row of an id wins)
    again = first.iloc[:4].assign(target=1 - first["target"].iloc[:4])
    grown = pd.concat([grown, live.iloc[900:1000][["customer_id", "target"]], again])
    write_log(log, project, live.iloc[1200:], "v1.1.0", previous="v1.0.0", day="2026-12-03")
    report = rerun_equals_fresh(grown, 100 + 4, 0)
    v = next(v for v in report["versions"] if v["version"] == "v1.1.0")
    flipped = set(again["customer_id"])
    y = {i: (1 - t if i in flipped else t) for i, t in zip(live["customer_id"].iloc[:1000], live["target"].iloc[:1000], strict=True)}
    logged = pd.concat([live.iloc[:900], live.iloc[600:1200], live.iloc[1200:], ab[arms == 1]])["customer_id"]
    assert v["rows_with_outcome"] == sum(i in y for i in logged) and report["counts"]["duplicate_ids"] == 4 and report["counts"]["unknown_ids"] == 3

    # rewritten: 50 labels flipped, 100 ids gone, nothing new in the log
    changed = grown.drop_duplicates("customer_id", keep="last").iloc[100:].copy()
    changed.iloc[:50, 1] = 1 - changed.iloc[:50, 1]
    rerun_equals_fresh(changed, 50, 100)
