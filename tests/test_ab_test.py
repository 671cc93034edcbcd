"""ab_test.py: sticky assignment, shadow scoring, the prediction log, and the analysis."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, make_frame, reference_hash, retrainer, run_script, write_csv

from retraining.ab.analysis import analyze, format_report
from retraining.ab.experiment import CHALLENGER, CHAMPION, ABTest, assign_arms
from retraining.ab.predlog import entity_hashes, read_prediction_log
from retraining.errors import DataError, UsageError, VersionNotFoundError


@pytest.fixture
def registry(tmp_path):
    """Production is a weak model (v1.1.0); v1.0.0 is strong and not in production."""
    write_csv(tmp_path / "data.csv", make_frame(4000, seed=11))
    retrainer(tmp_path, iterations=80, id_column="customer_id", report=False).retrain()
    retrainer(tmp_path, iterations=1, depth=1, id_column="customer_id", report=False).retrain()
    retrainer(tmp_path).promote_to_production("v1.1.0")
    return tmp_path


def ab(project, **kw) -> ABTest:
    return ABTest(project / "models", project / "catboost_model.cbm", **kw)


def test_defaults_and_sticky_assignment_across_processes(registry):
    t = ab(registry, share=0.2)
    assert t.versions == {CHAMPION: "v1.1.0", CHALLENGER: "v1.0.0"}
    ids = np.arange(20000)
    first = t.assign(ids)
    assert (t.assign(ids) == first).all() and (t.assign(ids.astype(str)) == first).all()  # 42 and "42" agree
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from ab_test import ABTest; "
        "t = ABTest(sys.argv[2] + '/models', sys.argv[2] + '/catboost_model.cbm', share=0.2); "
        "print(''.join('1' if v == 'challenger' else '0' for v in t.assign(np.arange(20000))))"
    )
    other = subprocess.run([sys.executable, "-c", code, str(ROOT), str(registry)], capture_output=True, text=True, check=True).stdout.strip()
    assert other == "".join("1" if v == CHALLENGER else "0" for v in first)
    observed = (first == CHALLENGER).mean()
    assert abs(observed - 0.2) < 3 * np.sqrt(0.2 * 0.8 / 20000)  # within 3 standard errors
    assert (ab(registry, share=0.2, salt="other").assign(ids) != first).any()  # the salt matters


def test_entity_hash_follows_its_documented_definition():
    ints = np.array([0, 7, 42, 9_999_999, 12_345_678, 123_456_789_012_345_678, 2**63 - 1])
    texts = ["", "a", " 42 ", "customer-00017", "x" * 8, "y" * 9, "ümlaut-ß-客户", "-5", "3.5", "1e3"]
    assert [int(h) for h in entity_hashes(ints, "s1")] == [reference_hash(str(i), "s1") for i in ints]
    assert [int(h) for h in entity_hashes(texts, "s1")] == [reference_hash(t, "s1") for t in texts]
    assert (entity_hashes(ints.astype(float)[:5], "s") == entity_hashes([str(i) for i in ints[:5]], "s")).all()  # 42.0 == "42"
    assert (entity_hashes(pd.Series(ints[:5], dtype="Int64"), "s") == entity_hashes(ints[:5], "s")).all()
    with pytest.raises(UsageError, match=r"1 row has no entity id \(first: row 2\)"):
        entity_hashes([1.0, np.nan], "s")


@pytest.mark.parametrize("n", [500, 5000])  # 5000 >= PARALLEL_ROWS: the log is prepared and written on a second thread
def test_split_and_shadow_scores_are_each_models_own(registry, n):
    frame = make_frame(n, seed=3)
    frame.loc[::7, "c1"] = None  # missing categories take the path training used
    frame["c2"] = frame["c2"].astype("category")  # categorical input stays as it is
    t = ab(registry, shadow=True, log_path=registry / "p.jsonl")
    out = t.predict(frame, frame.customer_id)
    from catboost import Pool

    from retraining.data.dataset import categorical_values
    from retraining.training import as_categoricals

    def own(arm: str) -> np.ndarray:  # the model on plain string columns, as training saw them
        X, cats = t.features(frame, arm)
        assert all(isinstance(as_categoricals(X, cats)[c].dtype, pd.CategoricalDtype) for c in cats)
        plain = X.assign(**{c: categorical_values(X[c]).astype(object) for c in cats})
        return t.model(arm).predict_proba(Pool(plain, cat_features=cats))[:, 1]

    for arm, col in ((CHAMPION, "score"), (CHALLENGER, "shadow_score")):
        assert np.array_equal(out[col], own(arm))
    assert (out.variant == CHAMPION).all()
    logged = read_prediction_log(registry / "p.jsonl")
    assert len(logged) == 2 * n and logged.served.sum() == n
    assert set(logged.loc[~logged.served, "model_version"]) == {"v1.0.0"}
    assert np.allclose(logged.loc[~logged.served, "score"].to_numpy(), out.shadow_score, atol=1e-9)

    split = ab(registry, share=0.5, log_path=registry / "s.jsonl").predict(frame, frame.customer_id)
    for arm in (CHAMPION, CHALLENGER):
        m = (split.variant == arm).to_numpy()
        assert np.array_equal(split.score[m], own(arm)[m])
    logged = read_prediction_log(registry / "s.jsonl")  # every row once, in order, with the score it was served
    assert logged.served.all() and np.allclose(logged.score.to_numpy(), split.score, atol=1e-9)
    assert (logged.variant.to_numpy() == split.variant.astype(str).to_numpy()).all()
    assert [int(r.split("-")[1], 16) for r in logged.request_id] == list(range(n))
    line = json.loads((registry / "s.jsonl").read_text().splitlines()[0])
    assert set(line) == {"format", "request_id", "time", "experiment", "share", "entity", "key", "variant", "model_version", "model_sha256", "score", "served"}
    assert line["experiment"] == "v1.1.0-vs-v1.0.0" and len(line["model_sha256"]) == 64 and str(line["entity"]) != "0"


def simulate(project, truth: str, shadow: bool, n: int = 6000, share: float = 0.5, assign_share: float | None = None, seed: int = 0):
    """Write a log whose challenger is truly better, worse or equal; return the outcomes."""
    rng = np.random.default_rng(seed)
    t = ab(project, share=share, shadow=shadow, log_path=project / f"{truth}.jsonl")
    ids = np.arange(n)
    y = rng.integers(0, 2, n)
    strength = {"better": (0.6, 1.2), "worse": (1.2, 0.6), "equal": (0.9, 0.9), "slightly": (0.9, 1.0)}[truth]
    champ = 1 / (1 + np.exp(-(strength[0] * (2 * y - 1) + rng.normal(size=n))))
    chall = 1 / (1 + np.exp(-(strength[1] * (2 * y - 1) + rng.normal(size=n))))
    hashes = entity_hashes(ids, t.salt)
    if shadow:
        t.log_predictions(hashes, np.zeros(n, np.int8), champ, chall)
    else:
        is_ch = (rng.random(n) < assign_share) if assign_share else assign_arms(hashes, share) == 1
        t.log_predictions(hashes, is_ch.astype(np.int8), np.where(is_ch, chall, champ))
    return pd.DataFrame({"customer_id": ids, "label": np.where(y == 1, "yes", "no")})


@pytest.mark.parametrize("shadow", [False, True])
@pytest.mark.parametrize(
    ("truth", "expected"), [("better", {"promote challenger"}), ("worse", {"keep champion"}), ("equal", {"keep champion", "keep collecting"})]
)
def test_recommendation_is_right(registry, shadow, truth, expected):
    outcomes = simulate(registry, truth, shadow)
    r = analyze(registry / f"{truth}.jsonl", outcomes, "customer_id", "label")
    assert r["mode"] == ("shadow" if shadow else "split")
    assert r["recommendation"]["action"] in expected, r["recommendation"]
    assert r["counts"]["labelled"] == 6000
    if not shadow:
        assert r["srm"]["mismatch"] is False


def test_small_sample_asks_for_more_rows(registry):
    outcomes = simulate(registry, "slightly", False, n=400)
    r = analyze(registry / "slightly.jsonl", outcomes, "customer_id", "label")
    assert r["recommendation"]["action"] == "keep collecting" and r["recommendation"]["more_rows"] > 0


def test_sample_ratio_mismatch_blocks(registry):
    outcomes = simulate(registry, "better", False, share=0.1, assign_share=0.3)
    r = analyze(registry / "better.jsonl", outcomes, "customer_id", "label")
    assert r["srm"]["mismatch"] and r["recommendation"]["action"] == "blocked"
    assert "sample ratio mismatch" in r["recommendation"]["reason"]


def test_outcomes_that_do_not_join_are_counted(registry):
    outcomes = simulate(registry, "better", False, n=2000)
    outcomes.loc[:99, "label"] = None
    extra = pd.DataFrame({"customer_id": np.arange(10_000, 10_050), "label": "yes"})
    r = analyze(registry / "better.jsonl", pd.concat([outcomes.iloc[:1500], extra]), "customer_id", "label")
    c = r["counts"]
    assert c["missing_labels"] == 100 and c["unknown_ids"] == 50 and c["predictions_without_outcome"] == 600 and c["labelled"] == 1400
    one_class = analyze(registry / "better.jsonl", outcomes.assign(label="yes"), "customer_id", "label")
    assert one_class["recommendation"]["action"] == "keep collecting" and "1 class" in one_class["recommendation"]["reason"]


def test_concurrent_writers_never_interleave(registry):
    """Four processes scoring 20 batches each (shadow mode: large batches write their served lines on a second thread)."""
    code = (
        "import sys, numpy as np; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests']; from ab_test import ABTest; "
        "from helpers import make_frame; frame = make_frame(5000, seed=5); "
        "t = ABTest(sys.argv[2] + '/models', sys.argv[2] + '/catboost_model.cbm', shadow=True, log_path=sys.argv[2] + '/c.jsonl')\n"
        "for i in range(20):\n"
        "    t.predict(frame.iloc[:500 if i % 2 else 5000], np.arange(500 if i % 2 else 5000) + 5000 * i)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(registry)]) for _ in range(4)]
    assert all(p.wait(120) == 0 for p in procs)
    lines = (registry / "c.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 10 * (5000 + 500) * 2  # a served and a shadow line per row
    parsed = [json.loads(line) for line in lines]  # every line whole
    assert len({(p["request_id"], p["served"]) for p in parsed}) == len(parsed)


def test_malformed_logs_and_outcomes_give_clear_errors(registry):
    outcomes = simulate(registry, "better", False, n=200)
    path = registry / "better.jsonl"
    good = path.read_text()
    path.write_text('{"request_id": "x", "time": \n')
    with pytest.raises(DataError, match=r"line 1 is not valid JSON"):  # nothing complete to keep
        analyze(path, outcomes, "customer_id", "label")
    path.write_text('{"a": 1}\n')
    with pytest.raises(DataError, match="fields missing"):
        analyze(path, outcomes, "customer_id", "label")
    path.write_text("")
    with pytest.raises(DataError, match="no prediction log"):
        analyze(path, outcomes, "customer_id", "label")
    path.write_text(good)
    with pytest.raises(DataError, match="no column 'outcome'"):
        analyze(path, outcomes, "customer_id", "outcome")
    with pytest.raises(UsageError, match="no experiment 'nope'"):
        analyze(path, outcomes, "customer_id", "label", experiment="nope")
    with pytest.raises(VersionNotFoundError, match=r"v9\.9\.9 is not in"):
        ab(registry, challenger="v9.9.9").model(CHALLENGER)


def test_cli_score_analyze_and_promote_winner(registry):
    data = make_frame(6000, seed=21)
    write_csv(registry / "incoming.csv", data.drop(columns="target"))
    write_csv(registry / "outcomes.csv", data[["customer_id", "target"]])
    scored = run_script(
        "ab_test.py", "score", "incoming.csv", "--id-column", "customer_id", "--share", "0.5", "--out", "scored.csv", "--log", "p.jsonl", cwd=registry
    )
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(registry / "scored.csv")
    assert len(out) == 6000 and set(out.variant) == {CHAMPION, CHALLENGER}
    args = ["analyze", "--log", "p.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target"]
    plain = run_script("ab_test.py", *args, cwd=registry)
    assert plain.returncode == 0 and "recommendation: promote challenger" in plain.stdout, plain.stdout
    assert retrainer(registry).production_version() == "v1.1.0"  # analysis alone changes nothing
    promoted = run_script("ab_test.py", *args, "--promote-winner", "--json", cwd=registry)
    assert promoted.returncode == 0 and json.loads(promoted.stdout)["promoted"]["to"] == "v1.0.0"
    log = retrainer(registry).version_history()
    assert log["production"] == "v1.0.0" and "A/B test v1.1.0-vs-v1.0.0" in log["events"][-1]["reason"]
    bad = run_script("ab_test.py", "score", "incoming.csv", "--id-column", "nope", "--out", "x.csv", "--log", "p.jsonl", cwd=registry)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "no id column 'nope'" in bad.stderr


def test_scoring_uses_the_one_assignment_rule(registry):
    """predict() draws the arms with assign_arms, as assign() does, by the documented formula."""
    t = ab(registry, share=0.3, log_path=registry / "a.jsonl")
    frame = make_frame(5000, seed=4)  # >= PARALLEL_ROWS: the arms are drawn on the second thread
    out = t.predict(frame, frame.customer_id)
    assert (out.variant.astype(str).to_numpy() == t.assign(frame.customer_id)).all()
    assert (read_prediction_log(registry / "a.jsonl").variant.to_numpy() == t.assign(frame.customer_id)).all()
    hashes = entity_hashes(frame.customer_id, t.salt)
    by_formula = np.array([(int(h) >> 11) / 2**53 < 0.3 for h in hashes])
    assert (assign_arms(hashes, 0.3) == by_formula).all() and 0.25 < by_formula.mean() < 0.35
    assert not assign_arms(hashes, 0.0).any() and assign_arms(hashes, 1.0).all()


def _trained(registry, ids) -> np.ndarray:
    """Which ids either version trained on, from the ledgers the runs wrote."""
    from retraining.data.keys import id_hashes
    from retraining.guard.ledger import load_ledger

    keys = id_hashes(pd.Series(ids))
    return np.isin(keys, load_ledger(registry / "models" / "ledgers" / "v1.0.0.npz").train) | np.isin(
        keys, load_ledger(registry / "models" / "ledgers" / "v1.1.0.npz").train
    )


def test_replay_on_training_rows_leaves_them_out(registry):
    """Both versions trained on 80% of ids 0-3999; an A/B replay over ids 0-5999 must not judge them on those."""
    from retraining.registry import Registry

    outcomes = simulate(registry, "better", False)
    trained = _trained(registry, outcomes.customer_id)
    assert 3000 < trained.sum() < 3400 and not trained[4000:].any()
    reg = Registry(registry / "models", registry / "catboost_model.cbm")
    r = analyze(registry / "better.jsonl", outcomes, "customer_id", "label", registry=reg)
    assert r["counts"]["rows_excluded_trained_on"] == trained.sum()
    assert r["counts"]["labelled"] == 6000 - trained.sum()
    unseen = analyze(registry / "better.jsonl", outcomes.iloc[4000:], "customer_id", "label", registry=reg)
    assert unseen["counts"]["rows_excluded_trained_on"] == 0 and unseen["counts"]["labelled"] == 2000
    assert "rows_excluded_trained_on" not in analyze(registry / "better.jsonl", outcomes, "customer_id", "label")["counts"]


def test_promote_winner_refused_when_few_untrained_rows_remain(registry):
    data = make_frame(6000, seed=21)
    data = data[_trained(registry, data.customer_id) | data.customer_id.between(4000, 4099)]
    write_csv(registry / "incoming.csv", data.drop(columns="target"))
    write_csv(registry / "outcomes.csv", data[["customer_id", "target"]])
    score = ["score", "incoming.csv", "--id-column", "customer_id", "--share", "0.5", "--out", "s.csv", "--log", "p.jsonl"]
    scored = run_script("ab_test.py", *score, cwd=registry)
    assert scored.returncode == 0, scored.stderr
    args = ["analyze", "--log", "p.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--promote-winner"]
    before = (registry / "models" / "version_log.json").read_bytes()
    proc = run_script("ab_test.py", *args, "--json", cwd=registry)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --promote-winner refused"), proc.stderr
    report = json.loads(proc.stdout)
    assert report["counts"]["rows_excluded_trained_on"] == len(data) - 100 and report["counts"]["labelled"] == 100
    assert "promoted" not in report and (registry / "models" / "version_log.json").read_bytes() == before


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT POSIX-style")
def test_ctrl_c_and_a_stuck_log_lock_exit_130_and_124(registry):
    """Ctrl+C while the prediction log's lock is held by another writer: exit 130, one line, no log lines, no output file."""
    from filelock import FileLock
    from helpers import interrupt_after

    from retraining.ab.predlog import append_atomically
    from retraining.errors import ExitCode, TimedOutError

    write_csv(registry / "incoming.csv", make_frame(500, seed=2).drop(columns="target"))
    score = ["score", "incoming.csv", "--id-column", "customer_id", "--out", "s.csv", "--log", "p.jsonl"]
    with FileLock(str(registry / "p.jsonl.lock")):
        code, out, err = interrupt_after("ab_test.py", *score, cwd=registry, line="Scoring", pause=2)  # scored by then, waiting for the lock
        with pytest.raises(TimedOutError, match=r"another writer held .*p\.jsonl\.lock for 0\.2 s") as stuck:
            append_atomically(registry / "p.jsonl", [np.frombuffer(b"{}\n", np.uint8)], timeout=0.2)
    assert code == ExitCode.INTERRUPTED and out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert stuck.value.exit_code == ExitCode.TIMED_OUT == 124
    assert not (registry / "s.csv").exists() and not (registry / "p.jsonl").exists()


