"""``scheduler.py --config fleet.toml``: every model on its own schedule, from one process.

One :class:`~retraining.scheduling.loop.RetrainScheduler` per model, each with its own
``schedule.Scheduler``, plan, child process, retries and status file (in the model's
models folder); one loop ticks them all. A model never overlaps itself (its scheduler
skips a run due while its last one runs), and at most ``max_parallel`` runs go at once:
a model that is due while the fleet is full waits for a free slot and keeps its place.
A crash, a timeout or a missing file in one model is that model's failed run; the others
stay on time.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable

from retraining.scheduling.loop import RetrainScheduler, now_utc

log = logging.getLogger(__name__)


class FleetScheduler:
    """Tick every model's scheduler; share one cap on runs at once, one set of signal handlers."""

    def __init__(self, members: dict[str, Callable[[Callable[[], bool]], RetrainScheduler]], max_parallel: int, run_now: bool = False) -> None:
        self.max_parallel = max_parallel
        self.members = {name: build(self.slot_free) for name, build in members.items()}
        self.run_now = run_now
        self.stop_signal: str | None = None
        self.wake = threading.Event()

    def running(self) -> int:
        return sum(1 for m in self.members.values() if m.current is not None)

    def slot_free(self) -> bool:
        return self.running() < self.max_parallel

    def run_forever(self) -> int:
        self.install_signal_handlers()
        now = now_utc()
        for member in self.members.values():
            member.begin(now)
            if self.run_now:
                member.start_or_wait(attempt=1)
                member.write_status()
        log.info("Fleet scheduler started: %d models, at most %d runs at once.", len(self.members), self.max_parallel)
        beats = {name: now for name in self.members}
        while not self.stop_signal:
            now = now_utc()
            for name, member in self.members.items():
                self._tick(name, member, now)
                if (now - beats[name]).total_seconds() >= member.args.heartbeat:
                    member.write_status()
                    beats[name] = now
            self.wake.wait(min(m.sleep_seconds(now) for m in self.members.values()))
        return self.shutdown()

    def _tick(self, name: str, member: RetrainScheduler, now: dt.datetime) -> None:
        try:
            member.tick(now)
        except OSError as exc:  # one model's disk or job file trouble is that model's problem
            log.error("%s: %s: %s; the other models go on.", name, type(exc).__name__, exc)

    def run_once(self) -> int:
        """``--once``: every model once (with retries), at most max_parallel at once; the worst exit code."""
        self.install_signal_handlers()
        pending = [(name, member, now_utc()) for name, member in self.members.items()]  # (model, its scheduler, not before)
        for member in self.members.values():
            member.state = "running"
        codes: dict[str, int] = {}
        while (pending or self.running()) and not self.stop_signal:
            now = now_utc()
            for item in [p for p in pending if p[2] <= now]:
                if not self.slot_free():
                    break
                pending.remove(item)
                member = item[1]
                attempt = member.retry_attempt if member.retry_at else 1
                member.retry_at = None
                member.start(attempt)
                member.write_status()
            for name, member in self.members.items():
                if member.current is not None and (code := member.current.poll()) is not None:
                    member.finish(code)
                    member.write_status()
                    if member.retry_at is None:
                        codes[name] = member.last_exit_code or 0
                    else:  # a retry after its delay, back in the queue
                        member.counts["retries"] += 1
                        pending.append((name, member, member.retry_at))
            self.wake.wait(0.2)
        if self.stop_signal:
            return self.shutdown()
        for member in self.members.values():
            member.state = "stopped"
            member.write_status()
        failed = {n: c for n, c in codes.items() if c}
        if failed:
            log.error("%d of %d models failed: %s.", len(failed), len(codes), ", ".join(f"{n} (exit {c})" for n, c in failed.items()))
        return max(failed.values(), default=0)

    def shutdown(self) -> int:
        for member in self.members.values():
            member.stop_signal = self.stop_signal
            member.shutdown()
        return 0

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self.stop_signal = signal.Signals(signum).name
            for member in self.members.values():
                member.stop_signal = self.stop_signal
            self.wake.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)
