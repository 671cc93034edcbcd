"""Each prediction-log line carries the row's ledger key (#21): A/B on versions trained without an id column.

The expected keys are read from the ledger files themselves (``np.load``), never recomputed
with the function under test: a key the scorer or the server logs for a training row must
be one training stored for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, run_main, write_csv

from retraining.ab.predlog import read_prediction_log

MODELS = ("--models-dir", "models", "--production", "catboost_model.cbm")


@pytest.fixture(scope="module")
def content_keyed(tmp_path_factory) -> Path:
    """Two versions trained without --id-column (content keys): v1.0.0 in production, v1.1.0 a challenger."""
    root = tmp_path_factory.mktemp("content")
    write_csv(root / "data.csv", make_frame(600, seed=3))
    retrainer(root, iterations=30, report=False).retrain()
    retrainer(root, iterations=30, report=False, seed=7, min_improvement=1.0).retrain(force=True)
    log = json.loads((root / "models" / "version_log.json").read_text())
    assert log["production"] == "v1.0.0" and [v["version"] for v in log["versions"]] == ["v1.0.0", "v1.1.0"]
    return root


def ledger_file(root: Path, version: str) -> dict:
    """The ledger as stored: its train and holdout keys and its meta, read with numpy alone."""
    with np.load(root / "models" / "ledgers" / f"{version}.npz") as npz:
        return {"train": npz["train"], "holdout": npz["holdout"], "meta": json.loads(npz["meta"].tobytes())}


def logged_keys(lines: list[dict], version: str) -> np.ndarray:
    return np.sort(np.array([int(x["key"], 16) for x in lines if x["model_version"] == version], dtype=np.uint64))


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_scoring_logs_the_key_training_stored_for_each_row(content_keyed, tmp_path):
    """Shadow mode scores every row with both versions: the keys of each version's lines are its ledger's keys, row for row.

    The file holds the training file 8 times (4,800 rows: the keys are computed on a thread of their own while the models score).
    """
    from ab_test import main

    frame = pd.read_csv(content_keyed / "data.csv").drop(columns=["target"])
    write_csv(tmp_path / "in.csv", pd.concat([frame] * 8, ignore_index=True))
    for name in ("models", "catboost_model.cbm"):
        os.symlink(content_keyed / name, tmp_path / name)
    ran = run_main(main, "score", "in.csv", "--id-column", "customer_id", "--shadow", "--out", "out.csv", "--log", "p.jsonl", *MODELS, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    lines = read_lines(tmp_path / "p.jsonl")
    assert {x["format"] for x in lines} == {2}
    for version in ("v1.0.0", "v1.1.0"):
        stored = ledger_file(content_keyed, version)
        assert stored["meta"]["key"]["method"] == "features" and "customer_id" in stored["meta"]["key"]["columns"]
        expected = np.sort(np.concatenate([stored["train"], stored["holdout"]] * 8))
        assert np.array_equal(logged_keys(lines, version), expected)  # every row of the training file: the very keys training stored


def test_a_ledger_without_recorded_kinds_still_gives_the_same_keys(content_keyed, tmp_path):
    """Ledgers written before the kinds were recorded: the kinds come from the schema and the dropped columns' reasons."""
    import shutil

    from ab_test import main

    project = tmp_path / "p"
    shutil.copytree(content_keyed, project)
    for version in ("v1.0.0", "v1.1.0"):
        path = project / "models" / "ledgers" / f"{version}.npz"
        stored = ledger_file(project, version)
        meta = {k: v for k, v in stored["meta"].items() if k != "key_kinds"}
        np.savez(path, train=stored["train"], holdout=stored["holdout"], meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        assert "key_kinds" not in ledger_file(project, version)["meta"]
    write_csv(project / "in.csv", pd.read_csv(project / "data.csv").drop(columns=["target"]))
    ran = run_main(main, "score", "in.csv", "--id-column", "customer_id", "--production-only", "--out", "o.csv", "--log", "p.jsonl", *MODELS, cwd=project)
    assert ran.returncode == 0, ran.stderr
    stored = ledger_file(project, "v1.0.0")
    assert np.array_equal(logged_keys(read_lines(project / "p.jsonl"), "v1.0.0"), np.sort(np.concatenate([stored["train"], stored["holdout"]])))


def score_and_outcomes(project: Path, frame: pd.DataFrame, *flags: str) -> None:
    from ab_test import main

    write_csv(project / "in.csv", frame.drop(columns=["target"]))
    write_csv(project / "outcomes.csv", frame[["customer_id", "target"]])
    ran = run_main(main, "score", "in.csv", "--id-column", "customer_id", *flags, "--out", "out.csv", "--log", "p.jsonl", *MODELS, cwd=project)
    assert ran.returncode == 0, ran.stderr


def analyze(project: Path, *flags: str):
    from ab_test import main

    argv = ("analyze", "--log", "p.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", *MODELS, *flags)
    return run_main(main, *argv, cwd=project)


@pytest.fixture
def project(content_keyed, tmp_path) -> Path:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(content_keyed, copy)
    return copy


def test_resent_training_rows_are_left_out_and_promote_winner_works_without_an_id_column(project):
    """The A/B traffic re-sends every training row plus new ones: exactly the training rows are left out, and nothing is refused."""
    old = pd.read_csv(project / "data.csv")
    new = make_frame(400, seed=21, start_id=50_000)
    score_and_outcomes(project, pd.concat([old, new], ignore_index=True), "--share", "0.5")
    ran = analyze(project, "--json", "--promote-winner")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    trained = ledger_file(project, "v1.0.0")
    assert np.array_equal(trained["train"], ledger_file(project, "v1.1.0")["train"])  # one file, one split: the same training rows
    assert report["counts"]["rows_excluded_trained_on"] == len(trained["train"])
    assert report["counts"]["labelled"] == len(trained["holdout"]) + len(new)
    assert "training_rows_unknown" not in report["counts"]
    assert "promoted" in report  # --promote-winner acted (promoted, or found no winner): not refused


def test_promote_winner_refuses_with_one_line_when_a_key_cannot_be_computed(project):
    new = make_frame(400, seed=22, start_id=60_000)
    score_and_outcomes(project, new, "--share", "0.5")
    path = project / "p.jsonl"
    lines = read_lines(path)
    path.write_text("".join(json.dumps({k: v for k, v in x.items() if k not in ("format", "key")}) + "\n" for x in lines))  # format 1
    assert not read_prediction_log(path)["key_known"].any()  # old lines still read, with no key
    ran = analyze(project, "--promote-winner")
    refusal = ran.stderr.strip().splitlines()[-1]  # after the analysis' warnings, one line of refusal
    assert ran.returncode == 2 and ran.stderr.count("--promote-winner refused") == 1
    assert refusal.startswith("error: --promote-winner refused") and "joined lines of it were written before the row key (prediction-log format 1)" in refusal

    path.unlink()
    score_and_outcomes(project, new, "--share", "0.5")
    (project / "models" / "ledgers" / "v1.1.0.npz").unlink()
    ran = analyze(project, "--promote-winner")
    assert ran.returncode == 2 and "v1.1.0: it has no training ledger" in ran.stderr


def test_rows_that_lack_a_key_column_log_a_null_key_and_say_which(project, caplog):
    """The key covers customer_id (a column training dropped from the features); a scorer keyed by another id lacks it."""
    new = make_frame(300, seed=23, start_id=70_000).rename(columns={"customer_id": "account"})
    write_csv(project / "in.csv", new.drop(columns=["target"]))
    write_csv(project / "outcomes.csv", new[["account", "target"]])
    from ab_test import main

    ran = run_main(main, "score", "in.csv", "--id-column", "account", "--share", "0.5", "--out", "o.csv", "--log", "p.jsonl", *MODELS, cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert "the rows lack 'customer_id', which its row key covers" in ran.stderr
    assert all(x["key"] is None for x in read_lines(project / "p.jsonl"))
    argv = ("analyze", "--log", "p.jsonl", "--outcomes", "outcomes.csv", "--id-column", "account", "--label-column", "target", *MODELS, "--promote-winner")
    ran = run_main(main, *argv, cwd=project)
    assert ran.returncode == 2 and "carry no row key (it keys rows by its feature values" in ran.stderr and "--promote-winner refused" in ran.stderr
    assert "written before the row key" not in ran.stderr


def test_json_values_are_keyed_as_the_csv_reader_read_the_same_row(tmp_path):
    """Numbers, text that looks like numbers, booleans with a gap, dates: a JSON row gets the key its CSV row got in training."""
    from retraining.ab.rowkeys import KeySpec, frame_keys, table_keys
    from retraining.data.dataset import stable_holdout
    from retraining.data.keys import key_kinds
    from retraining.serving.inputs import decode
    from retraining.sources import read_table

    rows = "1,007,true,2026-01-02,0\n2.5,A1,,2026-01-03,1\n,007,false,2026-01-04,0\n"
    (tmp_path / "d.csv").write_text("n,code,flag,day,label\n" + rows + "3,B2,true,2026-01-05,1\n")
    frame = read_table(tmp_path / "d.csv").frame  # what training reads, and keys as training does
    _, split, training_keys, _ = stable_holdout(frame, "label", None, None, (), "d.csv")
    kinds = key_kinds(frame, split["key"]["columns"])
    spec = KeySpec("v", "features", tuple(split["key"]["columns"]), tuple(kinds.items()))
    assert kinds == {"code": "text", "day": "text", "flag": "bool", "n": "number"}
    sent = decode(
        json.dumps(
            [
                {"n": 1, "code": "007", "flag": True, "day": "2026-01-02"},
                {"n": 2.5, "code": "A1", "flag": None, "day": "2026-01-03"},
                {"n": None, "code": "007", "flag": "false", "day": "2026-01-04"},
                {"n": "1", "code": "007", "flag": "true", "day": "2026-01-02"},  # "1" is the number 1, "true" is true
                {"n": {"x": 1}, "code": "007", "flag": True, "day": "2026-01-02"},  # no number: no key
            ]
        ).encode()
    )
    keys, known = table_keys(spec, [sent])
    assert known.tolist() == [True, True, True, True, False]
    assert keys[:3].tolist() == training_keys[:3].tolist() and keys[3] == training_keys[0]
    frame_keyed, _ = frame_keys(spec, pd.DataFrame({"n": [1.0], "code": ["7"], "flag": [True], "day": ["2026-01-02"]}))
    assert frame_keyed[0] != training_keys[0]  # "7" is not "007"


@pytest.mark.skipif(os.name == "nt", reason="serve.py's tests stop it with SIGTERM (POSIX)")
def test_the_server_logs_the_key_training_stored_for_each_row(content_keyed, tmp_path):
    """A live shadow test: both versions' lines of every re-sent training row carry the keys of that version's ledger; new rows' keys are in none."""
    from test_serve import Server

    records = pd.read_csv(content_keyed / "data.csv").drop(columns=["target"]).to_dict("records")
    fresh = make_frame(40, seed=31, start_id=80_000).drop(columns=["target"]).to_dict("records")
    log = tmp_path / "live.jsonl"
    server = Server(content_keyed, "--id-column", "customer_id", "--challenger", "v1.1.0", "--shadow", "--log", str(log), "--log-flush-interval", "0.05")
    try:
        for start in range(0, len(records), 150):
            status, _, payload = server.post(records[start : start + 150])
            assert status == 200, payload
        status, _, payload = server.post(fresh)
        assert status == 200, payload
    finally:
        assert server.stop() == 0
    lines = read_lines(log)
    assert len(lines) == 2 * (len(records) + len(fresh)) and {x["format"] for x in lines} == {2}
    for version in ("v1.0.0", "v1.1.0"):
        stored = ledger_file(content_keyed, version)
        everything = np.concatenate([stored["train"], stored["holdout"]])
        mine = [x for x in lines if x["model_version"] == version]
        keys = np.array([int(x["key"], 16) for x in mine], dtype=np.uint64)
        is_new = np.isin(keys, everything, invert=True)
        assert is_new.sum() == len(fresh)  # the 40 new rows, and only they, are in no ledger
        assert np.array_equal(np.sort(keys[~is_new]), np.sort(everything))  # every training-file row: the key training stored


def test_the_server_logs_a_null_key_and_warns_once_naming_the_column_a_request_lacked(content_keyed, tmp_path, caplog):
    """In process, the server's log writer: a request without customer_id (a column the key covers) gets null keys and one warning."""
    import orjson

    from retraining.ab.rowkeys import KeyBook
    from retraining.registry import Registry
    from retraining.serving.ab import PredictionLog
    from retraining.serving.inputs import decode, rows_for
    from retraining.serving.models import load_version
    from retraining.serving.production import ProductionLogger

    reg = Registry(content_keyed / "models", content_keyed / "catboost_model.cbm")
    model = load_version(reg, "v1.0.0")
    plog = PredictionLog(tmp_path / "p.jsonl", lambda experiment: "production", keys=KeyBook(reg))
    prod = ProductionLogger(reg, plog, id_column="account", bake_hours=0)
    records = pd.read_csv(content_keyed / "data.csv").drop(columns=["target"]).iloc[:20].to_dict("records")
    with_id = [{"account": r["customer_id"], **r} for r in records[:10]]
    without = [{("account" if k == "customer_id" else k): v for k, v in r.items()} for r in records[10:]]  # the id under another name only
    for sent in (with_id, without):
        table = decode(orjson.dumps(sent))
        rows = rows_for(table, model.features, model.cat_indices, model.nan_ok)
        prod.record(model, table, rows, prod.ids(table), model.score(rows))
    prod.close()
    plog.close()
    lines = read_lines(tmp_path / "p.jsonl")
    stored = ledger_file(content_keyed, "v1.0.0")
    known = [int(x["key"], 16) for x in lines[:10]]
    assert np.isin(np.array(known, dtype=np.uint64), np.concatenate([stored["train"], stored["holdout"]])).all()
    assert [x["key"] for x in lines[10:]] == [None] * 10
    warnings = [r.getMessage() for r in caplog.records if "without a row key" in r.getMessage()]
    assert len(warnings) == 1 and "the rows lack 'customer_id'" in warnings[0]


def test_the_monitors_fast_path_takes_format_2_lines_with_keys_and_nulls() -> None:
    """The monitor reads the writers' fixed-width lines without a JSON parser: a key (known or null) is one more varying value."""
    from test_monitor_incremental import same_lines

    from retraining.ab.predlog import filled, lay_out_production
    from retraining.monitoring import fastlog

    rng = np.random.default_rng(3)
    n = 300
    keys = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    known = rng.random(n) < 0.7
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    lines = lay_out_production(hashes, version="v1.0.0", sha="a" * 64, at="2026-12-02T23:59:59.999Z", keys={"production": (keys, known)})
    block = b"".join(b.tobytes() for b in filled(lines, rng.random(n)))
    parsed = [json.loads(x) for x in block.splitlines()]
    assert [x["key"] for x in parsed] == [f"{k:016x}" if ok else None for k, ok in zip(keys.tolist(), known, strict=True)]
    assert sum(run.n for _, _, run in fastlog.spans(block) if run is not None) == n
    same_lines(block)
    rows = block.splitlines(keepends=True)
    at = next(i for i in range(1, n) if known[i])  # a known key after the template line
    pos = rows[at].index(b'"key":"') + 7
    rows[at] = rows[at][:pos] + b"Z" + rows[at][pos + 1 :]  # not hex: the run is not certain, so the JSON reader reads it
    damaged = b"".join(rows)
    assert len(damaged) == len(block) and sum(run.n for _, _, run in fastlog.spans(damaged) if run is not None) < n
    same_lines(damaged)
