"""The deploy rule (#27): "equal" within the holdout's noise, the slow-slide guard, ``--rule strict``.

Expected p-values come from scipy's normal distribution and expected drops from the
AUCs written in the test, never from the rule under test.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import make_frame, retrainer, run_main, write_csv
from scipy.stats import norm

from retraining.errors import ExitCode
from retraining.evaluation import AucComparison, compare_auc
from retraining.records import VersionEntry
from retraining.rules import DeployRule, apply_slide, judge, p_worse

ALPHA = 0.05


def comparison_with_p_worse(p: float) -> AucComparison:
    """A DeLong result whose one-sided p for "candidate worse" is ``p`` (z = Phi^-1(p), by scipy)."""
    z = float(norm.ppf(p))
    return AucComparison(0.8, 0.81, -0.01, z, 2 * norm.sf(abs(z)), float(norm.sf(z)), -0.02, 0.0, 50, 50)


def test_p_worse_is_the_other_side_of_the_recorded_one_sided_p():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 1.2, 300)
    cmp = compare_auc(y, good + rng.normal(0, 0.8, 300), good)
    assert p_worse(cmp) == pytest.approx(float(norm.cdf(cmp.z)), abs=1e-12)
    assert p_worse(cmp) + cmp.p_value_one_sided == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("p", "candidate", "champion", "deploys"),
    [
        (ALPHA + 1e-4, 0.8460, 0.8500, True),  # p just over alpha, drop 0.0040 < margin
        (ALPHA - 1e-4, 0.8460, 0.8500, False),  # p just under alpha: significantly worse
        (0.40, 0.8450, 0.8500, True),  # drop exactly the margin: equal
        (0.40, 0.844999, 0.8500, False),  # drop 0.005001: just over the margin
        (0.40, 0.8450, 0.8500001, False),
        (0.01, 0.8500, 0.8500, True),  # a tie deploys whatever the test says
        (0.01, 0.8600, 0.8500, True),  # better deploys
    ],
)
def test_noise_rule_at_its_edges(p, candidate, champion, deploys):
    out = judge(DeployRule(), candidate, champion, comparison_with_p_worse(p))
    assert out.deploy is deploys and out.rule == "noise"
    assert out.drop == pytest.approx(champion - candidate, abs=1e-9)
    if candidate < champion:
        assert out.p_worse == pytest.approx(p, abs=1e-9)
        assert out.verdict == ("within noise" if deploys else "worse")


def test_the_why_line_says_which_rule_decided_and_on_what_numbers():
    cmp = comparison_with_p_worse(0.28)
    out = judge(DeployRule(), 0.8506, 0.8524, cmp)
    expected = "ROC-AUC 0.8506 vs 0.8524: equal within noise (DeLong one-sided p = 0.28, drop 0.0018 <= 0.005; the fresher model wins): deployed"
    assert out.reason == expected and out.within_noise
    held = judge(DeployRule(), 0.8294, 0.8428, comparison_with_p_worse(0.01))
    numbers = "DeLong one-sided p = 0.01, drop 0.0134; p < 0.05: significantly worse, drop > margin 0.005"
    assert held.reason == f"ROC-AUC 0.8294 vs 0.8428: worse ({numbers}): kept for review"
    assert not held.within_noise


def test_alpha_and_margin_are_settings():
    cmp = comparison_with_p_worse(0.08)
    assert judge(DeployRule(), 0.842, 0.85, cmp).deploy is False  # drop 0.008 > 0.005
    assert judge(DeployRule(margin=0.01), 0.842, 0.85, cmp).deploy is True
    assert judge(DeployRule(margin=0.01, alpha=0.10), 0.842, 0.85, cmp).deploy is False  # 0.08 < 0.10


def test_strict_is_exactly_greater_or_equal_on_the_raw_numbers():
    rule = DeployRule(rule="strict")
    noisy = comparison_with_p_worse(0.9)
    assert judge(rule, 0.8500, 0.8500, noisy).deploy is True
    out = judge(rule, 0.849999, 0.85, noisy)
    assert out.deploy is False and out.rule == "strict" and "--rule strict" in out.reason and "worse" in out.reason
    assert judge(rule, 0.850001, 0.85, comparison_with_p_worse(0.001)).deploy is True
    assert judge(DeployRule(), 0.849999, 0.85, noisy).deploy is True  # the same numbers: noise deploys


def test_without_a_paired_test_the_noise_rule_falls_back_to_strict():
    out = judge(DeployRule(), 0.849, 0.85, None, "compared with its recorded ROC-AUC")
    assert out.deploy is False and out.rule == "strict" and "no paired test" in out.why


def test_stricter_gates_still_work_on_top():
    within = comparison_with_p_worse(0.4)
    assert judge(DeployRule(min_auc=0.9), 0.85, None, None).verdict == "floor"
    assert judge(DeployRule(min_auc=0.9), 0.89, 0.88, within).deploy is False
    out = judge(DeployRule(min_improvement=0.001), 0.849, 0.85, within)  # within noise, but no gain
    assert out.deploy is False and "--min-improvement" in out.why
    assert judge(DeployRule(min_improvement=0.001), 0.852, 0.85, within).deploy is True
    better_not_significant = comparison_with_p_worse(0.6)  # p (better) = 0.4 >= alpha
    out = judge(DeployRule(require_significance=True), 0.852, 0.85, better_not_significant)
    assert out.deploy is False and out.verdict == "not significant"
    assert judge(DeployRule(require_significance=True), 0.852, 0.85, comparison_with_p_worse(0.99)).deploy is True
    assert judge(DeployRule(require_significance=True, rule="strict"), 0.9, 0.8, None).deploy is False


def slide(auc: float, candidate_auc: float) -> dict:
    return {"versions": [], "skipped": [], "best": {"version": "v1.2.0", "auc": auc, "candidate_auc": candidate_auc, "rows": 400}}


def test_slide_guard_holds_more_than_the_margin_below_the_best_recent_version():
    base = judge(DeployRule(), 0.85, 0.85, comparison_with_p_worse(0.5))
    assert apply_slide(DeployRule(), base, slide(0.855, 0.85)).deploy is True  # exactly the margin
    held = apply_slide(DeployRule(), base, slide(0.855001, 0.85))
    assert held.deploy is False and held.verdict == "slide" and "v1.2.0" in held.why and "no slow slide" in held.why
    assert apply_slide(DeployRule(margin=0.01), base, slide(0.855001, 0.85)).deploy is True
    strict = judge(DeployRule(rule="strict"), 0.85, 0.85, None)
    assert apply_slide(DeployRule(rule="strict"), strict, slide(0.9, 0.85)).deploy is True


# -- real runs ----------------------------------------------------------------------------------
def test_a_slow_slide_is_held_and_a_version_without_a_ledger_is_skipped_and_said(project):
    retrainer(project, iterations=150).retrain()  # v1.0.0: strong
    weak = retrainer(project, iterations=2, depth=1).retrain()  # v1.1.0: far weaker, kept
    assert weak.status == "kept for review" and weak.rule["verdict"] == "worse"
    retrainer(project).promote_to_production("v1.1.0", reason="test: a weak production model")
    again = retrainer(project, iterations=2, depth=1).retrain(force=True)  # equal to production, far below v1.0.0
    assert again.status == "kept for review" and again.rule["verdict"] == "slide", again.reason
    best = again.rule["slide"]["best"]
    assert best["version"] == "v1.0.0" and best["auc"] - best["candidate_auc"] > 0.005
    assert "v1.0.0" in again.reason and "no slow slide" in again.reason
    off = retrainer(project, iterations=2, depth=1, recent_versions=0).retrain(force=True)
    assert off.status == "deployed" and off.rule["slide"] is None
    (project / "models" / "ledgers" / "v1.0.0.npz").unlink()
    skipped = retrainer(project, iterations=2, depth=1).retrain(force=True)
    assert skipped.status == "deployed", skipped.reason
    assert any(s.startswith("v1.0.0: no row ledger") for s in skipped.rule["slide"]["skipped"])
    assert "slow-slide guard skipped v1.0.0: no row ledger" in skipped.summary()


def test_slide_guard_leaves_out_each_versions_own_training_rows(tmp_path):
    """A version scored on rows it trained on looks better than it is: the guard must not count them."""
    from sklearn.metrics import roc_auc_score

    from retraining.guard.ledger import in_training, load_ledger, save_ledger
    from retraining.guard.slide import recent_best, recent_entries
    from retraining.training import as_categoricals, load_model

    frame = make_frame(800, seed=5)
    write_csv(tmp_path / "data.csv", frame.iloc[:500])
    retrainer(tmp_path, iterations=60).retrain()
    write_csv(tmp_path / "data.csv", frame)
    r = retrainer(tmp_path, iterations=60)
    r.retrain()
    ds = r.load_data()
    # v1.0.0 as if it had trained on half of tonight's holdout (a split that changed): those rows must not count
    path = r.registry.artifact_path("ledger", "v1.0.0")
    ledger = load_ledger(path)
    holdout_keys = np.asarray(ds.keys, dtype=np.uint64)[ds.holdout]
    ledger.train = np.sort(np.concatenate([ledger.train, holdout_keys[::2]]))
    save_ledger(ledger, path)
    entries = recent_entries(r.registry.read_log(), 5)
    assert [e["version"] for e in entries] == ["v1.1.0", "v1.0.0"]
    got = recent_best(r.registry, entries, ds, load_model(r.registry.version_path("v1.1.0")))
    rows = {row["version"]: row["rows"] for row in got["versions"]}
    assert rows == {"v1.1.0": int(ds.holdout.sum()), "v1.0.0": int(ds.holdout.sum()) - len(holdout_keys[::2])}
    y, kept = ds.y, ds.holdout & ~in_training(ds, ledger)
    v1 = load_model(r.registry.version_path("v1.0.0"))
    expected = roc_auc_score(y[kept], v1.predict_proba(as_categoricals(ds.X.loc[kept, v1.feature_names_], ds.cat_features))[:, 1])
    assert [row["auc"] for row in got["versions"] if row["version"] == "v1.0.0"] == [pytest.approx(expected, abs=1e-6)]
    assert got["skipped"] == []


def test_log_entry_json_and_cli_carry_rule_alpha_margin_p_and_drop(project):
    from retrain_model import main

    assert run_main(main, "--data", "data.csv", "--iterations", "30", "--threads", "2", "--no-report", cwd=project).returncode == 0
    ran = run_main(main, "--data", "data.csv", "--iterations", "30", "--seed", "7", "--threads", "2", "--no-report", "--json", "--margin", "0.02", cwd=project)
    assert ran.returncode == ExitCode.OK, ran.stderr
    result = json.loads(ran.stdout)
    rule = result["rule"]
    assert {"rule", "alpha", "margin", "verdict", "p_worse", "drop", "slide"} <= set(rule)
    assert rule["rule"] == "noise" and rule["alpha"] == 0.05 and rule["margin"] == 0.02
    assert rule["drop"] == pytest.approx(result["champion_auc"] - result["candidate_auc"], abs=1e-6)
    assert rule["p_worse"] == pytest.approx(float(norm.cdf(result["delong"]["z"])), abs=1e-6)
    assert result["within_noise"] == (rule["verdict"] == "within noise")
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["versions"][-1]["rule"]["verdict"] == rule["verdict"]  # the log keeps it, not only the metadata file
    argv = ("--data", "data.csv", "--iterations", "30", "--seed", "8", "--threads", "2", "--no-report", "--json", "--rule", "strict")
    strict = run_main(main, *argv, cwd=project)
    out = json.loads(strict.stdout)
    assert out["rule"]["rule"] == "strict" and out["rule"]["slide"] is None
    assert out["rule"]["p_worse"] == pytest.approx(float(norm.cdf(out["delong"]["z"])), abs=1e-6)  # recorded under strict too
    assert (out["status"] == "deployed") == (out["candidate_auc"] >= out["champion_auc"])


@pytest.mark.parametrize(("flag", "value", "words"), [("--alpha", "1.5", "alpha"), ("--margin", "-0.1", "margin"), ("--recent-versions", "-1", "recent")])
def test_bad_rule_settings_are_one_line_and_nothing_written(project, flag, value, words):
    from retrain_model import main

    ran = run_main(main, "--data", "data.csv", flag, value, cwd=project)
    assert ran.returncode == ExitCode.BAD_INPUT and words in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert not (project / "models").exists()


def test_old_version_logs_without_the_rule_numbers_still_read(project):
    from retraining.mlflow_sync import rule_tags
    from retraining.report.html import rule_paragraph

    retrainer(project, iterations=30).retrain()
    log_path = project / "models" / "version_log.json"
    log = json.loads(log_path.read_text())
    for entry in log["versions"]:
        entry.pop("rule", None)  # written before #27
    log_path.write_text(json.dumps(log))
    meta = project / "models" / "metadata" / "v1.0.0.json"
    old = json.loads(meta.read_text())
    old["rule"] = {"min_improvement": 0.0, "require_significance": False, "alpha": 0.05, "min_auc": None}  # the pre-#27 settings
    meta.write_text(json.dumps(old))
    assert VersionEntry.from_json(old).to_log_json()["rule"] == old["rule"]
    assert rule_paragraph(old["rule"]) == "" and rule_tags(old["rule"]) == {"retrain.rule.alpha": "0.05"} and rule_tags({}) == {}
    r = retrainer(project, iterations=30, seed=3)
    assert r.regenerate_report("v1.0.0").is_file()
    result = r.retrain(force=True)
    assert result.rule["verdict"] in ("better", "equal", "within noise", "worse", "slide")
    html = r.regenerate_report(result.version).read_text()
    assert "Deploy rule: noise" in html
    shutil.rmtree(project / "models" / "reports")


def test_notifications_tell_a_loss_from_a_deploy_within_noise():
    from retraining.notify import run_message

    held = {"status": "kept for review", "version": "v1.3.0", "production": "v1.2.0", "reason": "worse", "rule": {"verdict": "worse"}}
    _, body = run_message(held, ["review"])
    assert 'python retrain_model.py --promote v1.3.0 --reason "' in body  # the exact command that overrules the hold
    noise = {"status": "deployed", "version": "v1.3.0", "production": "v1.3.0", "production_before": "v1.2.0", "within_noise": True}
    title, body = run_message(noise, ["deployed"])
    assert title.endswith("deployed to production (was v1.2.0): equal within noise")
    assert "--promote v1.2.0" in body  # the command that undoes it, not one that deploys v1.3.0 again
