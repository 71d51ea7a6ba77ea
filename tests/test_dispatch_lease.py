"""A worker whose lease ran out mid-way must not send: the message belongs to its new holder.

Message leases go by the database server's clock on the system clock, so hosts whose clocks
disagree cannot both hold a message (on SQLite, one host, that is the host's own clock).
"""

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.clock import SystemClock
from vitalsync.core.db import session
from vitalsync.core.leases import database_now
from vitalsync.dispatch import run
from vitalsync.dispatch.claim import claim
from vitalsync.queue.tables import Message


def test_a_worker_that_lost_its_lease_before_sending_sends_nothing(runtime, connector, monkeypatch):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    runtime.plan_once()
    runtime.clock.set(ny(2, 12))
    real_gather = run.gather

    def taken_over_meanwhile(db, message, kind):
        with session(runtime.engine) as other:  # another worker claims it after our lease expired
            other.execute(update(Message).where(Message.id == message.id).values(lease_owner="someone-else"))
            other.commit()
        return real_gather(db, message, kind)

    monkeypatch.setattr(run, "gather", taken_over_meanwhile)
    report = runtime.dispatch_once()
    assert report.claimed == 2 and report.sent == 0  # the -2d reminder and the caught-up pre-appointment email
    assert runtime.sender.sent == []
    with session(runtime.engine) as db:
        taken = db.exec(select(Message).where(Message.lease_owner == "someone-else")).all()
        assert len(taken) == 2
        assert all(m.status == "not_sent" and not m.in_flight and m.attempts == 0 for m in taken)


class FastClock(SystemClock):
    """The system clock of a host that runs ten minutes fast (longer than the 300 s message lease)."""

    def now(self) -> datetime:
        return super().now() + timedelta(minutes=10)


class SlowClock(SystemClock):
    """The system clock of a host that runs ten minutes slow."""

    def now(self) -> datetime:
        return super().now() - timedelta(minutes=10)


def due_messages(runtime, connector) -> list[int]:
    """A few reminders, planned on the virtual clock in March 2026: long due by the real clock."""
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    runtime.plan_once()
    with session(runtime.engine) as db:
        ids = sorted(db.exec(select(Message.id)).all())
    assert ids
    return ids


def worker(runtime, owner: str, clock: SystemClock) -> run.Dispatcher:
    return run.Dispatcher(runtime.engine, runtime.kinds, {c: runtime.sender for c in runtime.sender.channels},
                          runtime.config, clock, owner)


def test_a_worker_whose_clock_runs_fast_cannot_claim_a_message_another_worker_holds(runtime, connector, monkeypatch):
    ids = due_messages(runtime, connector)
    holder, fast = worker(runtime, "holder", SystemClock()), worker(runtime, "fast", FastClock())
    real_gather, seen = run.gather, []

    def fast_worker_runs_meanwhile(db, message, kind):
        if not seen:  # the holder has claimed the message and settles it: the fast host's pass comes now
            with session(runtime.engine) as other:
                seen.append({other.get(Message, i).lease_owner for i in ids})
            seen.append(fast.dispatch_once().claimed)
        return real_gather(db, message, kind)

    monkeypatch.setattr(run, "gather", fast_worker_runs_meanwhile)
    assert holder.dispatch_once().claimed == len(ids)
    assert seen[0] == {"holder"}
    # judged by its own clock, the fast host would see the holder's 300 s lease as ten minutes old
    assert seen[1] == 0, "a host whose clock runs fast claimed a message another worker holds"


def test_a_worker_whose_clock_runs_slow_does_not_mark_in_flight_once_its_lease_ran_out(runtime, connector):
    ids = due_messages(runtime, connector)
    message_id = ids[0]
    slow = worker(runtime, "slow", SlowClock())
    assert claim(runtime.engine, slow.clock.now(), slow.owner, 10, timedelta(minutes=5), lease_now=None) == ids
    with session(runtime.engine) as db:  # the worker stalled: by the server's clock its lease ran out a minute ago
        db.execute(update(Message).where(Message.id == message_id)
                   .values(lease_until=database_now(runtime.engine) - timedelta(minutes=1)))
        db.commit()
    with Session(runtime.engine, expire_on_commit=False) as db:
        message = db.get(Message, message_id)
        assert not slow._mark_in_flight(db, message), "marked in flight on a lease that ran out nine minutes ago by its own clock"
    with session(runtime.engine) as db:
        message = db.get(Message, message_id)
        assert not message.in_flight and message.attempts == 0
