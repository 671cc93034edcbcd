"""Tell a person when a run needs them: notifications through Apprise URLs.

Targets are Apprise URLs (``slack://...``, ``mailto://...``, ``json://...``; one URL
each, some 100 services). ``apprise`` is optional: ``pip install -r requirements-notify.txt``.

API (stable; the CLI, ``retrain_model.py``, ``scheduler.py`` and the Airflow DAG use it)::

    EVENTS = ("review", "blocked", "deployed", "rollback", "failed", "drift", "decay")
    DEFAULT_EVENTS                      # every event except "deployed"
    TYPES = {"failed": "failure", ...}  # the Apprise notify type of each event (its colour and routing)
    ENV_VAR = "RETRAIN_NOTIFY"          # targets, comma or space separated
    mask(url) -> str                    # a target as it may be shown: tokens and passwords hidden
    mask_text(text) -> str              # any URL passwords in a free-text line hidden
    targets(urls, config_path, environ=None) -> (urls, config_path)
        # --notify and --notify-config; when neither is given, $RETRAIN_NOTIFY
    Notifier(urls=(), config_path=None, events=None, *, budget=10.0, logger=None, project=None)
        # project: the folder the commands in a message run in (default: the current one)
        .targets -> list[str]           # masked, for logs and --json
        .wants(event) -> bool
        .notify_run(result: dict) -> list[str]         # RunResult.to_dict(): review/blocked/deployed + drift, one message
        .notify_promotion(event: dict) -> list[str]    # {event, from, to, reason, backup, at}: rollback (deploy -> deployed)
        .notify_failure(error_line, exit_code, script="retrain_model.py", attempts=None) -> list[str]
            # each returns the events delivered to every target ([] if none wanted, or not delivered)
        .notify_text(event, head, lines, next_step=None) -> bool  # any other message: head line, next step, lines
        .send(event, title, body, attach=None) -> bool # the one primitive; True if every target took it

Every message says where it comes from and what to do next: the project folder and the
host, the report as an absolute path and a ``file://`` URL (attached where the target
takes attachments: e-mail, Slack, json://, ...), and the exact next command with the real
version. Its Apprise type follows :data:`TYPES`: ``failed``/``blocked`` are failures,
``review``/``drift``/``decay``/``rollback`` warnings, ``deployed`` a success.

Every method returns quickly and never raises: all sends of one Notifier share a 10 s
budget (each target in its own daemon thread, joined against one deadline), and a
failure is one warning line on the ``retraining.notify`` logger (or ``logger``) that
names the targets masked. Apprise's own log lines, which can carry URLs, are kept out
of every log (its logger is routed to a NullHandler).

The flags (``--notify``, ``--notify-config``, ``--notify-on``) and the command line
``python -m retraining.cli.notify --failed LINE --exit-code N`` (the Airflow DAG's failure
callback) live in :mod:`retraining.cli.notify`: this module parses no command line.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import warnings
from pathlib import Path

from retraining.errors import ExitCode, UsageError

EVENTS = ("review", "blocked", "deployed", "rollback", "failed", "drift", "decay")
TYPES = {  # Apprise's NotifyType values: targets colour and route by them
    "failed": "failure",
    "blocked": "failure",
    "review": "warning",
    "drift": "warning",
    "decay": "warning",
    "rollback": "warning",
    "deployed": "success",
}
_RANK = ("failure", "warning", "success", "info")
DEFAULT_EVENTS = tuple(e for e in EVENTS if e != "deployed")
ENV_VAR = "RETRAIN_NOTIFY"
BUDGET_SECONDS = 10.0
INSTALL_HINT = "pip install -r requirements-notify.txt"
APP = "catboost-retrain"

log = logging.getLogger(__name__)

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:(?P<userinfo>[^@/?#]*)@)?(?P<host>[^/:?#]*)(?::(?P<port>\d+))?(?P<rest>.*)$", re.S)
_HOSTNAME = re.compile(r"^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24})$")
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")


def mask(url: str) -> str:
    """A target as it may appear anywhere: scheme and a plain host name only.

    ``json://127.0.0.1:8080/hook/TOKEN`` -> ``json://127.0.0.1:8080/****``,
    ``slack://T1/B2/SECRET`` -> ``slack://****``, ``mailto://me:pw@smtp.x.org?to=a@b.c``
    -> ``mailto://****@smtp.x.org/****``. A host that is not a host name (a token, as in
    ``slack://`` and ``tgram://``) is hidden too.
    """
    m = _URL.match(url.strip())
    if not m:
        return "****"
    host, port = m["host"], m["port"]
    shown = _HOSTNAME.match(host) is not None
    out = f"{m['scheme'].lower()}://" + ("****@" if m["userinfo"] is not None and shown else "")
    out += (host + (f":{port}" if port else "")) if shown else "****"
    return out + ("/****" if shown and (m["rest"] not in ("", "/")) else "")


def mask_text(text: str) -> str:
    """Hide the password of any ``scheme://user:password@`` in a line of free text."""
    return _URL_PASSWORD.sub(lambda m: m["head"] + "****@", text)


