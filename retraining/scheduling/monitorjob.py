"""The scheduler's monitor mode: run ``monitor.py`` on its own interval, retrain when it recommends it.

``scheduler.py --monitor-every MINUTES --monitor "MONITOR ARGS" -- RETRAIN ARGS`` runs the
monitor as a child (``python -m retraining.monitoring.cli ... --json``) every MINUTES and
starts a retrain when its ``retrain_recommended`` is true, unless a run started less than
``--monitor-cooldown`` hours ago or one is running. The daily (or ``--every``) clock stays
as a floor: the scheduled runs happen as before.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from retraining.errors import UsageError

log = logging.getLogger(__name__)


@dataclass
class MonitorTrigger:
    """When to run the monitor, how, and whether its answer starts a retrain."""

    every: dt.timedelta
    cooldown: dt.timedelta
    args: list[str]
    models_dir: Path
    timeout: float = 600.0
    script: Path | None = None  # monitor.py (beside the retrain script); None: the installed package's command line
    due: dt.datetime | None = None
    last: dict = field(default_factory=dict)

    @classmethod
    def from_flags(
        cls, every_minutes: float | None, cooldown_hours: float, text: str | None, models_dir: Path, timeout: float, script: Path | None = None
    ) -> MonitorTrigger | None:
        if every_minutes is None:
            if text:
                raise UsageError("--monitor goes with --monitor-every MINUTES")
            return None
        if every_minutes <= 0 or cooldown_hours < 0:
            raise UsageError("--monitor-every must be positive and --monitor-cooldown not negative")
        if not text:
            raise UsageError('--monitor-every needs --monitor "--outcomes SOURCE --id-column ID --label-column LABEL ..." (monitor.py\'s arguments)')
        return cls(dt.timedelta(minutes=every_minutes), dt.timedelta(hours=cooldown_hours), shlex.split(text), models_dir, timeout, script)

    def command(self) -> list[str]:
        head = [sys.executable, str(self.script)] if self.script else [sys.executable, "-m", "retraining.monitoring.cli"]
        return [*head, "--models-dir", str(self.models_dir), *self.args, "--json", "--quiet"]

    def is_due(self, now: dt.datetime) -> bool:
        if self.due is None:
            self.due = now
        return now >= self.due

    def check(self, now: dt.datetime, cwd: Path) -> dict:
        """Run the monitor once; its answer (``retrain_recommended``, ``reasons``), or an ``error``."""
        self.due = now + self.every
        try:
            proc = subprocess.run(self.command(), cwd=cwd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.last = {"at": now.isoformat(), "error": f"monitor.py did not finish in {self.timeout:g} s"}
            return self.last
        if proc.returncode != 0:
            line = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            self.last = {"at": now.isoformat(), "error": f"monitor.py exited {proc.returncode}: {line}"}
            return self.last
        report = json.loads(proc.stdout)
        self.last = {"at": now.isoformat(), "retrain_recommended": bool(report.get("retrain_recommended")), "reasons": report.get("reasons", [])}
        self.last["actions"] = report.get("actions", [])
        return self.last

    def should_retrain(self, answer: dict, now: dt.datetime, last_start: dt.datetime | None, running: bool) -> str | None:
        """Why a retrain starts now, or None (not recommended, running, or within the cooldown)."""
        if not answer.get("retrain_recommended") or running:
            return None
        if last_start is not None and now - last_start < self.cooldown:
            log.info("The monitor recommends a retrain, but the last run started %s ago (cooldown %s).", now - last_start, self.cooldown)
            return None
        return "; ".join(answer.get("reasons") or ["recommended by the monitor"])
