"""Which deploy a bake window and the monitor's rollback judge: the event that brought the version in.

A promotion of the version already in production (``--promote`` of production to restore its
damaged file: the one case where such a promotion is recorded) changes no model. It must not hide the real deploy: before this was fixed, the
monitor found "no deploy to judge" and serve.py shadowed nothing after such a re-promotion.
"""

from __future__ import annotations

import json

from helpers import retrainer

from retraining.monitoring import bake
from retraining.serving.production import bake_event


def test_a_re_promotion_of_production_does_not_hide_the_deploy_it_repeats(project):
    r = retrainer(project, iterations=10)
    r.retrain()
    r.retrain(force=True)
    if r.production_version() != "v1.1.0":  # kept for review by the rule: promote it by hand
        r.promote_to_production("v1.1.0", reason="test")
    log_path = project / "models" / "version_log.json"
    brought_in = json.loads(log_path.read_text())["events"][-1]
    assert (brought_in["from"], brought_in["to"]) == ("v1.0.0", "v1.1.0")

    assert r.promote_to_production("v1.1.0")["event"] == "none"  # production's file is intact: nothing recorded
    (project / "catboost_model.cbm").write_bytes(b"overwritten by a colleague")
    r.promote_to_production("v1.1.0", reason="restore the production file")  # production to itself, recorded
    data = json.loads(log_path.read_text())
    assert (data["events"][-1]["from"], data["events"][-1]["to"]) == ("v1.1.0", "v1.1.0")

    judged = bake.current_deploy(data)
    assert judged is not None and (judged["at"], judged["from"], judged["to"]) == (brought_in["at"], "v1.0.0", "v1.1.0")
    served = bake_event(r.registry, "v1.1.0")
    assert served is not None and (served.at, served.from_, served.to) == (brought_in["at"], "v1.0.0", "v1.1.0")


def test_no_deploy_to_judge_before_a_second_version_or_after_the_monitors_own_rollback(project):
    r = retrainer(project, iterations=10)
    r.retrain()
    data = json.loads((project / "models" / "version_log.json").read_text())
    assert bake.current_deploy(data) is None  # the first model replaced nothing
    data["events"].append({"event": "promotion", "at": "2026-12-06T05:00:00Z", "from": "v0.9.0", "to": data["production"], "details": {"by": bake.MONITOR}})
    assert bake.current_deploy(data) is None  # the monitor's own rollback is never judged against what it undid
    data["events"][-1]["details"] = {}
    assert bake.current_deploy(data)["from"] == "v0.9.0"