def test_prediction_log_writer_for_other_processes(tmp_path):
    """log_predictions is what a live server calls: its lines read back like ab_test.py's, shadow blocks included."""
    from retraining.ab.predlog import log_predictions

    ids = np.arange(10)
    hashes = entity_hashes(ids, "exp")
    codes = assign_arms(hashes, 0.5)
    arms = {"versions": {CHAMPION: "v1.0.0", CHALLENGER: "v1.1.0"}, "shas": {CHAMPION: "a" * 64, CHALLENGER: "b" * 64}}
    path = tmp_path / "l.jsonl"
    log_predictions(path, hashes, codes, np.linspace(0, 1, 10), experiment="exp", share=0.5, at="2026-01-01T00:00:00.000Z", **arms)
    log_predictions(path, hashes, np.zeros(10, np.int8), np.full(10, 0.25), shadow_scores=np.full(10, 0.75), experiment="sh", share=0.5, **arms)
    logged = read_prediction_log(path)
    split, shadow = logged[logged.experiment == "exp"], logged[logged.experiment == "sh"]
    assert len(logged) == 30 and str(split.time.iloc[0]).startswith("2026-01-01") and (split.entity.to_numpy() == hashes).all()
    assert (split.variant.to_numpy() == np.where(codes == 1, CHALLENGER, CHAMPION)).all() and np.allclose(split.score, np.linspace(0, 1, 10))
    assert shadow.share.isna().all() and shadow.served.sum() == 10 and set(shadow.loc[~shadow.served, "model_version"]) == {"v1.1.0"}
    assert np.allclose(shadow.loc[~shadow.served, "score"], 0.75)


