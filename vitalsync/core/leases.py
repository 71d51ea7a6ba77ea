"""Leases held in the database: one process at a time runs a job (a sync, a reconciliation pass).

Several ``vitalsync run`` processes may share one PostgreSQL queue. A job that must not run twice at
once takes its lease first; the lease names its holder and runs out at ``until``, so when a holder
dies another process takes the job over once the lease has run out. Taking and renewing are one
conditional UPDATE (or the INSERT of a new row), which the database serialises on every backend.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, Engine, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from vitalsync.core.db import UTCDateTime


class JobLease(SQLModel, table=True):
    __tablename__ = "job_lease"

    name: str = Field(primary_key=True)  #: the job: "sync", "reconcile"
    owner: str  #: the holding process (Runtime.owner)
    until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def take(engine: Engine, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease on ``name`` until ``now + ttl``; False while another process holds it."""
    until = now + ttl
    table = JobLease.__table__
    with engine.begin() as connection:
        taken = connection.execute(
            update(table).where(table.c.name == name)
            .where((table.c.owner == owner) | (table.c.until <= now))
            .values(owner=owner, until=until)).rowcount
        if taken:
            return True
        try:
            with connection.begin_nested():
                connection.execute(insert(table).values(name=name, owner=owner, until=until))
        except IntegrityError:  # the row exists and someone else holds it
            return False
        return True


def release(engine: Engine, name: str, owner: str) -> None:
    """Give the lease back at once (a clean stop), so another process need not wait for it to run out."""
    table = JobLease.__table__
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.name == name).where(table.c.owner == owner)
                           .values(until=datetime(1970, 1, 1).astimezone()))
