"""Staff alerts: the events a user chose email them once, within their scope, without patient
details; the daily summary goes once a day after its hour; choices are set on the Alerts page."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from tests.console.conftest import csrf_of
from vitalsync.console.alerts import alerts_once
from vitalsync.console.tables import AlertChoice, StaffUser
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake import FakeSender
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Message


def choose(runtime, name: str, *choices: tuple[str, str], email: str = "", summary: bool = False) -> None:
    with session(runtime.engine) as db:
        user = db.exec(select(StaffUser).where(StaffUser.name == name)).one()
        user.email, user.daily_summary = email or f"{name}@clinic.example", summary
        db.add(user)
        db.add_all(AlertChoice(user_id=user.id, event=event, kind=kind) for event, kind in choices)
        db.commit()


def decline(runtime, patient: str) -> Message:
    """The patient's reminder is sent and declined, now."""
    now = runtime.clock.now()
    with session(runtime.engine) as db:
        message = db.exec(select(Message).where(Message.patient_key == patient, Message.kind == "appointment_reminder")).first()
        transition(db, message, MessageStatus.SENT, at=now, source="dispatch")
        transition(db, message, MessageStatus.DECLINED, at=now, source="reply", detail="patient replied decline")
        db.commit()
        return message


def test_a_chosen_event_emails_the_user_once_with_keys_only(practice):
    choose(practice, "fran", ("declined", "appointment_reminder"))
    choose(practice, "ada", ("unreachable", "*"))
    message = decline(practice, "1")
    sender = FakeSender(clock=practice.clock, simulate=False)
    report = alerts_once(practice.engine, sender, practice.config, practice.clock.now())
    assert report.alerts == 1 and [m.to for m in sender.sent] == ["fran@clinic.example"]
    mail = sender.sent[0]
    assert "declined" in mail.subject and "appointment reminder" in mail.subject
    assert "patient 1" in mail.body and f"message {message.id}" in mail.body
    assert "Ann" not in mail.body + mail.subject and "Doe" not in mail.body and "+1212" not in mail.body
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).alerts == 0


def test_a_provider_is_alerted_only_about_their_own_patients(practice):
    choose(practice, "nora", ("declined", "*"))
    decline(practice, "3")  # Dr. South's patient
    sender = FakeSender(clock=practice.clock, simulate=False)
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).alerts == 0
    decline(practice, "1")  # Dr. North's
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).alerts == 1


def test_events_older_than_a_day_are_not_mailed(practice):
    decline(practice, "1")
    choose(practice, "fran", ("declined", "*"))
    practice.clock.advance(timedelta(days=2))
    sender = FakeSender(clock=practice.clock, simulate=False)
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).alerts == 0


def test_the_daily_summary_goes_once_after_its_hour(practice):
    choose(practice, "fran", summary=True)
    sender = FakeSender(clock=practice.clock, simulate=False)
    practice.clock.advance(timedelta(hours=7))  # 07:00 in New York, before 07:30
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).summaries == 0
    practice.clock.advance(timedelta(hours=1))
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).summaries == 1
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).summaries == 0
    assert "daily summary" in sender.sent[0].subject and "Ann" not in sender.sent[0].body
    practice.clock.advance(timedelta(days=1))
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).summaries == 1


def test_a_user_sets_their_alerts_on_the_alerts_page(as_user, practice):
    client = as_user("nora")
    token = csrf_of(client.get("/alerts").text)
    saved = client.post("/alerts", data={"csrf": token, "email": "nora@clinic.example", "daily_summary": "1",
                                         "choice": ["declined|*", "unreachable|recall", "bogus|*"]})
    assert saved.status_code == 303
    page = client.get("/alerts").text
    assert len(re.findall(r"checked", page)) == 3  # two choices and the summary
    with session(practice.engine) as db:
        user = db.exec(select(StaffUser).where(StaffUser.name == "nora")).one()
        chosen = {(c.event, c.kind) for c in db.exec(select(AlertChoice).where(AlertChoice.user_id == user.id))}
    assert chosen == {("declined", "*"), ("unreachable", "recall")}
    assert user.daily_summary and user.email == "nora@clinic.example"


def test_an_unrecognised_reply_alerts_without_its_text(practice):
    from vitalsync.status.record import record_reply
    choose(practice, "fran", ("unrecognised", "*"))
    now = practice.clock.now()
    with session(practice.engine) as db:
        message = db.exec(select(Message).where(Message.patient_key == "2", Message.kind == "appointment_reminder",
                                                Message.channel == "sms")).first()
        transition(db, message, MessageStatus.SENT, at=now, source="dispatch")
        message.sent_at, message.asks_reply = now, True
        db.add(message)
        record_reply(db, practice.config, "sms", message.address, "my tooth still hurts, call me", now)
        db.commit()
    sender = FakeSender(clock=practice.clock, simulate=False)
    assert alerts_once(practice.engine, sender, practice.config, practice.clock.now()).alerts == 1
    assert "reply needs a person" in sender.sent[0].subject and "patient 2" in sender.sent[0].body
    assert "tooth" not in sender.sent[0].body


def test_the_daemon_step_mails_through_a_recording_fake_that_never_simulates_replies(practice):
    from vitalsync.app.console_server import alert_step
    choose(practice, "fran", ("declined", "*"))
    decline(practice, "1")
    before = len(practice.sender.sent)
    assert alert_step(practice)().alerts == 1
    assert len(practice.sender.sent) == before  # not the patients' simulated sender
