"""A changed mind reaches a person: a patient who confirms a reminder and then declines it (or the other
way) ends with their latest answer, both answers in the history, an item on Needs attention and an alert.

The reminder goes out through the real dispatcher; the patient answers by SMS through the fake Twilio,
which posts signed inbound webhooks over HTTP. SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from tests.console.conftest import NEW_YORK, csrf_of
from vitalsync.console.access import Scope
from vitalsync.console.alerts import alerts_once
from vitalsync.console.attention import attention
from vitalsync.console.queries import Filter, message_log, report
from vitalsync.console.tables import AlertChoice, StaffUser
from vitalsync.core.db import session
from vitalsync.dispatch.fake import FakeSender
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.status.tables import Reply
from vitalsync.status.webhooks import serve, webhook_app

TOKEN = "fake-twilio-auth-token"
ANN = "+12125550001"  # patient 1, appointment a1 on 3 March at 11:00


@pytest.fixture
def reminded(practice):
    """Ann's reminder (3 hours before, held until the send window opens at 09:00) goes by SMS through the dispatcher."""
    practice.clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=NEW_YORK))
    # the reminder alone: pre-appointment instructions found late would catch up to the same phone
    practice.kinds = {"appointment_reminder": practice.kinds["appointment_reminder"]}
    practice.plan_once()
    practice.dispatch_once()
    with session(practice.engine) as db:
        message = db.exec(select(Message).where(Message.address == ANN, Message.status == "sent")).one()
    assert message.kind == "appointment_reminder" and message.asks_reply
    return message.id


@pytest.fixture
def texts(practice):
    """Text as Ann: each reply is a signed inbound SMS from the fake Twilio to the webhook, over HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = webhook_app(practice.engine, practice.config, practice.clock, twilio_auth_token=TOKEN,
                      sendgrid_public_key=None, public_url=base)
    served = serve(app, "127.0.0.1", port)
    with FakeTwilio(auth_token=TOKEN) as fake:
        def text(body: str) -> None:
            code, _ = fake.send_inbound(base + "/webhooks/twilio/sms/inbound", From=ANN, To="+15005550006", Body=body)
            assert code == 200
        yield text
    served.stop()


def later(practice, minutes: int = 20) -> None:
    practice.clock.advance(timedelta(minutes=minutes))


def outcome(practice, message_id: int) -> tuple[str, str | None, list[tuple[str, str]]]:
    """The message's status, its target's answer and its history as (status, detail) after planning."""
    [row] = [r for r in message_log(practice.engine, Filter(patient="1")) if r["id"] == message_id]
    with session(practice.engine) as db:
        answer = db.exec(select(MessageTarget.answer).where(MessageTarget.message_id == message_id)).one()
    return row["status"], answer, [(h["status"], h["detail"]) for h in row["history"] if h["source"] == "reply"]


def alerted(practice) -> list[str]:
    """Subjects of the alerts mailed now to fran, who chose to hear of declines of any kind."""
    with session(practice.engine) as db:
        fran = db.exec(select(StaffUser).where(StaffUser.name == "fran")).one()
        if not db.exec(select(AlertChoice).where(AlertChoice.user_id == fran.id)).first():
            fran.email = "fran@clinic.example"
            db.add(fran)
            db.add(AlertChoice(user_id=fran.id, event="declined", kind="*"))
            db.commit()
    sender = FakeSender(clock=practice.clock, simulate=False)
    alerts_once(practice.engine, sender, practice.config, practice.clock.now())
    return [m.subject for m in sender.sent]


def open_items(practice) -> list[str]:
    return [i["what"] for i in attention(practice.engine, practice.clock.now(), Scope()) if i["patient"] == "1"]


def test_confirm_then_decline_ends_declined_with_both_answers_a_staff_item_and_an_alert(practice, reminded, texts,
                                                                                      as_user):
    texts("C")
    assert outcome(practice, reminded)[:2] == ("confirmed", "confirmed")
    assert open_items(practice) == [] and alerted(practice) == []
    later(practice)
    texts("No, can't make it")
    status, answer, history = outcome(practice, reminded)
    assert (status, answer) == ("declined", "declined")
    assert history == [("confirmed", "patient replied confirm"),
                       ("declined", "patient replied decline; changed from confirmed")]
    assert open_items(practice) == ["changed answer: now declined"]
    assert alerted(practice) == ["vitalsync: a patient changed their answer (appointment reminder)"]  # one, not two
    page = as_user("fran").get("/attention").text
    assert "changed answer: now declined" in page and "can&#39;t make it" in page
    [row] = [r for r in report(practice.engine, Filter()) if r["kind"] == "appointment_reminder"]
    assert (row["confirmed"], row["declined"]) == (0, 1)  # the report counts the latest answer


def test_decline_then_confirm_ends_confirmed_and_still_reaches_staff(practice, reminded, texts):
    texts("N")
    assert outcome(practice, reminded)[:2] == ("declined", "declined")
    assert open_items(practice) == ["declined"]
    later(practice)
    texts("Yes I'll be there")
    status, answer, history = outcome(practice, reminded)
    assert (status, answer) == ("confirmed", "confirmed")
    assert history == [("declined", "patient replied decline"),
                       ("confirmed", "patient replied confirm; changed from declined")]
    assert open_items(practice) == ["changed answer: now confirmed", "declined"]
    assert sorted(alerted(practice)) == ["vitalsync: a patient changed their answer (appointment reminder)",
                                         "vitalsync: a patient declined (appointment reminder)"]


def test_the_same_answer_twice_records_nothing_new_and_asks_nobody(practice, reminded, texts):
    texts("C")
    later(practice)
    texts("yes see you then")
    status, _, history = outcome(practice, reminded)
    assert status == "confirmed" and len(history) == 1
    assert open_items(practice) == [] and alerted(practice) == []
    with session(practice.engine) as db:
        assert not any(r.changed or r.needs_staff for r in db.exec(select(Reply)))


def test_a_changed_answer_stays_on_needs_attention_until_marked_handled(practice, reminded, texts, as_user):
    texts("C")
    later(practice)
    texts("N")
    client = as_user("fran")
    with session(practice.engine) as db:
        reply = db.exec(select(Reply).where(Reply.changed)).one()
    token = csrf_of(client.get("/attention").text)
    assert client.post("/attention/handled", data={"csrf": token, "item": f"reply:{reply.id}"}).status_code == 303
    assert open_items(practice) == []
    assert "changed answer: now declined" in client.get("/attention?handled=1").text
