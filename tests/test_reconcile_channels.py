"""Reconciliation of email (SendGrid's Email Activity API) and voice (Twilio's call list).

A flagged email or call is settled as an SMS is: found at the provider → sent with its reference;
provably absent (the lookup answered, nothing there, past ``SETTLE``) → sent again, once; a lookup
that fails → left flagged, never sent blindly. Through the real sendgrid and twilio clients against
the fakes on loopback; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.test_reconcile import events, flag_by_hand as flag, one_reminder_due, the_message
from vitalsync.core.db import session
from vitalsync.core.errors import AmbiguousSendError
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.reconcile import NOT_FOUND, SETTLE
from vitalsync.dispatch.sendgrid_email import SendGridEmail
from vitalsync.dispatch.twilio_voice import TwilioVoice
from vitalsync.queue.tables import Message

EMAIL, PHONE = "ann1@example.com", "+12125550001"


@pytest.fixture
def sendgrid(clock):
    with FakeSendGrid(clock=clock) as fake:
        yield fake


@pytest.fixture
def twilio(clock):
    with FakeTwilio(clock=clock) as fake:
        yield fake


def on_channel(runtime, connector, channel: str, address: str) -> Message:
    """Ann's reminder, due now, going out by ``channel``."""
    one_reminder_due(runtime, connector)
    with session(runtime.engine) as db:
        message = db.get(Message, the_message(runtime).id)
        message.channel, message.address = channel, address
        db.add(message)
        db.commit()
    return the_message(runtime)


def answer_lost(monkeypatch, sender) -> None:
    """The provider takes the next send, but its answer never arrives."""
    real = sender.send

    def send(outgoing):
        real(outgoing)
        monkeypatch.setattr(sender, "send", real)
        raise AmbiguousSendError("simulated: no answer in time")

    monkeypatch.setattr(sender, "send", send)


def use_sendgrid(runtime, fake: FakeSendGrid, clock) -> SendGridEmail:
    email = SendGridEmail(fake.api_key, "clinic@example.org", base_url=fake.url, timeout=0.5, clock=clock)
    runtime.senders = {"email": email}
    return email


def sends(fake: FakeSendGrid) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v3/mail/send"]


def test_an_email_sendgrid_took_is_found_by_our_message_id_and_never_sent_twice(runtime, connector, sendgrid, clock,
                                                                                monkeypatch):
    email = use_sendgrid(runtime, sendgrid, clock)
    message = on_channel(runtime, connector, "email", EMAIL)
    answer_lost(monkeypatch, email)
    assert runtime.dispatch_once().unsure == 1
    (stored,) = sendgrid.stored

    report = runtime.reconcile_once()
    assert (report.sent, report.requeued, report.left) == (1, 0, 0)
    settled = the_message(runtime)
    assert settled.status == MessageStatus.SENT and settled.provider_ref == stored["msg_id"].split(".")[0]
    assert events(runtime, message.id)[-1] == (MessageStatus.SENT, "reconciler", "found at the provider")
    query = [r for r in sendgrid.requests if r.method == "GET"][-1].path
    assert "/v3/messages?" in query and "unique_args" in query and "to_email" in query
    runtime.clock.advance(SETTLE)
    runtime.dispatch_once()
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 0}
    assert len(sends(sendgrid)) == 1


def test_an_email_sendgrid_never_got_is_sent_again_once_after_the_settle_time(runtime, connector, sendgrid, clock):
    use_sendgrid(runtime, sendgrid, clock)
    message = on_channel(runtime, connector, "email", EMAIL)
    sendgrid.hang = True  # read, never answered, never taken
    assert runtime.dispatch_once().unsure == 1
    sendgrid.hang = False
    assert sendgrid.stored == []
    assert runtime.reconcile_once().left == 1, "absence proves nothing until SendGrid had time to list it"
    runtime.clock.advance(SETTLE)
    assert runtime.reconcile_once().requeued == 1
    assert events(runtime, message.id)[-1] == (MessageStatus.NOT_SENT, "reconciler", NOT_FOUND)
    assert runtime.dispatch_once().sent == 1
    (stored,) = sendgrid.stored
    assert the_message(runtime).provider_ref == stored["msg_id"].split(".")[0]
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 0}


