"""The frequency cap, checked again just before a send (planning placed the message within it).

Planning sees every message queued and sent, so a message it placed fits. This last look counts
what was actually *sent* to the address, which catches what planning could not foresee: a message
sent by another path since (a staff send, a retry that landed late, a second planner on an old
config). A message over the cap is deferred to the next day it fits, or skipped with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session, col, select

from vitalsync.queue.tables import Message
from vitalsync.rules.pacing import Limits, fits

WEEK = timedelta(days=7)


def capped_until(db: Session, message: Message, limits: Limits, now: datetime) -> datetime | None:
    """None when the message may go now; else the start of the next day the cap allows it (clinic zone)."""
    if not limits.capped(message.kind, message.channel):
        return None
    rows = db.exec(select(Message.sent_at, Message.channel).where(
        Message.address == message.address, Message.id != message.id, col(Message.sent_at).is_not(None),
        Message.sent_at >= now - WEEK, Message.sent_at <= now + WEEK)).all()
    taken = [(sent_at, channel) for sent_at, channel in rows]
    day = now
    for _ in range(8):
        if fits(day, taken, limits):
            return None if day == now else day
        day = datetime.combine(limits.day(day) + timedelta(days=1), time(0, 0), limits.tz)
    return day


def reason(limits: Limits, when: datetime) -> str:
    return (f"frequency cap ({limits.describe()}) reached at the send; deferred to "
            f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC or later")