def parse_events(text: str) -> tuple[str, ...]:
    """``review,failed`` or ``all`` -> the events; raises ValueError naming the valid ones."""
    names = [n for n in re.split(r"[,\s]+", text.strip().lower()) if n]
    if names == ["all"]:
        return EVENTS
    unknown = [n for n in names if n not in EVENTS]
    if unknown or not names:
        raise ValueError(f"unknown event {', '.join(unknown) or repr(text)}; choose from {', '.join(EVENTS)} or all")
    return tuple(dict.fromkeys(names))


def split_targets(text: str | None) -> tuple[str, ...]:
    """The targets in ``$RETRAIN_NOTIFY``: comma or whitespace separated URLs."""
    return tuple(u for u in re.split(r"[,\s]+", text or "") if u)


def targets(urls: tuple[str, ...] | list[str], config_path: str | None, environ: dict | None = None) -> tuple[tuple[str, ...], str | None]:
    """The targets to use: the given URLs and config file, or ``$RETRAIN_NOTIFY`` when neither is given."""
    urls = tuple(urls or ())
    if not urls and not config_path:
        urls = split_targets((os.environ if environ is None else environ).get(ENV_VAR))
    return urls, config_path


def _apprise():
    quiet = logging.getLogger("apprise")  # its lines name target URLs, tokens included: keep them out of every log
    if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    try:
        import apprise
    except ImportError as exc:
        raise UsageError(f"notifications (--notify, --notify-config, ${ENV_VAR}) need apprise: {INSTALL_HINT}") from exc
    return apprise


def _load_targets(urls: tuple[str, ...], config_path: str | None) -> list:
    """Apprise service objects for the URLs and the config file; UsageError for a bad one."""
    with warnings.catch_warnings():  # Apprise's plugins import deprecated stdlib modules (imghdr) on first use
        warnings.simplefilter("ignore", DeprecationWarning)
        return _load_services(_apprise(), urls, config_path)


def _load_services(apprise, urls: tuple[str, ...], config_path: str | None) -> list:
    services = []
    for url in urls:
        service = apprise.Apprise.instantiate(url)
        if service is None:
            raise UsageError(f"--notify {mask(url)}: not a notification URL Apprise understands; see docs/notifications.md for the forms")
        services.append(service)
    if config_path:
        path = Path(config_path)
        if not path.is_file():
            raise UsageError(f"--notify-config {path}: no such file; give an Apprise config file (one URL a line, or YAML)")
        config = apprise.AppriseConfig()
        config.add(str(path.resolve()))
        bundle = apprise.Apprise()
        bundle.add(config)
        found = list(bundle)
        if not found:
            raise UsageError(f"--notify-config {path}: no notification URL Apprise understands in it")
        services.extend(found)
    return services


def _is_mail(service) -> bool:
    protocols = [getattr(service, "secure_protocol", None), getattr(service, "protocol", None)]
    names = {p for entry in protocols for p in (entry if isinstance(entry, (list, tuple)) else [entry]) if p}
    return bool(names & {"mailto", "mailtos"})


