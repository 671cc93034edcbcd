"""monitor.py on damaged prediction logs: one clear line, ExitCode.BAD_INPUT, nothing written.

Like a torn line (tests/test_monitor.py), a line whose date is impossible or missing, and a
log whose production lines repeat request ids that bake-shadow lines refer to (a file
appended twice), stop the run with the file, the line and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import snapshot
from test_monitor import deployed, monitor, traffic, write_csv, write_log  # noqa: F401  (deployed is a fixture)

from retraining.errors import ExitCode


def _one_line_error(ran) -> str:
    assert ran.returncode == ExitCode.BAD_INPUT, (ran.returncode, ran.stderr)
    lines = [ln for ln in ran.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in ran.stderr, ran.stderr
    return lines[0]


def _damage_line(path: Path, number: int, old: str, new: str) -> str:
    lines = path.read_bytes().split(b"\n")
    assert old.encode() in lines[number]
    lines[number] = lines[number].replace(old.encode(), new.encode(), 1)
    path.write_bytes(b"\n".join(lines))
    return json.loads(lines[number])["request_id"]


def test_impossible_date_is_one_line_naming_the_line(deployed: Path) -> None:  # noqa: F811
    live = traffic(n=300)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    request = _damage_line(deployed / "predictions.jsonl", 150, '"time":"2026-12-01', '"time":"2026-02-30')
    before = snapshot(deployed)
    line = _one_line_error(monitor(deployed))
    assert "predictions.jsonl" in line and request in line and "2026-02-30" in line and "delete that line" in line, line
    assert snapshot(deployed) == before


def test_missing_time_is_one_line(deployed: Path) -> None:  # noqa: F811
    live = traffic(n=300)
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    request = _damage_line(deployed / "predictions.jsonl", 7, '"time":"2026-12-01T10:00:00.000Z"', '"time":null')
    line = _one_line_error(monitor(deployed))
    assert request in line and "None" in line, line


def test_repeated_request_ids_with_bake_shadow_lines_are_one_line(deployed: Path) -> None:  # noqa: F811
    live = traffic(n=300)
    log = deployed / "predictions.jsonl"
    write_log(log, deployed, live, "v1.0.0", previous="v1.0.0")
    log.write_bytes(log.read_bytes() * 2)  # the same file appended twice
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    before = snapshot(deployed)
    line = _one_line_error(monitor(deployed))
    assert "predictions.jsonl" in line and "300 production lines repeat" in line and "appended twice" in line, line
    assert snapshot(deployed) == before


def test_repeated_request_ids_no_shadow_line_refers_to_still_pair_the_others(deployed: Path) -> None:  # noqa: F811
    live = traffic(n=300)
    log = deployed / "predictions.jsonl"
    write_log(log, deployed, live.iloc[:200], "v1.0.0", previous="v1.0.0")  # 200 production + 200 shadow lines
    write_log(log, deployed, live.iloc[200:], "v1.0.0")
    tail = log.read_bytes().split(b"\n")[400:-1]
    log.write_bytes(log.read_bytes() + b"\n".join(tail) + b"\n")  # the 100 unshadowed lines repeated
    write_csv(deployed / "outcomes.csv", live[["customer_id", "target"]])
    ran = monitor(deployed, "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["versions"][0]["rows"] == 400, report["versions"][0]
