"""When the scheduler's next run is due: clock-anchored, time-zone and DST aware.

``schedule`` computes the next run from the moment a job *finished*, in naive local
time. That drifts (a job every 6 hours that takes 20 minutes slides by 20 minutes a
run) and is vague on daylight-saving days. :class:`Plan` is read off the ``schedule``
job (so editing the user's ``schedule.every()...`` line still decides the schedule) and
computes run times itself:

- intervals are anchored to the previous *due* time, never to when a run ended;
- ``at`` times are wall-clock times in the plan's zone (``--timezone``, default local);
- a wall time that does not exist that day (spring forward: Europe/Helsinki has no
  03:00-03:59 on the last Sunday of March) runs once, shifted by the gap (03:00 -> 04:00);
- a wall time that happens twice (fall back: 03:00-03:59 twice on the last Sunday of
  October in Helsinki) runs once, at the first occurrence. Never twice, never skipped.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UNITS = ("seconds", "minutes", "hours", "days", "weeks")
UTC = dt.timezone.utc


def local_zone() -> dt.tzinfo:
    """The machine's zone with its DST rules where it can be found, else its fixed offset."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text(encoding="utf-8").strip())
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return dt.datetime.now().astimezone().tzinfo or UTC


def get_zone(name: str | None) -> dt.tzinfo:
    """``ZoneInfo(name)``, or the local zone for ``None``; ValueError with advice if unknown."""
    if not name:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Helsinki or UTC") from exc


def wall_time_to_instant(day: dt.date, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The UTC instant of wall time ``at`` on ``day`` in ``tz`` (DST rules above)."""
    local = dt.datetime.combine(day, at).replace(tzinfo=tz, fold=0)
    return local.astimezone(UTC)


@dataclass(frozen=True)
class Plan:
    """Every ``every`` ``unit`` (optionally at wall time ``at``) in zone ``tz``."""

    every: int
    unit: str
    at: dt.time | None
    tz: dt.tzinfo

    @classmethod
    def from_job(cls, job, tz: dt.tzinfo) -> Plan:
        """Read the schedule off a ``schedule.Job`` built by the user's line."""
        unit = job.unit
        if unit not in UNITS:
            raise ValueError(f"unsupported schedule unit {unit!r}; use one of {', '.join(UNITS)}")
        if job.start_day is not None:
            raise ValueError("weekday schedules (every().monday) are not supported; use --every 1 --unit weeks --at HH:MM")
        at = job.at_time if unit in ("days", "weeks") else None
        return cls(int(job.interval), unit, at, tz)

    @property
    def period(self) -> dt.timedelta:
        return dt.timedelta(**{self.unit: self.every})

    def first_run(self, now: dt.datetime) -> dt.datetime:
        """The first due time after ``now`` (aware)."""
        if self.at is None:
            return now + self.period
        today = now.astimezone(self.tz).date()
        for offset in range(0, 3):
            due = wall_time_to_instant(today + dt.timedelta(days=offset), self.at, self.tz)
            if due > now:
                return due
        raise AssertionError("unreachable: a wall time exists within three days")

    def next_run(self, due: dt.datetime, now: dt.datetime) -> dt.datetime:
        """The due time after ``due`` that is still in the future at ``now``."""
        nxt = due
        while nxt <= now or nxt == due:
            if self.at is None:
                nxt = nxt + self.period
            else:
                days = self.every * (7 if self.unit == "weeks" else 1)
                local_day = nxt.astimezone(self.tz).date()
                # The due instant of a shifted (gap) run is on the same local day, so stepping
                # whole local days from it can neither repeat nor skip a day.
                nxt = wall_time_to_instant(local_day + dt.timedelta(days=days), self.at, self.tz)
        return nxt

    def describe(self) -> str:
        zone = getattr(self.tz, "key", None) or str(self.tz)
        if self.at is not None:
            when = self.at.strftime("%H:%M")
            if self.unit == "days":
                span = "every day" if self.every == 1 else f"every {self.every} days"
            else:
                span = "every week" if self.every == 1 else f"every {self.every} weeks"
            return f"{span} at {when} ({zone})"
        unit = self.unit[:-1] if self.every == 1 else self.unit
        return f"every {self.every} {unit}" if self.every != 1 else f"every {unit}"


def to_schedule_naive(instant: dt.datetime) -> dt.datetime:
    """``schedule`` compares naive local times: convert an aware instant to that."""
    return instant.astimezone().replace(tzinfo=None)


def fmt(instant: dt.datetime | None, tz: dt.tzinfo | None = None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(tz or UTC).isoformat(timespec="seconds")
