"""A damaged version log, in every shape a reliability review produced: exit 3 and one line naming the key.

Each variant damages a real log (one run's), then runs ``retrain_model.py`` in-process: the run
must stop before training with ``error: .../version_log.json is corrupted...`` naming where, exit 3,
and leave the models folder and production exactly as they were.
"""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import make_frame, run_main, snapshot, write_csv

from retraining.cli import retrain as retrain_cli

FAST = ("--data", "data.csv", "--iterations", "10", "--threads", "1", "--lock-timeout", "5", "--no-report")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder after one deploying run: data.csv, models/, catboost_model.cbm."""
    folder = tmp_path_factory.mktemp("trained")
    write_csv(folder / "data.csv", make_frame(300))
    ran = run_main(retrain_cli.main, *FAST, "-q", cwd=folder)
    assert ran.returncode == 0, ran.stderr
    return folder


def _set(key, value):
    return lambda log: log.__setitem__(key, value)


def _entry(key, value):
    return lambda log: log["versions"][0].__setitem__(key, value)


def _event(key, value):
    return lambda log: log["events"][0].__setitem__(key, value)


def _pending(**changes):
    def damage(log):
        log["pending_promotion"] = {"kind": "promotion", "from": None, "to": "v1.0.0", "sha256": log["versions"][0]["sha256"], "reason": "x", **changes}

    return damage


# (id, damage: a function of the parsed log or a function of the text, words the one line must hold)
VARIANTS = [
    ("pending a string", _set("pending_promotion", "v1.0.0"), "'pending_promotion'"),
    ("pending an integer", _set("pending_promotion", 7), "'pending_promotion'"),
    ("pending a list", _set("pending_promotion", ["v1.0.0"]), "'pending_promotion'"),
    ("pending without to", _pending(to=None), "'pending_promotion': 'to'"),
    ("pending to a bad name", _pending(to="latest"), "'pending_promotion': 'to'"),
    ("pending unknown kind", _pending(kind="upgrade"), "'pending_promotion': 'kind'"),
    ("pending sha256 an integer", _pending(sha256=12), "'pending_promotion': 'sha256'"),
    ("pending sha256 not hex", _pending(sha256="z" * 64), "'pending_promotion': 'sha256'"),
    ("pending from an integer", _pending(**{"from": 3}), "'pending_promotion': 'from'"),
    ("events integers", _set("events", [1, 2, 3]), "events[0]"),
    ("events an object", _set("events", {"a": 1}), "'events'"),
    ("event a string", _set("events", ["deploy"]), "events[0]"),
    ("event to an integer", _event("to", 1), "events[0]: 'to'"),
    ("event reason a list", _event("reason", ["a"]), "events[0]: 'reason'"),
    ("event kind null", _event("event", None), "events[0]: 'event'"),
    ("versions null", _set("versions", None), "'versions'"),
    ("versions an object", _set("versions", {"v1.0.0": {}}), "'versions'"),
    ("versions integers", _set("versions", [1]), "versions[0]"),
    ("version name an integer", _entry("version", 100), "versions[0]: 'version'"),
    ("version sha256 missing", lambda log: log["versions"][0].pop("sha256") and None, "versions[0]: 'sha256'"),
    ("version sha256 short", _entry("sha256", "abc"), "versions[0]: 'sha256'"),
    ("version metrics a string", _entry("metrics", "0.9"), "versions[0]: 'metrics'"),
    ("version features a string", _entry("features", "x1"), "versions[0]: 'features'"),
    ("version listed twice", lambda log: log["versions"].append(dict(log["versions"][0])), "versions[1]"),
    ("production an integer", _set("production", 1), "'production'"),
    ("production a bad name", _set("production", "../../etc/passwd"), "'production'"),
    ("format a string", _set("format", "1"), "'format'"),
    ("format a boolean", _set("format", True), "'format'"),
    ("format zero", _set("format", 0), "'format'"),
    ("archive outside", _set("archive", ["../x.json"]), "'archive'"),
    ("top level a list", lambda log: [log], "'versions'"),
    ("NaN literal", lambda text: text.replace('"roc_auc":', '"roc_auc":NaN,"was":', 1), "roc_auc"),
    ("Infinity literal", lambda text: text.replace('"production":', '"production_auc":-Infinity,"production":', 1), "production_auc"),
    ("rows a 30-digit number", lambda text: text.replace('"rows":', '"rows":' + "9" * 30 + ',"was":', 1), "rows"),
    ("truncated", lambda text: text[: len(text) // 2], "not valid JSON"),
    ("empty file", lambda text: "", "not valid JSON"),
    ("not UTF-8", lambda text: text.replace("deployed", "d\udcffployed", 1), "not valid JSON"),
]
TEXT_DAMAGE = {"NaN literal", "Infinity literal", "rows a 30-digit number", "truncated", "empty file", "not UTF-8"}


@pytest.mark.parametrize("name, damage, words", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_a_damaged_log_is_exit_3_and_one_line_naming_the_key(trained, tmp_path, name, damage, words):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "models" / "version_log.json"
    if name in TEXT_DAMAGE:
        text = damage(path.read_text(encoding="utf-8"))
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    else:
        log = json.loads(path.read_text(encoding="utf-8"))
        log = damage(log) or log
        path.write_text(json.dumps(log), encoding="utf-8")
    before = snapshot(tmp_path)
    for action in ((), ("--history",), ("--promote", "v1.0.0")):
        ran = run_main(retrain_cli.main, *FAST, *action, cwd=tmp_path)
        lines = [line for line in ran.stderr.splitlines() if line.strip() and " INFO " not in line]
        assert ran.returncode == 3, (action, ran.stderr)
        assert len(lines) == 1, (action, ran.stderr)
        assert lines[0].startswith("error: ") and "version_log.json" in lines[0] and words in lines[0], (action, lines[0])
        assert "Traceback" not in ran.stderr and ran.stdout == ""
    assert snapshot(tmp_path) == before
