"""Claiming due messages atomically: a lease per message, so two workers never take the same one.

Whose clock judges a lease: workers on several hosts may share one PostgreSQL queue, and hosts'
clocks drift. Were each to judge ``lease_until`` by its own clock, a host running ten minutes fast
would see another worker's live claim as run out, take the message while its holder is sending it,
and the patient could get it twice. So, as for job leases (:mod:`vitalsync.core.leases`), a claim is
judged and written by the database server's clock when ``lease_now`` is None (the daemon on the
system clock); a virtual clock (tests, the demo) passes its own time. Only the lease moves to that
clock: whether a message is *due* (``send_at``) stays on the caller's clock, the one the planner, the
send window and the last look before sending go by, so pacing and deferral behave as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update

from vitalsync.core.db import session
from vitalsync.core.leases import database_now
from vitalsync.core.vocab import MessageStatus
from vitalsync.queue.tables import Message


def claim(engine: Engine, now: datetime, owner: str, limit: int, lease: timedelta, *,
          lease_now: datetime | None) -> list[int]:
    """Lease up to ``limit`` messages due by ``now`` to ``owner`` and return their ids, oldest first.

    ``lease_now`` judges and stamps the leases; None means the database server's clock."""
    clock = lease_clock(engine, lease_now)
    due = (select(Message.id)
           .where(Message.status == MessageStatus.NOT_SENT, Message.send_at <= now,
                  or_(Message.lease_until.is_(None), Message.lease_until < clock))
           .order_by(Message.send_at, Message.id).limit(limit))
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (update(Message).where(Message.id.in_(due.scalar_subquery()))
                 .values(lease_owner=owner, lease_until=clock + lease).returning(Message.id))
    with session(engine) as db:
        ids = list(db.execute(statement).scalars())
        db.commit()
    return sorted(ids)


def lease_clock(engine: Engine, lease_now: datetime | None):
    """The time leases are judged by: ``lease_now``, or the database's clock (a SQL expression on
    PostgreSQL, so it is read by the server inside the statement) when None."""
    return database_now(engine) if lease_now is None else lease_now


def release(message: Message) -> None:
    message.lease_owner = None
    message.lease_until = None
