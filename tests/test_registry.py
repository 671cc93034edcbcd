"""The version log, promotion, rollback, recovery after a crash, and the lock."""

from __future__ import annotations

import io
import json
import re
import threading

import pytest
from helpers import retrainer, sha

from retraining.errors import BusyError, StateError, VersionNotFoundError
from retraining.registry import Registry, bump, parse_version


def test_semver_bumps():
    assert bump(None, False) == "v1.0.0"
    assert bump("v1.0.0", False) == "v1.1.0"
    assert bump("v1.9.0", False) == "v1.10.0"
    assert bump("v1.4.0", True) == "v2.0.0"
    assert parse_version("v10.2.3") == (10, 2, 3)


@pytest.mark.parametrize("bad", ["1.0.0", "v1.0", "../x", "v1.0.0/../../etc", "v01.0.0", "", "v1.0.0 "])
def test_malformed_versions_refused(tmp_path, bad):
    reg = Registry(tmp_path / "m", tmp_path / "p.cbm")
    with pytest.raises(VersionNotFoundError, match="not a version name"):
        reg.find({"versions": []}, bad)


@pytest.fixture
def two_versions(project):
    """v1.0.0 in production, v1.1.0 deployed after it (forced retrain, equal AUC deploys)."""
    r = retrainer(project)
    first = r.retrain()
    second = r.retrain(force=True)
    assert first.deployed and second.deployed
    return r


def test_rollback_and_forward_again(two_versions, project):
    r = two_versions
    prod = project / "catboost_model.cbm"
    log = r.version_history()
    v1 = next(e for e in log["versions"] if e["version"] == "v1.0.0")
    event = r.promote_to_production("v1.0.0")
    assert event["event"] == "rollback" and event["from"] == "v1.1.0" and event["to"] == "v1.0.0"
    assert sha(prod) == v1["sha256"]
    v11 = next(e for e in log["versions"] if e["version"] == "v1.1.0")
    assert sha(project / "models" / event["backup"]) == v11["sha256"]  # the backup is the production it replaced
    log = r.version_history()
    assert log["production"] == "v1.0.0" and log["pending_promotion"] is None
    assert [e["event"] for e in log["events"]] == ["deploy", "deploy", "rollback"]
    assert r.promote_to_production("v1.1.0")["event"] == "promotion"
    assert r.promote_to_production("v1.1.0")["event"] == "none"  # already there
    backups = sorted((project / "models").glob("production_backup_*.cbm"))
    assert len(backups) == 3  # one per replacement of an existing production file: the deploy of v1.1.0, the rollback, the promotion
    assert sorted(sha(b) for b in backups) == sorted([v1["sha256"], v11["sha256"], v1["sha256"]])  # each holds what it replaced


def test_promote_refuses_unknown_and_tampered_versions(two_versions, project):
    r = two_versions
    before = (project / "models" / "version_log.json").read_bytes(), sha(project / "catboost_model.cbm")
    with pytest.raises(VersionNotFoundError, match=r"v9\.0\.0 is not in"):
        r.promote_to_production("v9.0.0")
    with pytest.raises(VersionNotFoundError, match="not a version name"):
        r.promote_to_production("../catboost_model")
    (project / "models" / "catboost_model_v1.0.0.cbm").write_bytes(b"tampered")
    with pytest.raises(StateError, match="does not match the sha256"):
        r.promote_to_production("v1.0.0")
    (project / "models" / "catboost_model_v1.0.0.cbm").unlink()
    with pytest.raises(StateError, match="is missing"):
        r.promote_to_production("v1.0.0")
    assert before == ((project / "models" / "version_log.json").read_bytes(), sha(project / "catboost_model.cbm"))


def test_corrupted_and_future_logs(project):
    r = retrainer(project)
    (project / "models").mkdir()
    log_path = project / "models" / "version_log.json"
    log_path.write_text('{"format": 1, "versions": [')
    with pytest.raises(StateError, match=r"corrupted \(line 1, column"):
        r.print_version_history()
    log_path.write_text(json.dumps({"format": 99, "versions": []}))
    with pytest.raises(StateError, match="format 99"):
        r.retrain()
    assert not (project / "catboost_model.cbm").exists()


