"""Notifications (retraining/notify.py) against real receivers on 127.0.0.1.

A real HTTP server takes Apprise's json:// posts, a real SMTP server (aiosmtpd) takes the
e-mail with the report attached, a silent TCP listener stands for an unreachable target.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, free_port, make_frame, retrain_main, run_script, write_csv

from retraining import notify
from retraining.cli import notify as notify_cli
from retraining.cli import retrain as retrain_cli
from retraining.errors import UsageError

SECRET = "S3cr3tT0kenXYZ"


class Receiver:
    """A webhook endpoint: records every POST (path and JSON body)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                size = int(self.headers.get("Content-Length", 0))
                received.append({"path": self.path, "body": json.loads(self.rfile.read(size) or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def silent_port():
    """Accepts TCP connections (the kernel's backlog) and never answers: a hung webhook."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


class Inbox:
    """aiosmtpd handler: keeps every message's recipients and raw bytes."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1; yields (mailto URL, inbox)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"mailto://127.0.0.1:{port}?to=reviewer@example.com&from=retrain@example.com&mode=insecure", inbox
    controller.stop()


def ours(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "retraining.notify"]


REVIEW = {
    "status": "kept for review",
    "version": "v1.3.0",
    "reason": "candidate ROC-AUC 0.7012 < champion 0.7440",
    "production": "v1.2.0",
    "candidate_auc": 0.7012,
    "champion_auc": 0.744,
    "champion_version": "v1.2.0",
    "delong": {"p_value": 0.0312, "delta": -0.0428},
    "report_path": None,
    "drift": None,
    "checks": [],
}
BLOCKED = {
    **REVIEW,
    "version": "v1.4.0",
    "reason": "blocked by data check label_rate",
    "checks": [
        {"name": "label_rate", "severity": "block", "columns": ["target"], "message": "positive rate 0.91 vs 0.30 before"},
        {"name": "new_category", "severity": "warn", "columns": ["c1"], "message": "2 unseen values"},
    ],
}


def message(post: dict) -> str:
    return post["body"]["title"] + "\n" + post["body"]["message"]


def test_review_message_names_version_reason_aucs_and_production(receiver):
    sent = notify.Notifier([receiver.url()]).notify_run(REVIEW)
    assert sent == ["review"]
    text = message(receiver.posts[0])
    first = receiver.posts[0]["body"]["message"].splitlines()[0]
    assert first == "v1.3.0 kept for manual review; production stays v1.2.0"
    for part in ("version: v1.3.0", "production: v1.2.0 -> v1.2.0", "candidate 0.7012", "champion v1.2.0 0.7440", "DeLong p = 0.0312", REVIEW["reason"]):
        assert part in text


def test_review_message_says_where_and_what_to_run_next(receiver, tmp_path):
    report = tmp_path / "models" / "reports" / "v1.3.0.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html><body>Report v1.3.0</body></html>", encoding="utf-8")
    result = {**REVIEW, "report_path": "models/reports/v1.3.0.html", "model_path": "models/catboost_model_v1.3.0.cbm"}
    assert notify.Notifier([receiver.url()], project=tmp_path).notify_run(result) == ["review"]
    lines = receiver.posts[0]["body"]["message"].splitlines()
    assert lines[1].startswith(f'next: cd {tmp_path.resolve()}; python retrain_model.py --promote v1.3.0 --reason "..."')
    assert f"project: {tmp_path.resolve()}" in lines and f"host: {socket.gethostname()}" in lines
    assert f"report: {report.resolve()}" in lines and "report URL: file://" + report.resolve().as_posix() in lines
    assert receiver.posts[0]["body"]["type"] == "warning"
    attached = receiver.posts[0]["body"]["attachments"]  # json:// takes attachments: the report travels with the message
    assert [a["filename"] for a in attached] == ["v1.3.0.html"] and b"Report v1.3.0" in base64.b64decode(attached[0]["base64"])


def test_each_event_has_its_apprise_type(receiver):
    n = notify.Notifier([receiver.url()], events=notify.EVENTS)
    n.notify_run(BLOCKED)
    n.notify_run({**REVIEW, "status": "deployed", "production": "v1.3.0"})
    n.notify_failure("error: boom", 5)
    n.notify_promotion({"event": "rollback", "from": "v1.2.0", "to": "v1.0.0", "reason": "bad"})
    n.notify_text("decay", "v1.2.0 decays in production", ["ROC-AUC 0.70 on the last week"])
    n.notify_text("drift", "drift seen", [])
    types = [(p["body"]["message"].split(":")[0].split(" ")[0], p["body"]["type"]) for p in receiver.posts]
    expected = [("v1.4.0", "failure"), ("v1.3.0", "success"), ("retrain_model.py", "failure"), ("rollback", "warning")]
    assert types == [*expected, ("v1.2.0", "warning"), ("drift", "warning")]
    assert "decay" in notify.EVENTS and "decay" in notify.DEFAULT_EVENTS
    # a deploy with drift is one message: typed by the more serious of the two
    notify.Notifier([receiver.url()], events=notify.EVENTS).notify_run({**REVIEW, "status": "deployed", "drift": "drift: 1 feature(s) shifted"})
    assert receiver.posts[-1]["body"]["type"] == "warning"


def test_blocked_message_names_the_blocking_finding(receiver):
    assert notify.Notifier([receiver.url()]).notify_run(BLOCKED) == ["blocked"]
    text = message(receiver.posts[0])
    assert 'python retrain_model.py --promote v1.4.0 --reason "..."' in text.splitlines()[2]
    assert "v1.4.0 was NOT deployed: blocked by a data check (label_rate)" in text
    assert "[block] label_rate (target): positive rate 0.91 vs 0.30 before" in text and "[warn] new_category (c1)" in text
    assert BLOCKED["reason"] in text


def test_failed_and_rollback_messages(receiver):
    n = notify.Notifier([receiver.url()])
    assert n.notify_failure("error: data.csv: no target column 'target'; pass --target NAME", 2) == ["failed"]
    event = {
        "event": "rollback",
        "from": "v1.2.0",
        "to": "v1.0.0",
        "reason": "v1.2.0 scores badly in production",
        "backup": "b.cbm",
        "at": "2026-11-28T08:00:00Z",
    }
    assert n.notify_promotion(event) == ["rollback"]
    failed, rollback = (message(p) for p in receiver.posts)
    assert "retrain_model.py failed (exit code 2, bad input)" in failed and "no target column 'target'" in failed
    assert "error: error:" not in failed and "\nerror: data.csv: no target column" in failed
    assert "python retrain_model.py --validate" in failed and "project: " in failed
    assert 'python retrain_model.py --promote v1.2.0 --reason "..."' in rollback  # the undo
    assert "rollback: production v1.2.0 -> v1.0.0" in rollback and "version: v1.0.0" in rollback and "scores badly in production" in rollback


def test_notify_on_picks_events_and_deployed_is_off_by_default(receiver):
    deployed = {**REVIEW, "status": "deployed", "production": "v1.3.0", "drift": "drift: 1 feature(s) shifted significantly vs v1.2.0: x1"}
    assert notify.Notifier([receiver.url()]).notify_run(deployed) == ["drift"]  # the drift, not the deploy
    assert notify.Notifier([receiver.url()], events=("deployed",)).notify_run(deployed) == ["deployed"]
    assert notify.Notifier([receiver.url()], events=("failed",)).notify_run(REVIEW) == []
    assert notify.Notifier([receiver.url()]).notify_run({**REVIEW, "status": "unchanged"}) == []
    heads = [p["body"]["message"].splitlines()[0] for p in receiver.posts]
    assert heads == ["v1.3.0: significant drift in the training data", "v1.3.0 deployed to production (was v1.2.0)"]
    assert notify.parse_events("all") == notify.EVENTS and notify.parse_events("review, failed") == ("review", "failed")
    with pytest.raises(ValueError, match="unknown event deploy; choose from review, blocked, deployed"):
        notify.parse_events("review,deploy")


def test_config_file_and_environment_variable(receiver, tmp_path):
    config = tmp_path / "apprise.txt"
    config.write_text(receiver.url("from-config") + "\n", encoding="utf-8")
    parser = __import__("argparse").ArgumentParser()
    notify_cli.add_notify_arguments(parser)
    from_config = notify_cli.notifier_from_args(parser.parse_args(["--notify-config", str(config)]))
    from_env = notify_cli.notifier_from_args(parser.parse_args([]), environ={"RETRAIN_NOTIFY": f"{receiver.url('env-a')}, {receiver.url('env-b')}"})
    flags_win = notify_cli.notifier_from_args(parser.parse_args(["--notify", receiver.url("flag")]), environ={"RETRAIN_NOTIFY": receiver.url("env-c")})
    for n in (from_config, from_env, flags_win):
        n.notify_failure("error: x", 4)
    assert sorted(p["path"] for p in receiver.posts) == ["/env-a", "/env-b", "/flag", "/from-config"]
    assert not notify_cli.notifier_from_args(parser.parse_args([]), environ={})  # no targets: a no-op Notifier


def test_bad_targets_are_one_clear_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"--notify nosuchservice://\*\*\*\*: not a notification URL Apprise understands"):
        notify.Notifier([f"nosuchservice://{SECRET}"])
    with pytest.raises(UsageError, match=r"--notify-config .*missing\.yml: no such file"):
        notify.Notifier(config_path=str(tmp_path / "missing.yml"))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no notification URL Apprise understands in it"):
        notify.Notifier(config_path=str(empty))
    with pytest.raises(UsageError, match="--notify-on: unknown event often"):
        retrain_cli.child_args(["--data", "x.csv", "--notify-on", "often"])  # how scheduler.py reads the run's flags


def test_missing_apprise_names_the_requirements_file(tmp_path):
    code = "import sys; sys.modules['apprise'] = None\nfrom retraining import notify\nnotify.Notifier(['json://127.0.0.1/x'])"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "need apprise: pip install -r requirements-notify.txt" in proc.stderr
    assert (ROOT / "requirements-notify.txt").read_text().count("apprise") >= 1
    assert "-r requirements-notify.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_email_arrives_with_the_html_report_attached(smtp, tmp_path):
    url, inbox = smtp
    report = tmp_path / "v1.3.0.html"
    report.write_text("<html><body><h1>Report v1.3.0</h1></body></html>", encoding="utf-8")
    sent = notify.Notifier([url]).notify_run({**REVIEW, "report_path": str(report)})
    assert sent == ["review"]
    assert len(inbox.messages) == 1
    rcpt, raw = inbox.messages[0]
    assert rcpt == ["reviewer@example.com"]
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert "v1.3.0 kept for manual review" in mail["Subject"]
    assert REVIEW["reason"] in mail.get_body(("plain", "html")).get_content()
    attached = [part for part in mail.iter_attachments() if part.get_filename() == "v1.3.0.html"]
    assert len(attached) == 1 and b"<h1>Report v1.3.0</h1>" in attached[0].get_payload(decode=True)


def test_unreachable_target_is_one_warning_within_the_budget(silent_port, receiver, caplog):
    hung = f"json://127.0.0.1:{silent_port}/hook/{SECRET}?rto=60"  # Apprise alone would wait 60 s for an answer
    n = notify.Notifier([hung, receiver.url()], budget=2.0)
    t0 = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        ok = n.notify_failure("error: boom", 5)
        again = n.notify_failure("error: boom again", 5)
    took = time.monotonic() - t0
    assert ok == [] and again == [] and took < 4.0, took
    assert len(receiver.posts) == 1  # the reachable target still got the first message
    lines = ours(caplog)
    assert lines[0] == f"Notification 'failed' not delivered to json://127.0.0.1:{silent_port}/**** (no answer within 2 s); the run itself is unaffected."
    assert "budget of this run is used up" in lines[1] and len(lines) == 2
    assert SECRET not in "".join(lines)


def test_tokens_are_masked_wherever_a_target_is_named(caplog):
    assert notify.mask(f"json://127.0.0.1:8080/hook/{SECRET}") == "json://127.0.0.1:8080/****"
    assert notify.mask(f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}/#ops") == "slack://****"
    assert notify.mask(f"tgram://123456789:{SECRET}/12345") == "tgram://****"
    assert notify.mask(f"mailto://me:{SECRET}@smtp.example.com?to=a@example.com") == "mailto://****@smtp.example.com/****"
    assert notify.mask_text(f"error: postgresql://bob:{SECRET}@db/sales is down") == "error: postgresql://bob:****@db/sales is down"
    port = free_port()  # nothing listens: refused at once
    n = notify.Notifier([f"json://127.0.0.1:{port}/{SECRET}", f"mailto://me:{SECRET}@127.0.0.1:{port}?to=a@example.com&from=b@example.com"])
    assert all(SECRET not in t for t in n.targets)
    with caplog.at_level(logging.DEBUG):
        n.notify_failure(f"error: cannot reach mysql://app:{SECRET}@db/x", 2)
    lines = ours(caplog)
    assert len(lines) == 1 and "not delivered to" in lines[0] and SECRET not in lines[0]
    # Apprise's own lines name the URLs, tokens and all: they go to no handler of ours or the root's
    # (pytest's caplog attaches itself to non-propagating loggers, hence the check on the logger itself)
    apprise_log = logging.getLogger("apprise")
    assert apprise_log.propagate is False and any(isinstance(h, logging.NullHandler) for h in apprise_log.handlers)


def test_module_cli_sends_a_failed_message(receiver):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "retraining.cli.notify",
            "--failed",
            "error: task retrain failed",
            "--exit-code",
            "5",
            "--attempts",
            "3",
            "--notify",
            receiver.url(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "retrain_model.py failed (exit code 5, CatBoost could not train) after 3 attempts" in message(receiver.posts[0])


# -- scheduler.py: what the child run cannot report itself ----------------------------------
JOBS = ROOT / "tests" / "jobs"


def scheduler(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_script("scheduler.py", *args, cwd=cwd, timeout=120, env={"RETRAIN_NOTIFY": "", **(env or {})})


def test_scheduler_reports_a_timeout_kill_and_a_crash(receiver, tmp_path):
    hang = scheduler(tmp_path, "--once", "--job-timeout", "1.5", "--retries", "0", "--script", str(JOBS / "hang.py"), "--", "--notify", receiver.url())
    assert hang.returncode == 124
    crash = scheduler(tmp_path, "--once", "--retries", "0", "--script", str(JOBS / "crash.py"), "--", "--notify", receiver.url())
    assert crash.returncode not in (0, 124)
    killed, crashed = (p["body"]["message"] for p in receiver.posts)
    assert killed.startswith("hang.py timed out after 1.5 s and was killed (attempt 1 of 1)") and "hanging" in killed
    assert crashed.startswith("crash.py crashed (") and "about to crash" in crashed
    assert killed.splitlines()[1].startswith(f"next: cd {tmp_path.resolve()}; python scheduler.py --status")
    assert f"project: {tmp_path.resolve()}" in crashed.splitlines()


def test_scheduler_reports_retries_used_up_once(receiver, tmp_path):
    env = {"RETRAIN_NOTIFY": receiver.url()}  # the environment variable reaches the scheduler (and the child)
    proc = scheduler(tmp_path, "--once", "--retries", "1", "--retry-delay", "0", "--script", str(JOBS / "fail.py"), env=env)
    assert proc.returncode == 3
    assert len(receiver.posts) == 1  # exit 3 is the child's own error: it reports each attempt itself
    text = receiver.posts[0]["body"]["message"]
    assert text.startswith("fail.py failed 2 times in a row; retries used up")
    assert "last attempt: failed with exit code 3" in text and "boom: something broke in training" in text


def test_scheduler_reports_an_unclean_stop_of_the_previous_one(receiver, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    status = {"format": 1, "pid": 999999, "state": "running", "heartbeat": "2026-11-28T02:59:30+00:00"}
    status["current_run"] = {"pid": 999998, "started_at": "2026-11-28T02:00:00+00:00", "attempt": 1}
    (models / "scheduler_status.json").write_text(json.dumps(status), encoding="utf-8")
    proc = scheduler(tmp_path, "--once", "--script", str(JOBS / "ok.py"), "--", "--notify", receiver.url())
    assert proc.returncode == 0, proc.stderr
    text = receiver.posts[0]["body"]["message"]
    assert text.startswith("scheduler.py started after an unclean stop: the previous scheduler (pid 999999) ended without shutting down")
    assert "a run (pid 999998, started 2026-11-28T02:00:00+00:00, attempt 1) was in progress" in text
    again = scheduler(tmp_path, "--once", "--script", str(JOBS / "ok.py"), "--", "--notify", receiver.url())
    assert again.returncode == 0 and len(receiver.posts) == 1  # the last one stopped cleanly: nothing to say


def test_a_scheduler_that_cannot_start_says_so_but_a_refused_second_one_does_not(receiver, tmp_path):
    from filelock import FileLock

    from retraining.scheduling.cli import LOCK_NAME

    missing = scheduler(tmp_path, "--script", str(tmp_path / "nope.py"), "--", "--notify", receiver.url())
    assert missing.returncode == 2 and len(receiver.posts) == 1
    text = receiver.posts[0]["body"]["message"]
    assert text.startswith("scheduler.py stopped: error: the job script") and "no nightly runs until it is restarted" in text
    (tmp_path / "models").mkdir()
    with FileLock(str(tmp_path / "models" / LOCK_NAME)):  # a scheduler is already running: this one is refused, by design
        second = scheduler(tmp_path, "--script", str(JOBS / "ok.py"), "--", "--notify", receiver.url())
    assert second.returncode == 4 and len(receiver.posts) == 1


# -- retrain_model.py end to end ------------------------------------------------------------
def every_file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_runs_promotions_and_failures_notify_and_the_token_is_written_nowhere(receiver, tmp_path):
    frame = make_frame(600)
    write_csv(tmp_path / "data.csv", frame)
    url = receiver.url(f"hook/{SECRET}")
    outputs = []

    def run(*args: str, code: int = 0) -> dict | None:
        proc = retrain_main(tmp_path, *args, "--notify", url, "--json")
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == code, proc.stderr[-3000:]
        return json.loads(proc.stdout) if code == 0 else None

    mlflow = ("--mlflow-uri", f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}")  # its tags and params are scanned too
    first = run("--iterations", "30", "--notify-on", "all", *mlflow)
    assert first["status"] == "deployed" and receiver.posts[-1]["body"]["message"].startswith(f"{first['version']} deployed to production")
    second = run("--iterations", "1", "--depth", "1")
    assert second["status"] == "kept for review", second
    review = receiver.posts[-1]["body"]["message"]
    assert review.startswith(f"{second['version']} kept for manual review; production stays {first['version']}") and second["reason"] in review
    flipped = make_frame(600, seed=7, start_id=10_000).assign(target=1)  # every new row positive: the label rate jumps
    write_csv(tmp_path / "data.csv", pd.concat([frame, flipped]))
    third = run("--iterations", "30")
    blocked = receiver.posts[-1]["body"]["message"]
    assert third["status"] != "deployed" and blocked.startswith(f"{third['version']} was NOT deployed: blocked by a data check"), blocked
    assert "[block] label" in blocked and third["reason"] in blocked
    run("--promote", second["version"], *mlflow)
    rollback = receiver.posts[-1]["body"]["message"]
    assert rollback.startswith(f"promotion: production {first['version']} -> {second['version']}") and "reason: " in rollback
    write_csv(tmp_path / "data.csv", frame.drop(columns="target"))
    run("--iterations", "30", code=2)
    failed = receiver.posts[-1]["body"]["message"]
    assert failed.startswith("retrain_model.py failed (exit code 2, bad input)") and "no target column 'target'" in failed
    assert len(receiver.posts) == 5 and {p["path"] for p in receiver.posts} == {f"/hook/{SECRET}"}
    leaks = [name for name, data in every_file_bytes(tmp_path).items() if SECRET.encode() in data]
    assert leaks == [] and not any(SECRET in out for out in outputs)


def test_unreachable_target_keeps_the_exit_code_and_the_10_s_bound(silent_port, tmp_path):
    write_csv(tmp_path / "data.csv", make_frame(600))
    hung = f"json://127.0.0.1:{silent_port}/hook/{SECRET}?rto=60"  # Apprise alone would wait 60 s
    proc = retrain_main(tmp_path, "--iterations", "30", "--no-report", "--notify", hung, "--notify-on", "all")
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if "not delivered" in line]
    assert len(warnings) == 1 and f"json://127.0.0.1:{silent_port}/****" in warnings[0] and SECRET not in proc.stderr
    log = (tmp_path / "logs" / "retrain.log").read_text(encoding="utf-8").splitlines()
    stamp = lambda line: dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    done = stamp(next(line for line in log if "v1.0.0 deployed" in line))
    gave_up = stamp(next(line for line in log if "not delivered" in line))
    assert 9.0 <= (gave_up - done).total_seconds() <= 11.0  # it waited for the budget, and not past it
    assert json.loads((tmp_path / "models" / "version_log.json").read_text())["production"] == "v1.0.0"


def test_run_mails_the_html_report(smtp, tmp_path):
    url, inbox = smtp
    write_csv(tmp_path / "data.csv", make_frame(600))
    proc = retrain_main(tmp_path, "--iterations", "30", "--notify", url, "--notify-on", "deployed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    message = email.message_from_bytes(inbox.messages[0][1], policy=policy.default)
    assert message["Subject"].startswith("[catboost-retrain] v1.0.0 deployed to production")
    report = tmp_path / "models" / "reports" / "v1.0.0.html"
    attached = [p for p in message.iter_attachments() if p.get_filename() == "v1.0.0.html"]
    assert len(attached) == 1 and attached[0].get_payload(decode=True) == report.read_bytes()


def test_environment_variable_alone_reaches_every_event(receiver, tmp_path):
    write_csv(tmp_path / "data.csv", make_frame(600))
    env = {"RETRAIN_NOTIFY": f"{receiver.url('a')} {receiver.url('b')}"}
    ok = retrain_main(tmp_path, "--iterations", "30", "--no-report", "--notify-on", "all", env=env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    bad = retrain_main(tmp_path, "--iterations", "30", "--target", "nope", env=env)
    assert bad.returncode == 2
    heads = {path: [p["body"]["message"].splitlines()[0] for p in receiver.posts if p["path"] == path] for path in ("/a", "/b")}
    for lines in heads.values():  # one Notifier for the whole command: the run's message and the failure's
        assert len(lines) == 2 and lines[0].startswith("v1.0.0 deployed to production"), heads
        assert lines[1].startswith("retrain_model.py failed (exit code 2, bad input)")
