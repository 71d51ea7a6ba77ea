"""A worker whose lease ran out mid-way must not send: the message belongs to its new holder."""

from sqlalchemy import update
from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.dispatch import run
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
    assert report.claimed == 1 and report.sent == 0
    assert runtime.sender.sent == []
    with session(runtime.engine) as db:
        (message,) = db.exec(select(Message).where(Message.lease_owner == "someone-else")).all()
        assert message.status == "not_sent" and not message.in_flight and message.attempts == 0
