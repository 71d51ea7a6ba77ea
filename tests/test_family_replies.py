"""Numbered family answers, end to end: the fake Twilio posts the patient's signed inbound SMS to the
receiver over real HTTP, and each member's appointment records its own answer.

A family message lists its members as "1) Ana 9:00, 2) Luis 9:30, 3) Eva 10:00". C confirms all,
N declines all, "C1 N2" answers for members 1 and 2; see ``vitalsync.status.replies.parse_reply``.
"""

from __future__ import annotations

import socket

import pytest
from sqlmodel import select

from vitalsync.console.accounts import add_user
from vitalsync.console.alerts import alerts_once
from vitalsync.console.queries import Filter, message_log
from vitalsync.console.tables import AlertChoice, StaffUser
from vitalsync.core.db import session
from vitalsync.dispatch.fake import FakeSender
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.queue.tables import Message, MessageEvent, MessageTarget
from vitalsync.status.tables import Reply
from vitalsync.status.webhooks import serve, webhook_app

TOKEN = "fake-twilio-auth-token"
PHONE = "+12125550001"
INBOUND = "/webhooks/twilio/sms/inbound"


@pytest.fixture
def patient(runtime):
    """Text as the patient: each reply goes through the fake Twilio's signed inbound webhook."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                      sendgrid_public_key=None, public_url=base)
    served = serve(app, "127.0.0.1", port)
    with FakeTwilio(auth_token=TOKEN) as fake:
        def reply(body: str) -> None:
            code, _ = fake.send_inbound(base + INBOUND, From=PHONE, To="+15005550006", Body=body)
            assert code == 200
        yield reply
    served.stop()


def family_message(runtime, members: int = 3) -> int:
    now = runtime.clock.now()
    with session(runtime.engine) as db:
        message = Message(key="family", kind="appointment_reminder", channel="sms", address=PHONE, patient_key="p1",
                          asks_reply=True, send_at=now, status="sent", status_at=now, provider_ref="SMfamily",
                          created_at=now, sent_at=now)
        db.add(message)
        db.flush()
        for position in range(members):
            db.add(MessageTarget(message_id=message.id, position=position, appointment_key=f"a{position + 1}",
                                 patient_key=f"p{position + 1}", appointment_version=1))
        db.commit()
        return message.id


def state(runtime, message_id: int) -> tuple[str, dict[str, str | None]]:
    with session(runtime.engine) as db:
        targets = db.exec(select(MessageTarget).where(MessageTarget.message_id == message_id)).all()
        return db.get(Message, message_id).status, {t.appointment_key: t.answer for t in targets}


def last_reply(runtime) -> Reply:
    with session(runtime.engine) as db:
        return db.exec(select(Reply).order_by(Reply.id.desc())).first()


def test_c_confirms_every_member(runtime, patient):
    message = family_message(runtime)
    patient("C")
    assert state(runtime, message) == ("confirmed", {"a1": "confirmed", "a2": "confirmed", "a3": "confirmed"})


def test_n_declines_every_member_and_staff_hears_of_it(runtime, patient):
    message = family_message(runtime)
    patient("2")
    assert state(runtime, message) == ("declined", {"a1": "declined", "a2": "declined", "a3": "declined"})
    assert last_reply(runtime).needs_staff


def test_numbered_answers_record_each_member_and_the_log_shows_who(runtime, patient):
    message = family_message(runtime)
    patient("C1 N2")
    assert state(runtime, message) == ("sent", {"a1": "confirmed", "a2": "declined", "a3": None})
    assert last_reply(runtime).needs_staff  # a decline: the front desk calls to rebook
    patient("c3")
    assert state(runtime, message) == ("confirmed", {"a1": "confirmed", "a2": "declined", "a3": "confirmed"})
    assert not last_reply(runtime).needs_staff
    [row] = message_log(runtime.engine, Filter())
    assert row["answers"] == {"a1": "confirmed", "a2": "declined", "a3": "confirmed"}
    details = [h["detail"] for h in row["history"]]
    assert "patient replied for member 1 (patient p1) confirmed; member 2 (patient p2) declined" in details
    assert row["history"][-1] == {**row["history"][-1], "status": "confirmed", "source": "reply"}


def test_everyone_declining_by_number_declines_the_message(runtime, patient):
    message = family_message(runtime, members=2)
    patient("N1, N2")
    assert state(runtime, message) == ("declined", {"a1": "declined", "a2": "declined"})


def test_a_bare_list_of_numbers_confirms_those_members(runtime, patient):
    message = family_message(runtime)
    patient("1 3")
    assert state(runtime, message) == ("sent", {"a1": "confirmed", "a2": None, "a3": "confirmed"})


@pytest.mark.parametrize("text", ["C4", "C1 N1", "C1 N9", "1 and 7"])
def test_numbers_the_message_did_not_list_or_contradictions_go_to_staff_and_change_nothing(runtime, patient, text):
    message = family_message(runtime)
    patient(text)
    assert state(runtime, message) == ("sent", {"a1": None, "a2": None, "a3": None})
    assert last_reply(runtime).needs_staff and last_reply(runtime).intent == "unknown"  # read by a person as written
    with session(runtime.engine) as db:
        assert not db.exec(select(MessageEvent).where(MessageEvent.message_id == message)).all()


def test_a_changed_answer_is_recorded_and_goes_to_staff(runtime, patient):
    message = family_message(runtime, members=2)
    patient("C1")
    assert not last_reply(runtime).needs_staff
    patient("N1")
    assert state(runtime, message) == ("sent", {"a1": "declined", "a2": None})
    assert last_reply(runtime).needs_staff
    changed = last_reply(runtime)
    assert changed.changed
    [row] = message_log(runtime.engine, Filter())
    assert row["history"][-1]["detail"] == "patient replied for member 1 (patient p1) declined; member 1 changed from confirmed"


def test_a_whole_family_changing_its_mind_ends_declined_and_goes_to_staff(runtime, patient):
    message = family_message(runtime, members=2)
    patient("Yes we'll be there")
    assert state(runtime, message) == ("confirmed", {"a1": "confirmed", "a2": "confirmed"})
    assert not last_reply(runtime).needs_staff
    patient("No, we can't make it")
    assert state(runtime, message) == ("declined", {"a1": "declined", "a2": "declined"})
    assert last_reply(runtime).needs_staff and last_reply(runtime).changed
    [row] = message_log(runtime.engine, Filter())
    assert [h["status"] for h in row["history"]][-2:] == ["confirmed", "declined"]


def staff_alerts(runtime) -> list[str]:
    """The alerts a front desk user who chose declines of any kind gets now."""
    with session(runtime.engine) as db:
        user = db.exec(select(StaffUser).where(StaffUser.name == "fran")).first()
    if user is None:
        user = add_user(runtime.engine, "fran", "front_desk", "correct horse battery", runtime.clock.now(),
                        email="fran@clinic.example")
        with session(runtime.engine) as db:
            db.add(AlertChoice(user_id=user.id, event="declined", kind="*"))
            db.commit()
    sender = FakeSender(clock=runtime.clock, simulate=False)
    alerts_once(runtime.engine, sender, runtime.config, runtime.clock.now())
    return [m.subject for m in sender.sent]


def test_a_members_decline_alerts_staff_even_while_the_message_waits_for_the_others(runtime, patient):
    message = family_message(runtime)
    patient("C1 N2")
    assert state(runtime, message)[0] == "sent"
    assert staff_alerts(runtime) == ["vitalsync: a patient declined (appointment reminder)"]
    patient("C3")
    assert staff_alerts(runtime) == []  # member 3 confirmed; member 2's decline was mailed once
    patient("C2")
    assert staff_alerts(runtime) == ["vitalsync: a patient changed their answer (appointment reminder)"]
