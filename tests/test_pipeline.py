"""End to end through the real stages: sync → plan → dispatch → status, on the virtual clock.

The practice is one New York location; Monday 2 March 2026 is day one. ``run`` plays the daemon:
every 15 minutes it plans and dispatches, waking early when a queued message falls due (the real
daemon dispatches every 30 seconds). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import select
from tenacity import wait_none

from vitalsync.console.queries import Filter, message_log, sync_runs, why
from vitalsync.core.db import session
from vitalsync.core.errors import RetryLater, SyncHeld
from vitalsync.core.vocab import AppointmentStatus, Channel, MessageStatus
from vitalsync.mirror import refresh
from vitalsync.mirror.tables import Appointment
from vitalsync.queue.tables import Decision, Message, MessageEvent, MessageTarget
from vitalsync.status.record import record_reply
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, OptOutRecord, PatientRecord

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
STEP = timedelta(minutes=15)
REMINDERS = {"appointment_reminder"}
AHEAD = REMINDERS | {"pre_appointment"}  #: kinds sent before an appointment (pre_appointment catches up)


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026, New York time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=NEW_YORK)


def patient(key: str, first: str, **extra) -> PatientRecord:
    extra.setdefault("mobile", f"+1212555{int(key):04d}")
    extra.setdefault("email", f"{first.lower()}{key}@example.com")
    return PatientRecord(key, first, "Doe", **extra)


def open_practice(connector, *patients: PatientRecord) -> None:
    connector.practice.locations = [LocationRecord("1", "Main Street", "America/New_York", "(212) 555-0100")]
    connector.practice.patients = list(patients)


def book(connector, key: str, patient_key: str, start: datetime) -> AppointmentRecord:
    record = AppointmentRecord(key, patient_key, "1", start, start + timedelta(minutes=30))
    connector.practice.appointments.append(record)
    return record


@dataclass(frozen=True)
class Sent:
    """One message the sender handed over, with what the outbox knows of it."""

    kind: str
    channel: str
    to: str
    body: str
    at: datetime  #: the clock when it was sent
    targets: tuple[tuple[str, int], ...]  #: (appointment key, version planned for)

    @property
    def appointments(self) -> set[str]:
        return {key for key, _ in self.targets}


def sent(runtime) -> list[Sent]:
    result = []
    with session(runtime.engine) as db:
        for outgoing in runtime.sender.sent:
            message = db.get(Message, outgoing.message_id)
            targets = db.exec(select(MessageTarget).where(MessageTarget.message_id == message.id)
                              .order_by(MessageTarget.position)).all()
            result.append(Sent(message.kind, outgoing.channel, outgoing.to, outgoing.body, message.sent_at,
                               tuple((t.appointment_key, t.appointment_version) for t in targets)))
    return result


def reminders(runtime, appointment: str | None = None) -> list[Sent]:
    return [s for s in sent(runtime) if s.kind in REMINDERS and (appointment is None or appointment in s.appointments)]


def next_due(runtime) -> datetime | None:
    with session(runtime.engine) as db:
        return db.exec(select(func.min(Message.send_at)).where(
            Message.status == MessageStatus.NOT_SENT, Message.send_at > runtime.clock.now())).one()


def run(runtime, until: datetime) -> None:
    """Plan and dispatch every step until ``until``."""
    clock = runtime.clock
    while clock.now() < until:
        due = next_due(runtime)
        clock.set(min(clock.now() + STEP, until, *([due] if due else [])))
        runtime.plan_once()
        runtime.dispatch_once()


def start(runtime) -> None:
    runtime.sync_once()
    runtime.plan_once()


def reply(runtime, address: str, body: str, channel: str = "sms"):
    with session(runtime.engine) as db:
        result = record_reply(db, runtime.config, channel, address, body, runtime.clock.now())
        db.commit()
    return result


def messages(runtime, appointment: str, kind: str = "appointment_reminder") -> list[dict]:
    return message_log(runtime.engine, Filter(appointment=appointment, kind=kind))


def send_at(row: dict) -> datetime:
    return datetime.fromisoformat(row["send_at"])


def decisions(runtime, appointment: str) -> list[str]:
    return [d["decision"] for d in why(runtime.engine, appointment)["decisions"]]


def row_counts(runtime) -> dict[str, int]:
    with session(runtime.engine) as db:
        return {table.__name__: db.exec(select(func.count()).select_from(table)).one()
                for table in (Message, MessageEvent, Decision)}


def test_a_moved_appointment_never_gets_a_reminder_for_its_old_time(runtime, connector, clock):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    start(runtime)
    assert {send_at(m) for m in messages(runtime, "A1")} == {ny(2, 10), ny(4, 9)}

    run(runtime, ny(2, 8))
    connector.change("A1", start=ny(5, 10), end=ny(5, 10, 30))
    start(runtime)
    old = [m for m in messages(runtime, "A1") if m["status"] == MessageStatus.CANCELLED]
    assert len(old) == 2 and all("moved" in m["reason"] for m in old)

    run(runtime, ny(6, 12))
    sent_reminders = reminders(runtime, "A1")
    assert [s.at for s in sent_reminders] == [ny(3, 10), ny(5, 9)]  # -2d and -3h (deferred into the window)
    for reminder in sent_reminders:
        assert reminder.targets == (("A1", 2),)
        assert "Thursday, March 5" in reminder.body and "March 4" not in reminder.body
    assert not any(s.at in (ny(2, 10), ny(4, 9)) for s in sent(runtime) if s.kind == "appointment_reminder")
    assert "moved" in decisions(runtime, "A1")


def test_a_cancelled_appointment_gets_nothing_after_the_sync_that_saw_it(runtime, connector, clock):
    open_practice(connector, patient("1", "Ann"), patient("2", "Ben"))
    book(connector, "A1", "1", ny(4, 10))
    book(connector, "A2", "2", ny(5, 10))
    start(runtime)
    run(runtime, ny(2, 12))
    assert [s.at for s in reminders(runtime, "A1")] == [ny(2, 10)]

    connector.change("A1", status=AppointmentStatus.CANCELLED)
    runtime.sync_once()
    cancelled_at = clock.now()
    run(runtime, ny(6, 12))
    assert [s for s in sent(runtime) if s.kind in AHEAD and "A1" in s.appointments and s.at >= cancelled_at] == []
    notices = [s for s in sent(runtime) if s.kind == "appointment_cancellation"]
    assert [n.appointments for n in notices] == [{"A1"}]
    assert len(reminders(runtime, "A2")) == 2  # the other patient is untouched


def test_a_cancellation_synced_but_not_yet_planned_still_stops_a_due_reminder(runtime, connector, clock):
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    start(runtime)
    clock.set(ny(2, 10))  # the -2d reminder is due now
    connector.change("A1", status=AppointmentStatus.CANCELLED)
    runtime.sync_once()  # no planning pass in between: dispatch's last look must catch it

    report = runtime.dispatch_once()  # the reminder and the pre-appointment message (caught up at 9:00)
    assert report.claimed == 2 and report.sent == 0 and report.dropped == 2
    assert runtime.sender.sent == []
    dropped = [m for m in messages(runtime, "A1") if send_at(m) == ny(2, 10)]
    assert dropped[0]["status"] == MessageStatus.CANCELLED and "cancelled" in dropped[0]["reason"]


def test_planning_twice_is_a_no_op(runtime, connector, clock):
    family = dict(guarantor_key="1", mobile="+12125550100")
    open_practice(connector, patient("1", "Ann", **family), patient("2", "Ben", **family),
                  patient("3", "Cal", timezone="America/Los_Angeles"), patient("4", "Dee", mobile=None, email=None))
    connector.practice.opt_outs = [OptOutRecord("3", Channel.SMS)]
    for key, person, when in (("A1", "1", ny(4, 10)), ("A2", "2", ny(4, 10, 30)), ("A3", "3", ny(5, 10)),
                              ("A4", "4", ny(4, 11))):
        book(connector, key, person, when)
    runtime.sync_once()
    first = runtime.plan_once()
    assert first.queued > 0 and first.decisions > 0
    before = row_counts(runtime)

    second = runtime.plan_once()
    assert (second.queued, second.cancelled, second.decisions) == (0, 0, 0)
    assert row_counts(runtime) == before


def book_family(connector) -> str:
    """Ann, Ben and Cal on one phone (Ann the guarantor), booked F1, F2, F3 on day 4; their phone."""
    phone, family = "+12125550100", dict(guarantor_key="1", mobile="+12125550100")
    open_practice(connector, patient("1", "Ann", **family), patient("2", "Ben", **family), patient("3", "Cal", **family))
    for key, person, when in (("F1", "1", ny(4, 10)), ("F2", "2", ny(4, 10, 30)), ("F3", "3", ny(4, 11))):
        book(connector, key, person, when)
    return phone


def test_a_family_on_one_phone_gets_one_message(runtime, connector, clock):
    phone = book_family(connector)
    start(runtime)
    run(runtime, ny(4, 12))

    family_reminders = [s for s in sent(runtime) if s.kind == "appointment_reminder"]
    assert [(s.channel, s.to, s.at) for s in family_reminders] == [("sms", phone, ny(2, 10)), ("sms", phone, ny(4, 9))]
    for reminder in family_reminders:
        assert all(name in reminder.body for name in ("Ann", "Ben", "Cal"))
        assert reminder.appointments == {"F1", "F2", "F3"}
    assert "suppressed" not in decisions(runtime, "F1")
    assert "suppressed" in decisions(runtime, "F2") and "suppressed" in decisions(runtime, "F3")


def test_a_member_who_answered_by_number_is_left_out_of_the_next_family_reminder(runtime, connector, clock):
    phone = book_family(connector)
    start(runtime)
    run(runtime, ny(2, 12))
    [first] = reminders(runtime)
    assert first.at == ny(2, 10) and [key for key, _ in first.targets] == ["F1", "F2", "F3"]

    answered = reply(runtime, phone, "C1")  # Ann confirms; Ben and Cal have not answered yet
    assert answered.intent == "confirm" and not answered.needs_staff
    run(runtime, ny(4, 12))

    [_, second] = reminders(runtime)
    assert second.at == ny(4, 9) and second.to == phone
    assert [key for key, _ in second.targets] == ["F2", "F3"]
    assert "Ann" not in second.body and all(name in second.body for name in ("Ben", "Cal"))
    assert "patient already confirmed" in [d["reason"] for d in why(runtime.engine, "F1")["decisions"]]


@pytest.mark.parametrize(("text", "sent_at_9"), [("C1", ["F1", "F2"]), ("C1 N2", [])])
def test_dispatch_drops_a_family_message_only_once_every_member_answered(runtime, connector, clock, text, sent_at_9):
    """No planning pass between the answer and the send: a partly answered family message still goes
    (dropping it then would leave the others without a reminder), a fully answered one does not."""
    phone, family = "+12125550100", dict(guarantor_key="1", mobile="+12125550100")
    open_practice(connector, patient("1", "Ann", **family), patient("2", "Ben", **family))
    book(connector, "F1", "1", ny(4, 10))
    book(connector, "F2", "2", ny(4, 10, 30))
    start(runtime)
    run(runtime, ny(2, 12))
    reply(runtime, phone, text)

    clock.set(ny(4, 9))
    report = runtime.dispatch_once()
    assert (report.claimed, report.sent) == (1, 1 if sent_at_9 else 0)
    assert [[key for key, _ in s.targets] for s in reminders(runtime) if s.at == ny(4, 9)] == ([sent_at_9] if sent_at_9 else [])


def test_a_member_who_declined_by_number_gets_nothing_more_and_the_last_member_gets_their_own(runtime, connector, clock):
    phone, family = "+12125550100", dict(guarantor_key="1", mobile="+12125550100")
    open_practice(connector, patient("1", "Ann", **family), patient("2", "Ben", **family))
    book(connector, "F1", "1", ny(4, 10))
    book(connector, "F2", "2", ny(4, 10, 30))
    start(runtime)
    run(runtime, ny(2, 12))
    reply(runtime, phone, "N1")
    run(runtime, ny(4, 12))

    assert [(s.at, [key for key, _ in s.targets]) for s in reminders(runtime)] == [
        (ny(2, 10), ["F1", "F2"]), (ny(4, 9), ["F2"])]
    assert "Ann" not in reminders(runtime)[-1].body


def test_an_opted_out_patient_gets_nothing_on_that_channel(runtime, connector, clock):
    ann, ben = patient("1", "Ann"), patient("2", "Ben")
    open_practice(connector, ann, ben)
    connector.practice.opt_outs = [OptOutRecord("1", Channel.SMS)]
    book(connector, "A1", "1", ny(4, 10))
    book(connector, "A2", "2", ny(4, 10))
    start(runtime)
    run(runtime, ny(2, 12))
    assert [(s.channel, s.to) for s in reminders(runtime, "A1")] == [("email", ann.email)]
    assert [(s.channel, s.to) for s in reminders(runtime, "A2")] == [("sms", ben.mobile)]

    stop = reply(runtime, ben.mobile, "STOP")
    assert stop.intent == "opt_out" and stop.patient_key == "2"
    stopped_at = clock.now()
    run(runtime, ny(6, 12))

    assert not any(s.to == ann.mobile for s in sent(runtime))
    assert [s.channel for s in reminders(runtime, "A1")] == ["email", "email"]  # -2d and -3h, both by email
    assert not any(s.to == ben.mobile and s.channel in ("sms", "voice") and s.at >= stopped_at for s in sent(runtime))
    assert [s.channel for s in reminders(runtime, "A2")] == ["sms", "email"], "the queued SMS falls back to email"


def test_nothing_is_sent_outside_the_send_window_in_the_recipients_time_zone(runtime, connector, clock):
    ann, lou = patient("1", "Ann"), patient("2", "Lou", timezone="America/Los_Angeles")
    open_practice(connector, ann, lou)
    for key, person, when in (("N1", "1", ny(4, 10)), ("N2", "1", ny(5, 10)),
                              ("L1", "2", ny(4, 10)), ("L2", "2", ny(5, 10))):
        book(connector, key, person, when)
    start(runtime)
    run(runtime, ny(7, 0))

    zones = {ann.mobile: NEW_YORK, ann.email: NEW_YORK, lou.mobile: LOS_ANGELES, lou.email: LOS_ANGELES}
    everything = sent(runtime)
    assert {s.to for s in everything} >= {ann.mobile, lou.mobile}
    for message in everything:
        clinic, own = message.at.astimezone(NEW_YORK), message.at.astimezone(zones[message.to])
        assert clinic.weekday() < 6 and 9 <= clinic.hour < 19, (message.kind, clinic)
        assert 9 <= own.hour < 20, (message.kind, own)
        if message.to in (lou.mobile, lou.email):
            assert clinic.hour >= 12, (message.kind, clinic)
    assert len(reminders(runtime, "L1")) == 2  # the -3h one is brought forward to the evening before


def test_a_confirmation_stops_the_remaining_reminder(runtime, connector, clock):
    ann = patient("1", "Ann")
    open_practice(connector, ann)
    book(connector, "A1", "1", ny(4, 10))
    start(runtime)
    run(runtime, ny(2, 10, 30))
    assert reply(runtime, ann.mobile, "C").intent == "confirm"
    run(runtime, ny(4, 12))

    assert [s.at for s in reminders(runtime, "A1")] == [ny(2, 10)]
    statuses = {send_at(m): (m["status"], m["reason"]) for m in messages(runtime, "A1")}
    assert statuses[ny(2, 10)][0] == MessageStatus.CONFIRMED
    status, reason = statuses[ny(4, 9)]
    assert status == MessageStatus.CANCELLED and "already confirmed" in reason


def test_a_source_failure_leaves_the_mirror_untouched(runtime, connector, clock, monkeypatch):
    monkeypatch.setattr(refresh, "RETRY_WAIT", wait_none())
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    start(runtime)
    connector.change("A1", status=AppointmentStatus.CANCELLED)
    connector.fail_with = RetryLater("PMS offline")
    reads = connector.reads

    with pytest.raises(RetryLater):
        runtime.sync_once()
    assert connector.reads - reads == 4  # retried, then given up
    with session(runtime.engine) as db:
        assert db.get(Appointment, "A1").status == AppointmentStatus.SCHEDULED
    latest = sync_runs(runtime.engine)[0]
    assert latest["outcome"] == "failed" and "PMS offline" in latest["detail"]
    assert runtime.plan_once().cancelled == 0


def test_the_removal_guard_holds_a_sync_that_deletes_most_upcoming_appointments(runtime, connector, clock):
    open_practice(connector, *(patient(str(n), f"P{n}") for n in range(1, 25)))
    for n in range(1, 25):
        book(connector, f"A{n}", str(n), ny(4 + n % 2, 10 + n % 8))
    start(runtime)
    pending = len(message_log(runtime.engine, Filter(status=MessageStatus.NOT_SENT.value)))
    for n in range(1, 21):
        connector.delete(f"A{n}")

    with pytest.raises(SyncHeld):
        runtime.sync_once()
    with session(runtime.engine) as db:
        statuses = set(db.exec(select(Appointment.status)).all())
    assert statuses == {AppointmentStatus.SCHEDULED}
    assert sync_runs(runtime.engine)[0]["outcome"] == "held"
    assert runtime.plan_once().cancelled == 0
    assert len(message_log(runtime.engine, Filter(status=MessageStatus.NOT_SENT.value))) == pending
