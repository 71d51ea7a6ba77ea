"""When a message may go out: the clinic's send window and the recipient's quiet hours.

Both must hold. The window (days, hours, holidays) is read in the location's time zone; quiet hours
in the recipient's own, so a patient three zones west is not texted at 6 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from vitalsync.core.config import Config

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LOOKAHEAD_DAYS = 21


@dataclass(frozen=True)
class Window:
    tz: ZoneInfo
    start: time
    end: time
    days: frozenset[int]
    holidays: frozenset[date]
    quiet_start: time
    quiet_end: time

    def allows(self, at: datetime, recipient_tz: ZoneInfo) -> bool:
        local = at.astimezone(self.tz)
        if local.weekday() not in self.days or local.date() in self.holidays:
            return False
        if not self.start <= local.time() < self.end:
            return False
        mine = at.astimezone(recipient_tz).time()
        if self.quiet_start > self.quiet_end:
            return self.quiet_end <= mine < self.quiet_start
        return not self.quiet_start <= mine < self.quiet_end

    def next_allowed(self, at: datetime, recipient_tz: ZoneInfo) -> datetime | None:
        """The first allowed moment at or after ``at``: allowed spans start at one of the candidates."""
        for candidate in sorted(c for c in self._starts(at, recipient_tz) if c >= at):
            if self.allows(candidate, recipient_tz):
                return candidate
        return None

    def last_allowed_before(self, limit: datetime, recipient_tz: ZoneInfo) -> datetime | None:
        """The latest allowed minute strictly before ``limit`` (allowed spans end at a candidate)."""
        ends = [limit] + [c for c in self._ends(limit, recipient_tz) if c <= limit]
        for candidate in sorted(ends, reverse=True):
            minute = candidate - timedelta(minutes=1)
            if self.allows(minute, recipient_tz):
                return minute
        return None

    def _starts(self, at: datetime, recipient_tz: ZoneInfo):
        yield at
        yield from self._daily(at.astimezone(self.tz).date(), self.start, self.tz, 1)
        for boundary in (time(0, 0), self.quiet_end):
            yield from self._daily(at.astimezone(recipient_tz).date(), boundary, recipient_tz, 1)

    def _ends(self, limit: datetime, recipient_tz: ZoneInfo):
        yield from self._daily(limit.astimezone(self.tz).date(), self.end, self.tz, -1)
        for boundary in (time(0, 0), self.quiet_start):
            yield from self._daily(limit.astimezone(recipient_tz).date(), boundary, recipient_tz, -1)
        yield from self._daily(limit.astimezone(self.tz).date(), time(0, 0), self.tz, -1)

    @staticmethod
    def _daily(first: date, at: time, tz: ZoneInfo, step: int):
        for offset in range(LOOKAHEAD_DAYS):
            yield datetime.combine(first + timedelta(days=offset * step), at, tz)


def base_window(config: Config, location_key: str | None = None, location_tz: str | None = None) -> Window:
    """The window for a location: its [locations.KEY] overrides, else the PMS's zone, else [schedule]."""
    base, override = config.schedule, config.locations.get(location_key or "")

    def pick(name: str):
        value = getattr(override, name, None) if override else None
        return getattr(base, name) if value is None else value

    zone = (override.timezone if override else None) or location_tz or base.timezone
    return Window(
        tz=ZoneInfo(zone), start=pick("window_start"), end=pick("window_end"),
        days=frozenset(DAYS.index(day) for day in pick("days")), holidays=frozenset(pick("holidays")),
        quiet_start=base.quiet_start, quiet_end=base.quiet_end)
