"""The version log, promotion, rollback, recovery after a crash, and the lock."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import retrainer, sha

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
    assert (project / "models" / event["backup"]).is_file()
    log = r.version_history()
    assert log["production"] == "v1.0.0" and log["pending_promotion"] is None
    assert [e["event"] for e in log["events"]] == ["deploy", "deploy", "rollback"]
    assert r.promote_to_production("v1.1.0")["event"] == "promotion"
    assert r.promote_to_production("v1.1.0")["event"] == "none"  # already there
    backups = sorted((project / "models").glob("production_backup_*.cbm"))
    assert len(backups) == 3  # one per replacement of an existing production file


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
