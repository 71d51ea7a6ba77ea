"""Job leases: one holder at a time, renewed by its holder, taken over once it runs out or is released.

Leases go by the database's clock (PostgreSQL's ``clock_timestamp()``; SQLite's host clock) unless
a test passes its own ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text

from vitalsync.app.jobs import JobLeases
from vitalsync.app.runtime import open_database
from vitalsync.core import leases
from vitalsync.core.clock import SystemClock
from vitalsync.core.leases import JobLease

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
TTL = timedelta(minutes=5)


def test_one_holder_at_a_time_and_takeover_after_expiry(config):
    engine = open_database(config)
    assert leases.take(engine, "sync", "a", T0, TTL)
    assert not leases.take(engine, "sync", "b", T0 + timedelta(minutes=1), TTL)
    assert leases.take(engine, "sync", "a", T0 + timedelta(minutes=4), TTL)  # renewed to 12:09
    assert not leases.take(engine, "sync", "b", T0 + timedelta(minutes=8), TTL)
    assert leases.take(engine, "reconcile", "b", T0, TTL)  # another job is another lease
    assert leases.take(engine, "sync", "b", T0 + timedelta(minutes=9), TTL)  # a ran out: b takes over
    assert not leases.take(engine, "sync", "a", T0 + timedelta(minutes=10), TTL)


def test_release_hands_over_at_once(config):
    engine = open_database(config)
    assert leases.take(engine, "sync", "a", T0, TTL)
    leases.release(engine, "sync", "b")  # not the holder: nothing happens
    assert not leases.take(engine, "sync", "b", T0, TTL)
    leases.release(engine, "sync", "a")
    assert leases.take(engine, "sync", "b", T0, TTL)


class FastClock(SystemClock):
    """The system clock of a host that runs ten minutes fast."""

    def now(self) -> datetime:
        return super().now() + timedelta(minutes=10)


def database_now(engine) -> datetime:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return connection.execute(text("SELECT timezone('UTC', clock_timestamp())")).scalar_one().replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def test_without_now_a_lease_runs_by_the_database_clock(config):
    engine = open_database(config)
    before = database_now(engine)
    assert leases.take(engine, "sync", "a", None, TTL)
    with engine.connect() as connection:
        until = connection.execute(select(JobLease.until)).scalar_one()
    assert before + TTL <= until <= database_now(engine) + TTL
    assert not leases.take(engine, "sync", "b", None, TTL)
    assert leases.take(engine, "sync", "a", None, TTL)  # its holder renews it
    leases.release(engine, "sync", "a")
    assert leases.take(engine, "sync", "b", None, TTL)


def test_a_host_whose_clock_is_fast_cannot_take_a_lease_still_valid_by_the_database_clock(config):
    engine = open_database(config)
    holder = JobLeases(engine, "a", SystemClock(), TTL)
    fast = JobLeases(engine, "b", FastClock(), TTL)
    with holder.held("sync") as mine:
        assert mine
        with fast.held("sync") as theirs:
            assert not theirs, "the fast host took a lease that runs for five more minutes"
        # the hazard: judged by its own clock, the fast host sees the lease as run out and takes it
        assert leases.take(engine, "sync", "b", FastClock().now(), TTL)