@pytest.mark.parametrize("fault", ["no add-on", "server error"])
def test_an_email_lookup_that_fails_leaves_the_message_flagged(runtime, connector, sendgrid, clock, fault):
    use_sendgrid(runtime, sendgrid, clock)
    on_channel(runtime, connector, "email", EMAIL)
    flag(runtime)
    runtime.clock.advance(SETTLE)
    if fault == "no add-on":
        sendgrid.activity = False  # 403: the account cannot search its activity
    else:
        sendgrid.activity_status = 503
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 1}
    runtime.dispatch_once()
    assert the_message(runtime).status == MessageStatus.NEEDS_RECONCILIATION and sends(sendgrid) == []


def test_the_email_lookup_matches_only_this_message(runtime, connector, sendgrid, clock):
    email = use_sendgrid(runtime, sendgrid, clock)
    message = on_channel(runtime, connector, "email", EMAIL)
    outgoing = runtime.dispatcher._outgoing(message, runtime.kinds[message.kind], _facts(runtime, message))
    other = email.send(outgoing.__class__(**{**outgoing.__dict__, "message_id": outgoing.message_id + 1}))
    assert email.find(outgoing, clock.now()) is None  # another message's email to the same address
    mine = email.send(outgoing)
    assert email.find(outgoing, clock.now()) == mine != other
    assert email.find(outgoing, clock.now(), exclude={mine}) is None


def _facts(runtime, message):
    from vitalsync.dispatch.recheck import gather
    with session(runtime.engine) as db:
        return gather(db, db.get(Message, message.id), runtime.kinds[message.kind])


# -- voice ----------------------------------------------------------------------------------------------

def use_voice(runtime, fake: FakeTwilio) -> TwilioVoice:
    voice = TwilioVoice(fake.account_sid, fake.auth_token, from_number="+15005550006", gather_url="https://h/g",
                        base_url=fake.base_url, timeout=0.5)
    runtime.senders = {"voice": voice}
    return voice


def test_a_call_twilio_placed_is_found_in_its_call_list_and_never_placed_twice(runtime, connector, twilio, monkeypatch):
    voice = use_voice(runtime, twilio)
    on_channel(runtime, connector, "voice", PHONE)
    answer_lost(monkeypatch, voice)
    assert runtime.dispatch_once().unsure == 1
    (sid,) = twilio.calls

    assert runtime.reconcile_once().sent == 1
    assert the_message(runtime).status == MessageStatus.SENT and the_message(runtime).provider_ref == sid
    request = twilio.requests[-1]
    assert request.method == "GET" and "Calls.json" in request.path and request.form["To"] == [PHONE]
    assert "StartTime>" in request.form
    runtime.clock.advance(SETTLE)
    runtime.dispatch_once()
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 0}
    assert len(twilio.calls) == 1


def test_a_call_never_placed_is_placed_once_and_another_messages_call_is_not_taken_for_it(runtime, connector, twilio):
    use_voice(runtime, twilio)
    message = on_channel(runtime, connector, "voice", PHONE)
    # an earlier call to the same number, owned by another message
    twilio_call = runtime.senders["voice"].send(
        runtime.dispatcher._outgoing(message, runtime.kinds[message.kind], _facts(runtime, message)))
    now = runtime.clock.now()
    with session(runtime.engine) as db:
        db.add(Message(key="other", kind=message.kind, channel="voice", address=PHONE, patient_key="1",
                       send_at=now, status=MessageStatus.SENT, status_at=now, created_at=now, provider_ref=twilio_call))
        db.commit()
    flag(runtime)
    runtime.clock.advance(SETTLE)
    assert runtime.reconcile_once().requeued == 1
    assert runtime.dispatch_once().sent == 1
    assert len(twilio.calls) == 2
    assert the_message(runtime).provider_ref in twilio.calls and the_message(runtime).provider_ref != twilio_call
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 0}


def test_a_call_lookup_that_fails_leaves_the_message_flagged(runtime, connector, twilio):
    use_voice(runtime, twilio)
    on_channel(runtime, connector, "voice", PHONE)
    flag(runtime)
    runtime.clock.advance(SETTLE)
    twilio.switches.server_error = 1
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 1}
    with session(runtime.engine) as db:
        assert db.exec(select(Message).where(Message.key == the_message(runtime).key)).one().in_flight
    assert twilio.calls == {}
