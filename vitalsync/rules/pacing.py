"""Where planned messages land for one address: one at a time, and no more than the cap allows.

Two rules, both per address (a phone number or an email address), across every kind:

- **spacing**: no two messages to an address closer than ``spacing`` (a family's three
  after-appointment texts to a shared phone do not arrive in the same minute);
- **the cap**: at most ``max_per_day`` messages on a calendar day (the clinic's zone) and
  ``max_per_week`` in any seven days, on the capped channels. Every message counts; kinds in
  ``exempt`` (appointment reminders, moves, cancellations) are never held back, the others are
  deferred to the next day they fit, or skipped when none is left before their deadline (the
  appointment, or for kinds without one their planned time plus the kind's ``late_grace``).

Messages are placed in priority order (the kind's place in ``priority``, then send time), so a
recall gives way to a pre-appointment message, never the other way round. Messages already sent
and messages due now are fixed; a queued message of a capped kind that is not due yet may be
deferred again when a message of a higher priority takes its day. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from vitalsync.rules.schedule import Window

LOOKAHEAD = timedelta(days=21)  #: a message is deferred at most this far beyond its planned time
MAX_STEPS = 500


@dataclass(frozen=True)
class Limits:
    spacing: timedelta
    max_per_day: int
    max_per_week: int
    channels: frozenset[str]  #: channels the cap counts and applies to
    exempt: frozenset[str]  #: kinds counted but never deferred or skipped by the cap
    priority: tuple[str, ...]
    tz: ZoneInfo  #: days are counted in the clinic's zone

    @classmethod
    def from_config(cls, schedule) -> Limits:
        return cls(spacing=timedelta(minutes=schedule.spacing_minutes), max_per_day=schedule.max_per_day,
                   max_per_week=schedule.max_per_week, channels=frozenset(schedule.cap_channels),
                   exempt=frozenset(schedule.cap_exempt), priority=tuple(schedule.priority),
                   tz=ZoneInfo(schedule.timezone))

    def rank(self, kind: str) -> int:
        return self.priority.index(kind) if kind in self.priority else len(self.priority)

    def capped(self, kind: str, channel: str) -> bool:
        return kind not in self.exempt and channel in self.channels

    def day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def describe(self) -> str:
        return f"{self.max_per_day} a day, {self.max_per_week} a week per address"


@dataclass(frozen=True)
class Booked:
    """A message to an address already in the queue or sent lately, as placing sees it."""

    id: int
    kind: str
    channel: str
    address: str
    at: datetime  #: sent at, or (not sent yet) its send time
    movable: bool = False  #: queued, not due yet and of a capped kind: it may be deferred again
    deadline: datetime | None = None  #: no send at or after this (the appointment)
    until: datetime | None = None  #: the cap defers it no later than this (deadline, or the kind's late_grace)
    window: Window | None = None
    tz: ZoneInfo | None = None  #: the recipient's zone, for the window's quiet hours


@dataclass(frozen=True)
class Item:
    """A message to place: a new one (``booked_id`` None) or a movable queued one."""

    key: str
    kind: str
    channel: str
    address: str
    at: datetime
    deadline: datetime | None  #: no send at or after this (the appointment)
    until: datetime  #: the cap defers it no later than this (deadline, or at + the kind's late_grace)
    window: Window
    tz: ZoneInfo
    booked_id: int | None = None


@dataclass(frozen=True)
class Placed:
    at: datetime | None  #: None: skipped
    reason: str  #: empty when it stays where it was planned


def place(items: list[Item], fixed: list[Booked], limits: Limits) -> dict[str, Placed]:
    """Each item's send time (by key), placing them in priority order around ``fixed`` and each other."""
    taken: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for booked in fixed:
        taken[booked.address].append((booked.at, booked.channel))
    result = {}
    # within a kind, the earliest deadline picks first: its room to move is the smallest
    for item in sorted(items, key=lambda i: (limits.rank(i.kind), i.at, i.deadline or i.until, i.key)):
        placed = _slot(item, taken[item.address], limits)
        if placed.at is None and not limits.capped(item.kind, item.channel):
            placed = Placed(item.at, "")  # exempt kinds are never dropped: spacing is best effort for them
        result[item.key] = placed
        if placed.at is not None:
            taken[item.address].append((placed.at, item.channel))
    return result


def _slot(item: Item, taken: list[tuple[datetime, str]], limits: Limits) -> Placed:
    at, capped, spaced = item.at, False, False
    for _ in range(MAX_STEPS):
        allowed = item.window.next_allowed(at, item.tz)
        # its own planned time was checked against the deadline when it was planned
        late = allowed is not None and allowed > item.at and (
            (item.deadline is not None and allowed >= item.deadline) or allowed > item.at + LOOKAHEAD)
        if allowed is None or late:
            break
        at = allowed
        close = [other for other, _ in taken if abs(other - at) < limits.spacing]
        if close:
            at, spaced = max(close) + limits.spacing, True
            continue
        if limits.capped(item.kind, item.channel) and not fits(at, taken, limits):
            at, capped = datetime.combine(limits.day(at) + timedelta(days=1), time(0, 0), limits.tz), True
            if at >= item.until:
                break
            continue
        if at == item.at:
            return Placed(at, "")
        why = (f"deferred by the frequency cap ({limits.describe()})" if capped else
               f"spaced {limits.spacing.total_seconds() / 60:.0f} minutes from another message to the same address")
        return Placed(at, f"{why}, from {item.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    if capped:
        return Placed(None, f"frequency cap ({limits.describe()}): no day left for it before "
                            f"{min(item.until, item.at + LOOKAHEAD).astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    return Placed(None, "no send time left that keeps messages to this address apart" if spaced else
                  "no allowed send time left")


def fits(at: datetime, taken: list[tuple[datetime, str]], limits: Limits) -> bool:
    """Whether one more capped message on ``at``'s day stays within the day's and every 7 days' cap."""
    days = Counter(limits.day(other) for other, channel in taken if channel in limits.channels)
    day = limits.day(at)
    if days[day] + 1 > limits.max_per_day:
        return False
    for first in range(-6, 1):
        span = [day + timedelta(days=first + i) for i in range(7)]
        if sum(days[d] for d in span) + 1 > limits.max_per_week:
            return False
    return True
