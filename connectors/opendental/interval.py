"""Open Dental's packed intervals (``recall.RecallInterval``, ``recalltype.DefaultInterval``).

One int holds four bytes: days in bits 0–7, weeks 8–15, months 16–23, years 24–31
(OpenDentBusiness/Db/Interval.cs). Six months is ``6 << 16`` = 393216.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import NamedTuple


class Interval(NamedTuple):
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    def pack(self) -> int:
        return self.years << 24 | self.months << 16 | self.weeks << 8 | self.days

    @classmethod
    def unpack(cls, packed: int) -> Interval:
        return cls(packed >> 24 & 0xFF, packed >> 16 & 0xFF, packed >> 8 & 0xFF, packed & 0xFF)

    def after(self, day: date) -> date:
        """``day`` plus this interval: years and months on the calendar (the 31st becomes the month's
        last day), then weeks and days."""
        month = day.month - 1 + self.months
        year = day.year + self.years + month // 12
        month = month % 12 + 1
        moved = day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))
        return moved + timedelta(weeks=self.weeks, days=self.days)
