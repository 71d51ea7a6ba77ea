"""Catch-up, spacing and the frequency cap through the real stages (sync → plan → dispatch) on the
virtual clock, on SQLite and PostgreSQL: planning sees what is queued and sent, moves a queued
message that lost its day, and dispatch checks the cap once more before a send.

The practice is the one of test_pipeline.py: one New York location, Monday 2 March 2026 is day one.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient, run, sent, start
from vitalsync.core.db import session
from vitalsync.core.vocab import DecisionKind, MessageStatus
from vitalsync.queue.tables import Decision, Message
from vitalsync.sync.connector import PickupRecord, RecallRecord

PHONE = "+12125550100"


def family(connector, ann_email: str | None = None):
    """Ann (1) and her son Sam (2) on one phone; without email everything goes by SMS."""
    shared = dict(guarantor_key="1", mobile=PHONE)
    open_practice(connector, patient("1", "Ann", email=ann_email, **shared), patient("2", "Sam", email=None, **shared))


def decisions(runtime, kind: str) -> list[Decision]:
    with session(runtime.engine) as db:
        return list(db.exec(select(Decision).where(Decision.kind == kind).order_by(Decision.id)))


def queued(runtime, kind: str) -> list[Message]:
    with session(runtime.engine) as db:
        return list(db.exec(select(Message).where(Message.kind == kind).order_by(Message.id)))


def test_a_recall_found_after_its_send_time_goes_at_the_next_allowed_moment(runtime, connector, clock):
    """Install day: a recall due in 3 days, whose two-weeks-before time is 11 days gone (past the
    recall's 7-day late_grace) — before, nothing until a week after it was due."""
    open_practice(connector, patient("1", "Ann"))
    connector.practice.recalls = [RecallRecord("R1", "1", date(2026, 3, 5))]
    start(runtime)
    run(runtime, ny(3, 12))

    [recall] = [s for s in sent(runtime) if s.kind == "recall"]
    assert recall.at == ny(2, 9)  # Monday, the window's first minute
    [decision] = [d for d in decisions(runtime, "recall") if d.decision == DecisionKind.QUEUED]
    assert decision.reason.startswith("catching up: its send time 2026-02-19 10:00 EST had passed")


def test_planning_defers_a_recall_behind_a_reminder_sent_that_day_and_says_why(runtime, connector, clock):
    family(connector, ann_email="ann@example.com")  # her pre-appointment email does not count: texts do
    book(connector, "A1", "1", ny(4, 15))  # Ann's -2d reminder: Monday 15:00 on the family phone
    start(runtime)
    run(runtime, ny(2, 16))
    texts = [(s.kind, s.at) for s in sent(runtime) if s.channel == "sms"]
    assert texts == [("appointment_reminder", ny(2, 15))]

    connector.practice.recalls = [RecallRecord("R1", "2", date(2026, 3, 10))]  # Sam's: -14d passed, catches up
    start(runtime)
    run(runtime, ny(5, 12))
    texts = [(s.kind, s.at) for s in sent(runtime) if s.channel == "sms"]
    assert texts == [("appointment_reminder", ny(2, 15)), ("recall", ny(3, 9)), ("appointment_reminder", ny(4, 12))]
    [deferred] = [d for d in decisions(runtime, "recall") if d.decision == DecisionKind.DEFERRED]
    assert deferred.reason.startswith("deferred by the frequency cap (1 a day, 3 a week per address)")


def test_a_queued_recall_gives_its_day_to_a_pickup(runtime, connector, clock):
    family(connector)
    connector.practice.recalls = [RecallRecord("R1", "2", date(2026, 3, 17))]  # -14d: Tuesday 10:00
    start(runtime)
    [recall] = queued(runtime, "recall")
    assert recall.send_at == ny(3, 10)

    run(runtime, ny(2, 12))
    connector.practice.pickups = [PickupRecord("O1", "1", "1", ny(3, 8))]  # Ann's glasses, +1h: Tuesday 9:00
    start(runtime)
    [recall] = queued(runtime, "recall")
    assert recall.send_at == ny(4, 9) and recall.status == MessageStatus.NOT_SENT
    assert runtime.plan_once().deferred == 0, "planning again leaves it where it was deferred to"

    run(runtime, ny(5, 12))
    assert [(s.kind, s.at) for s in sent(runtime)] == [("product_pickup", ny(3, 9)), ("recall", ny(4, 9))]
    assert any("frequency cap" in d.reason for d in decisions(runtime, "recall") if d.decision == DecisionKind.DEFERRED)


def test_dispatch_checks_the_cap_again_before_a_send(runtime, connector, clock):
    """A text reached the phone after planning placed the recall (no planning pass in between):
    the recall waits for the next day it fits."""
    family(connector)
    connector.practice.recalls = [RecallRecord("R1", "2", date(2026, 3, 17))]
    start(runtime)
    clock.set(ny(3, 8))
    with session(runtime.engine) as db:
        db.add(Message(key="elsewhere", kind="product_pickup", channel="sms", address=PHONE, patient_key="1",
                       send_at=ny(3, 8), status=MessageStatus.SENT, status_at=ny(3, 8), created_at=ny(3, 8),
                       sent_at=ny(3, 8)))
        db.commit()

    clock.set(ny(3, 10))
    report = runtime.dispatch_once()
    assert (report.claimed, report.sent, report.deferred) == (1, 0, 1)
    [recall] = queued(runtime, "recall")
    assert recall.status == MessageStatus.NOT_SENT and recall.send_at.astimezone(ny(1, 0).tzinfo) == ny(4, 0)
    assert "reached at the send" in decisions(runtime, "recall")[-1].reason

    clock.set(ny(4, 0))
    runtime.dispatch_once()  # midnight: the cap allows it; the window moves it to 9:00
    clock.set(ny(4, 9))
    runtime.dispatch_once()
    assert [(s.kind, s.at) for s in sent(runtime)] == [("recall", ny(4, 9))]


def test_three_after_appointment_texts_to_a_family_phone_are_one(runtime, connector, clock):
    shared = dict(guarantor_key="1", mobile=PHONE, email=None)
    open_practice(connector, *(patient(k, n, **shared) for k, n in (("1", "Ann"), ("2", "Sam"), ("3", "Lia"))))
    for key, who, hour in (("V1", "1", 9), ("V2", "2", 10), ("V3", "3", 11)):
        book(connector, key, who, ny(5, hour) + timedelta(days=7))
    clock.set(ny(12, 6))
    start(runtime)
    run(runtime, ny(12, 18))
    thanks = [s for s in sent(runtime) if s.kind == "after_appointment"]
    assert len(thanks) == 1 and thanks[0].appointments == {"V1", "V2", "V3"}
    assert all(name in thanks[0].body for name in ("Ann", "Sam", "Lia"))