def test_ledgers_that_cannot_be_matched_are_said_and_promote_winner_refuses(registry):
    """A version without a ledger: its training rows cannot be left out, so nothing is promoted automatically."""
    from retraining.ab.analysis import promotion_refusal
    from retraining.registry import Registry

    outcomes = simulate(registry, "better", False)
    trained = _trained(registry, outcomes.customer_id)
    reg = Registry(registry / "models", registry / "catboost_model.cbm")
    renamed = analyze(registry / "better.jsonl", outcomes.rename(columns={"customer_id": "cust"}), "cust", "label", registry=reg)
    assert renamed["counts"]["rows_excluded_trained_on"] == trained.sum()  # the same ids under another name: matched by value
    assert "training_rows_unknown" not in renamed["counts"]
    (registry / "models" / "ledgers" / "v1.0.0.npz").unlink()  # as for a version made before ledgers
    r = analyze(registry / "better.jsonl", outcomes, "customer_id", "label", registry=reg)
    assert r["counts"]["training_rows_unknown"] == {"v1.0.0": "it has no training ledger (made before ledgers, or it was deleted)"}
    assert promotion_refusal(r).startswith("--promote-winner refused: the outcome rows may include rows a model trained on")


def test_a_torn_tail_is_fenced_before_the_next_append_and_readers_keep_every_complete_line(registry, caplog):
    """A scoring run died mid-line (disk full): the next run appends on a new line; the analysis skips the torn one."""
    outcomes = simulate(registry, "better", False, n=300)
    path = registry / "better.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:57])  # a line cut mid-way, no newline
    t = ab(registry, share=0.5, log_path=path)
    ids = np.arange(300, 500)
    hashes = entity_hashes(ids, t.salt)
    t.log_predictions(hashes, (assign_arms(hashes, 0.5) == 1).astype(np.int8), np.full(200, 0.5))
    lines = path.read_bytes().split(b"\n")
    assert lines[300] == whole.splitlines()[0][:57] and lines[301].startswith(b'{"format":2,"request_id"')  # fenced: a line of its own
    frame = read_prediction_log(path)
    assert len(frame) == 500 and frame.attrs["skipped_lines"] == 1
    assert "skipped 1 torn or invalid line(s) (first: line 301)" in caplog.text
    report = analyze(path, outcomes, "customer_id", "label")
    assert report["counts"]["skipped_log_lines"] == 1 and report["counts"]["labelled"] == 300
    assert "skipped 1 torn or invalid lines" in format_report(report)