class Notifier:
    """Sends run outcomes to the targets; never raises, never takes more than ``budget`` seconds."""

    def __init__(
        self,
        urls: tuple[str, ...] | list[str] = (),
        config_path: str | None = None,
        events: tuple[str, ...] | list[str] | None = None,
        *,
        budget: float = BUDGET_SECONDS,
        logger: logging.Logger | None = None,
        project: str | Path | None = None,
    ) -> None:
        self.events = tuple(events) if events else DEFAULT_EVENTS
        self._services = _load_targets(tuple(urls), config_path) if (urls or config_path) else []
        self.targets = [mask(s.url(privacy=True)) for s in self._services]
        self._deadline: float | None = None
        self._budget = budget
        self.log = logger or log
        self.project = Path(project or Path.cwd()).resolve()

    def __bool__(self) -> bool:
        return bool(self._services)

    def wants(self, event: str) -> bool:
        return bool(self._services) and event in self.events

    # -- messages from plain dicts ------------------------------------------------------
    def notify_run(self, result: dict) -> list[str]:
        """After a run: review / blocked / deployed, and drift, as one message."""
        events = [e for e in run_events(result) if self.wants(e)]
        if not events:
            return []
        title, body = run_message(result, events, self.project)
        report = result.get("report_path")
        kinds = ["info" if e == "deployed" and result.get("within_noise") else TYPES.get(e, "info") for e in events]  # within noise: info
        kind = min(kinds, key=_RANK.index)  # the most serious of the events
        return events if self.send(events[0], title, body, attach=self.project / report if report else None, notify_type=kind) else []

    def notify_promotion(self, event: dict) -> list[str]:
        """After ``--promote`` (or a deploy recorded as an event): the ``rollback`` event."""
        name = {"none": None, "deploy": "deployed"}.get(event.get("event"), "rollback")
        if name is None or not self.wants(name):
            return []
        title, body = promotion_message(event, self.project)
        return [name] if self.send(name, title, body) else []

    def notify_failure(self, error_line: str, exit_code: int, script: str = "retrain_model.py", attempts: int | None = None) -> list[str]:
        """A non-zero exit: the ``failed`` event with the error line."""
        if not self.wants("failed"):
            return []
        title, body = failure_message(error_line, exit_code, script, attempts, self.project)
        return ["failed"] if self.send("failed", title, body) else []

    def notify_text(self, event: str, head: str, lines: list[str], next_step: str | None = None) -> bool:
        """Any other message (scheduler.py: a kill, a crash, an unclean stop): ``head``, the next step, then ``lines``.

        ``next_step`` defaults, for ``failed``, to the scheduler's status command and its log.
        """
        if not self.wants(event):
            return False
        if next_step is None and event == "failed":
            log_file = self.project / "logs" / "scheduler.log"
            next_step = command(self.project, "--status", script="scheduler.py") + f"   (is it running? then the log: {log_file})"
        body = [head, *([next_step] if next_step else []), *lines, *where(self.project)]
        return self.send(event, f"[{APP}] {head}", "\n".join(mask_text(line) for line in body))

    # -- the one primitive --------------------------------------------------------------
    def send(self, event: str, title: str, body: str, attach: Path | None = None, notify_type: str | None = None) -> bool:
        """Send to every target in parallel, typed by ``notify_type`` (default: the event's);
        targets that take attachments (e-mail, Slack, json://, ...) get ``attach``. Never raises."""
        if not self._services:
            return False
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self._budget
        if now >= self._deadline:
            self.log.warning("Notification %r not sent: the %g s notification budget of this run is used up.", event, self._budget)
            return False
        attachment = str(attach) if attach is not None and Path(attach).is_file() else None
        kind = notify_type or TYPES.get(event, "info")
        outcomes: dict[int, bool] = {}
        threads = []
        for i, service in enumerate(self._services):
            files = attachment if attachment and (_is_mail(service) or getattr(service, "attachment_support", False)) else None
            args = (service, title, body, files, kind, outcomes, i)
            t = threading.Thread(target=_deliver, args=args, name=f"notify-{i}", daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(max(0.0, self._deadline - time.monotonic()))
        failed = [self.targets[i] for i in range(len(self._services)) if not outcomes.get(i)]
        if failed:
            late = [self.targets[i] for i in range(len(self._services)) if i not in outcomes]
            why = f"no answer within {self._budget:g} s" if late else "refused or unreachable"
            self.log.warning("Notification %r not delivered to %s (%s); the run itself is unaffected.", event, ", ".join(failed), why)
        return not failed


def _deliver(service, title: str, body: str, attach: str | None, kind: str, outcomes: dict, index: int) -> None:
    """One target, in its own daemon thread: record True/False; an error in Apprise is a failure."""
    import apprise

    ok = False
    try:
        bundle = apprise.Apprise()
        bundle.add(service)
        ok = bool(bundle.notify(body=body, title=title, attach=attach, notify_type=apprise.NotifyType(kind)))
    except Exception:  # whatever Apprise raises must not escape a daemon thread: it counts as "not delivered"
        ok = False
    outcomes[index] = ok


# -- what a message says ----------------------------------------------------------------
KEPT = ("kept for review", "kept_for_review", "review")


def blocking_findings(result: dict) -> list[dict]:
    return [c for c in result.get("checks") or [] if isinstance(c, dict) and c.get("severity") == "block"]


def drift_line(result: dict) -> str | None:
    drift = result.get("drift")
    if isinstance(drift, dict):
        names = drift.get("significant") or []
        return f"drift: {len(names)} feature(s) shifted significantly: {', '.join(names[:5])}" if names else None
    return drift or None


def run_events(result: dict) -> list[str]:
    """The events a run's result dict stands for, the main one first."""
    status = str(result.get("status") or "")
    events = []
    if status == "blocked" or (status in KEPT and blocking_findings(result)):
        events.append("blocked")
    elif status in KEPT:
        events.append("review")
    elif status == "deployed":
        events.append("deployed")
    if drift_line(result) and status != "unchanged":
        events.append("drift")
    return events


def _fmt_auc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def where(project: Path) -> list[str]:
    """The lines that say where a message comes from: the project folder and the host."""
    return [f"project: {project}", f"host: {socket.gethostname()}"]


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def command(project: Path, *args: str, script: str = "retrain_model.py") -> str:
    """The exact command to run next, from any folder: ``cd PROJECT; python retrain_model.py ARGS``.

    ``;`` (not ``&&``) so that it runs in bash, zsh and PowerShell alike.
    """
    folder = _quote(str(project)) if " " in str(project) else str(project)
    return f"next: cd {folder}; python {script} " + " ".join(args)


def _models_args(result: dict, project: Path) -> list[str]:
    """``--models-dir DIR`` when the run's models folder is not the default ``models`` of the project."""
    model = result.get("model_path")
    if not model:
        return []
    folder = (project / model).parent.resolve()
    return [] if folder == (project / "models").resolve() else ["--models-dir", _quote(str(folder))]


def report_lines(report: str | None, project: Path) -> list[str]:
    """The report as an absolute path and a file:// URL (the person on call opens either)."""
    if not report:
        return ["report: - (none written: --no-report, or it failed; `python retrain_model.py --report` writes it)"]
    path = (project / report).resolve()
    return [f"report: {path}", f"report URL: {path.as_uri()}"]


def next_step(result: dict, events: list[str], project: Path) -> str:
    """What the person on call runs next, with the real versions."""
    version, extra = result.get("version") or "VERSION", _models_args(result, project)
    before = result.get("production_before") or result.get("champion_version")
    if events[0] == "blocked":
        return command(project, "--promote", version, *extra, "--reason", _quote("...")) + "   (overrules the data check after you checked the new rows)"
    if events[0] == "review":
        return command(project, "--promote", version, *extra, "--reason", _quote("...")) + "   (deploys it after your review; or do nothing)"
    if events[0] == "deployed" and before and before != version:
        return command(project, "--promote", before, *extra, "--reason", _quote("...")) + "   (only to roll back)"
    return "next: nothing required; read the report's drift section"


def run_message(result: dict, events: list[str], project: Path | None = None) -> tuple[str, str]:
    """Title and body for a run: what happened, then the numbers, the reason, findings, report, next command."""
    project = project or Path.cwd().resolve()
    version = result.get("version") or "-"
    after = result.get("production") or "none"
    before = result.get("production_before") or (result.get("champion_version") if result.get("status") == "deployed" else after) or "none"
    blocked = ", ".join(str(f.get("name")) for f in blocking_findings(result)) or "see findings"
    head = {
        "blocked": f"{version} was NOT deployed: blocked by a data check ({blocked}); production stays {after}",
        "review": f"{version} kept for manual review; production stays {after}",
        "deployed": f"{version} deployed to production (was {before})" + (": equal within noise" if result.get("within_noise") else ""),
        "drift": f"{version}: significant drift in the training data",
    }[events[0]]
    delong = result.get("delong") or {}
    p = delong.get("p_value")
    auc = f"ROC-AUC: candidate {_fmt_auc(result.get('candidate_auc'))}, champion {result.get('champion_version') or '-'} {_fmt_auc(result.get('champion_auc'))}"
    auc += f", DeLong p = {p:.3g}" if isinstance(p, (int, float)) else ""
    lines = [head, next_step(result, events, project), *report_lines(result.get("report_path"), project)]
    lines += [f"version: {version}", f"production: {before} -> {after}", auc]
    lines.append(f"reason: {result.get('reason') or '-'}")
    findings = [c for c in result.get("checks") or [] if isinstance(c, dict)]
    if findings:
        lines.append("findings:")
        for f in findings:
            cols = f" ({', '.join(f.get('columns') or [])})" if f.get("columns") else ""
            lines.append(f"  - [{f.get('severity', '?')}] {f.get('name', '?')}{cols}: {f.get('message', '')}")
    if drift_line(result):
        lines.append(drift_line(result))
    lines += where(project)
    return f"[{APP}] {head}", "\n".join(mask_text(line) for line in lines)


def promotion_message(event: dict, project: Path | None = None) -> tuple[str, str]:
    project = project or Path.cwd().resolve()
    kind = event.get("event") or "promotion"
    head = f"{kind}: production {event.get('from') or 'none'} -> {event.get('to')}"
    lines = [head]
    if event.get("from"):
        lines.append(command(project, "--promote", str(event["from"]), "--reason", _quote("...")) + "   (only to undo this)")
    lines += [f"version: {event.get('to')}", f"production: {event.get('from') or 'none'} -> {event.get('to')}", f"reason: {event.get('reason') or '-'}"]
    if event.get("backup"):
        lines.append(f"backup of the previous production model: {event['backup']}")
    lines += [f"at: {event.get('at') or '-'}", *where(project)]
    return f"[{APP}] {head}", "\n".join(mask_text(line) for line in lines)


def monitor_message(finding: dict, production: str | None) -> tuple[str, list[str]]:
    """Head and lines of a monitor finding (``decay``, ``drift``, ``deploy_worse``) for :meth:`Notifier.notify_text`."""
    numbers = ", ".join(f"{k} {v}" for k, v in (finding.get("numbers") or {}).items())
    head = f"monitor: {finding.get('name')} ({finding.get('severity')}) in production {production or 'none'}"
    return head, [finding.get("message") or "", f"numbers: {numbers or '-'}"]


def strip_prefix(line: str) -> str:
    """``error: error: x`` -> ``x``: the error line as the CLI printed it, without its ``error:`` prefixes."""
    text = line.strip()
    while text.lower().startswith("error:"):
        text = text[len("error:") :].strip()
    return text


def failure_message(
    error_line: str, exit_code: int, script: str = "retrain_model.py", attempts: int | None = None, project: Path | None = None
) -> tuple[str, str]:
    project = project or Path.cwd().resolve()
    meaning = _SHORT_MEANING.get(exit_code)
    code = f"exit code {exit_code}" + (f", {meaning}" if meaning else "")
    head = f"{script} failed ({code})" + (f" after {attempts} attempts" if attempts and attempts > 1 else "")
    fix = "fix what the error line names, then check the data with the nightly run's flags and"
    nxt = command(project, "--validate") + f"   ({fix} run it again; the log: {project / 'logs' / 'retrain.log'})"
    lines = [head, f"error: {strip_prefix(error_line) or '(no error line)'}", nxt, *where(project)]
    return f"[{APP}] {head}", "\n".join(mask_text(line) for line in lines)


_SHORT_MEANING = {code: re.split(r"[:(]", code.meaning)[0].strip() for code in ExitCode if code}  # "bad input", "CatBoost could not train", ...