def test_interrupted_promotion_is_finished_by_the_next_run(two_versions, project):
    """Simulate a kill after the intent was written but before production was replaced."""
    r = two_versions
    reg = r.registry
    data = reg.read_log()
    v1 = reg.find(data, "v1.0.0")
    data["pending_promotion"] = {
        "kind": "rollback",
        "from": "v1.1.0",
        "to": "v1.0.0",
        "sha256": v1["sha256"],
        "reason": "test",
        "started_at": "x",
    }
    reg.write_log(data)
    leftover = project / "models" / ".catboost_model.cbm.abc.partial"
    leftover.write_bytes(b"half a model")
    assert r.retrain().status == "unchanged"  # any run tidies up first
    data = reg.read_log()
    assert data["production"] == "v1.0.0" and data["pending_promotion"] is None
    assert "interrupted" in data["events"][-1]["reason"]
    assert sha(project / "catboost_model.cbm") == v1["sha256"]
    assert not leftover.exists()


def test_second_run_waits_then_reports_busy(project):
    r = retrainer(project, lock_timeout=0.2)
    held = threading.Event()
    release = threading.Event()

    def hold():
        with r.registry.locked():
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(BusyError, match="busy: another retrain or promotion holds"):
            r.promote_to_production("v1.0.0")
    finally:
        release.set()
        t.join()


def test_logs_written_before_slim_entries_still_work(project):
    """Format 1 logs from before models/metadata/ existed: indented, full entries, with 'schema'."""
    r = retrainer(project)
    r.retrain()
    log_path = project / "models" / "version_log.json"
    data = json.loads(log_path.read_text())
    full = json.loads((project / "models" / "metadata" / "v1.0.0.json").read_text())
    assert "schema" in full and "schema" not in data["versions"][0]  # the log keeps a summary only
    data["versions"] = [full]
    log_path.write_text(json.dumps(data, indent=2))  # the old layout
    (project / "models" / "metadata" / "v1.0.0.json").unlink()
    assert r.registry.full_entry(r.version_history(), "v1.0.0")["schema"] == full["schema"]
    again = r.retrain(force=True)
    assert again.version == "v1.1.0"  # same schema: a minor bump, read from the old entry
    assert r.promote_to_production("v1.0.0")["event"] == "rollback"
    assert "v1.0.0" in r.regenerate_report("v1.0.0").name


def test_old_versions_move_to_history_and_still_work(project):
    """Past archive_at versions, all but the newest archive_keep move to models/history/."""
    r = retrainer(project, report=False)
    r.registry.archive_at, r.registry.archive_keep = 4, 2
    for _ in range(6):  # --force on equal data: a tie every time, so every version deploys
        assert r.retrain(force=True).deployed
    models = project / "models"
    live = json.loads((models / "version_log.json").read_text())
    assert live["format"] == 2 and live["archive"] == ["history/version_log_0001.json"]
    assert [e["version"] for e in live["versions"]] == ["v1.3.0", "v1.4.0", "v1.5.0"]
    part = json.loads((models / "history" / "version_log_0001.json").read_text())
    assert [e["version"] for e in part["versions"]] == ["v1.0.0", "v1.1.0", "v1.2.0"]
    whole = r.version_history()
    assert [e["version"] for e in whole["versions"]] == [f"v1.{i}.0" for i in range(6)]
    assert [ev["to"] for ev in whole["events"]] == [f"v1.{i}.0" for i in range(6)]  # none lost, none twice
    # an archived version can still be promoted, and --history still shows it
    event = r.promote_to_production("v1.0.0")
    assert event["event"] == "rollback" and sha(project / "catboost_model.cbm") == part["versions"][0]["sha256"]
    out = io.StringIO()
    r.print_version_history(file=out)
    assert re.search(r"^\*\s+v1\.0\.0\s", out.getvalue(), re.M) and re.search(r"^\s+v1\.5\.0\s", out.getvalue(), re.M)
    # with production archived, the next run compares against it all the same
    result = r.retrain(force=True)
    assert result.champion_version == "v1.0.0" and result.version == "v1.6.0"
    # a missing or damaged archive file is one clear error, not a traceback or a silent gap
    (models / "history" / "version_log_0001.json").rename(models / "aside.json")
    with pytest.raises(StateError, match=r"version_log_0001\.json is missing"):
        retrainer(project).print_version_history(file=io.StringIO())
    (models / "history" / "version_log_0001.json").write_text("{not json")
    with pytest.raises(StateError, match=r"version_log_0001\.json is corrupted"):
        retrainer(project).promote_to_production("v1.1.0")


def test_archive_names_outside_history_are_refused(project):
    r = retrainer(project)
    (project / "models").mkdir()
    (project / "models" / "version_log.json").write_text(json.dumps({"format": 2, "versions": [], "archive": ["../../etc/passwd"]}))
    with pytest.raises(StateError, match="'archive' must list files like history/"):
        r.print_version_history(file=io.StringIO())
