"""Job leases: one holder at a time, renewed by its holder, taken over once it runs out or is released."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vitalsync.app.runtime import open_database
from vitalsync.core import leases

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