def test_conflicting_labels_for_one_id_are_dropped_and_counted(registry):
    outcomes = simulate(registry, "better", False, n=400)
    flipped = outcomes.iloc[:25].assign(label=np.where(outcomes.label.iloc[:25] == "yes", "no", "yes"))
    repeated = outcomes.iloc[25:35]  # the same label twice: not a conflict
    report = analyze(registry / "better.jsonl", pd.concat([outcomes, flipped, repeated]), "customer_id", "label")
    assert report["counts"]["conflicting_ids"] == 25 and report["counts"]["labelled"] == 400 - 25
    assert "left out 25 ids with conflicting labels" in format_report(report)


def test_zero_padded_string_ids_join_by_their_text(registry):
    """A server logged the ids "0010000", ... (JSON strings); the outcomes CSV holds the same text (read as a number, it would not join)."""
    from helpers import run_main

    from retraining.ab import cli as ab_cli

    n = 600
    ids = [f"{i:07d}" for i in range(10_000, 10_000 + n)]  # "0010000", ...: no model trained on these ids
    t = ab(registry, share=0.5, log_path=registry / "server.jsonl")
    hashes = entity_hashes(ids, t.salt)  # what the server hashes: the strings as sent
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, n)
    t.log_predictions(hashes, (assign_arms(hashes, 0.5) == 1).astype(np.int8), 1 / (1 + np.exp(-(2 * y - 1) + rng.normal(size=n))))
    (registry / "outcomes.csv").write_text("customer_id,label\n" + "".join(f"{i},{v}\n" for i, v in zip(ids, y, strict=True)))
    ran = run_main(
        ab_cli.main,
        "analyze",
        "--id-column",
        "customer_id",
        "--log",
        "server.jsonl",
        "--outcomes",
        "outcomes.csv",
        "--label-column",
        "label",
        "--json",
        cwd=registry,
    )
    assert ran.returncode == 0, ran.stderr
    counts = json.loads(ran.stdout)["counts"]
    assert counts["labelled"] == n and counts["unknown_ids"] == 0 and counts["rows_excluded_trained_on"] == 0


def test_the_canonical_id_text_of_a_csv_cell():
    from retraining.data.keys import written_id_text

    cells = pd.Series(["00000", " 42 ", "42.0", "42.50", "-7", "-7.00", "A-01", "1e3", "0"])
    assert list(written_id_text(cells)) == ["00000", "42", "42", "42.50", "-7", "-7", "A-01", "1e3", "0"]
