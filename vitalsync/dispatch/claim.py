"""Claiming due messages atomically: a lease per message, so two workers never take the same one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update

from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.queue.tables import Message


def claim(engine: Engine, now: datetime, owner: str, limit: int, lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due messages to ``owner`` and return their ids, oldest first."""
    due = (select(Message.id)
           .where(Message.status == MessageStatus.NOT_SENT, Message.send_at <= now,
                  or_(Message.lease_until.is_(None), Message.lease_until < now))
           .order_by(Message.send_at, Message.id).limit(limit))
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (update(Message).where(Message.id.in_(due.scalar_subquery()))
                 .values(lease_owner=owner, lease_until=now + lease).returning(Message.id))
    with session(engine) as db:
        ids = list(db.execute(statement).scalars())
        db.commit()
    return sorted(ids)


def release(message: Message) -> None:
    message.lease_owner = None
    message.lease_until = None
