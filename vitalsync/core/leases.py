"""Leases held in the database: one process at a time runs a job (a sync, a reconciliation pass).

Several ``vitalsync run`` processes may share one PostgreSQL queue. A job that must not run twice at
once takes its lease first; the lease names its holder and runs out at ``until``, so when a holder
dies another process takes the job over once the lease has run out. Taking and renewing are one
conditional UPDATE (or the INSERT of a new row), which the database serialises on every backend.

Whose clock: the processes may run on several hosts, and hosts' clocks drift. Were each to judge
``until`` by its own clock, a host running ten minutes fast would see a live lease as run out and
take it while its holder still works: two syncs at once. So by default (``now=None``) the lease is
judged and written by the database server's clock, the one clock every process shares. SQLite is
a file on one host, so there the local clock is that shared clock. Passing ``now`` (tests, the
demo's virtual clock) judges by that time instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Column, DateTime, Engine, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from vitalsync.core.db import UTCDateTime


class JobLease(SQLModel, table=True):
    __tablename__ = "job_lease"

    name: str = Field(primary_key=True)  #: the job: "sync", "reconcile"
    owner: str  #: the holding process (Runtime.owner)
    until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def take(engine: Engine, name: str, owner: str, now: datetime | None, ttl: timedelta) -> bool:
    """Take or renew the lease on ``name`` until ``now + ttl``; False while another process holds it.

    ``now=None`` means the database server's clock (see the module docstring)."""
    now = database_now(engine) if now is None else now
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


#: PostgreSQL's clock, read by the server inside the statement (see :func:`database_now`)
SERVER_NOW = func.timezone("UTC", func.clock_timestamp(), type_=DateTime())


def database_now(engine: Engine):
    """The database's idea of now: a SQL expression on PostgreSQL, evaluated by the server in the
    statement itself, so the caller's clock plays no part. ``until`` is stored as naive UTC
    (``UTCDateTime``), hence the conversion; ``clock_timestamp()`` rather than ``now()``, which is
    the start of the transaction and could lag behind after a wait for the row's lock. Message
    claims (:mod:`vitalsync.dispatch.claim`) share it."""
    if engine.dialect.name == "postgresql":
        return SERVER_NOW
    return datetime.now(timezone.utc)  # SQLite: one host, so its clock is the shared one
