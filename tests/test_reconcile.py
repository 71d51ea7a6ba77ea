"""Reconciliation: a message whose send may or may not have left is settled by asking the provider.

Found there → sent, with the provider's reference, and never sent again; provably not there → sent
once more by dispatch; no way to look, or a lookup that fails → left flagged. Runs on SQLite and
PostgreSQL, through the real twilio client against the fake Twilio, and with the in-memory sender.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.core.errors import AmbiguousSendError
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.reconcile import NOT_FOUND, SETTLE
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.twilio_sms import TwilioSms
from vitalsync.queue.tables import Message, MessageEvent

MOBILE = "+12125550001"  # patient("1", ...)'s mobile


@pytest.fixture
def twilio(clock):
    with FakeTwilio(clock=clock) as fake:
        yield fake


def use_twilio(runtime, fake: FakeTwilio, timeout: float = 5.0) -> TwilioSms:
    sms = TwilioSms(fake.account_sid, fake.auth_token, from_number="+15005550006", base_url=fake.base_url,
                    timeout=timeout)
    runtime.senders = {"sms": sms}
    return sms


def one_reminder_due(runtime, connector) -> None:
    """Ann's -2d reminder (an SMS) is due now, the only message; nothing has been sent."""
    runtime.kinds.pop("pre_appointment", None)  # its caught-up email would be due at the same moment
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    runtime.plan_once()
    runtime.clock.set(ny(2, 10))


def the_message(runtime) -> Message:
    with session(runtime.engine) as db:
        (message,) = db.exec(select(Message).where(Message.send_at <= runtime.clock.now(),
                                                   Message.appointment_key == "A1")).all()
        return message


def flag_by_hand(runtime) -> Message:
    """A message flagged before any send reached the provider (a crash right after the attempt was recorded)."""
    with session(runtime.engine) as db:
        message = db.get(Message, the_message(runtime).id)
        message.status, message.status_at, message.attempts, message.in_flight = (
            MessageStatus.NEEDS_RECONCILIATION, runtime.clock.now(), 1, True)
        db.add(message)
        db.commit()
        return message


def events(runtime, message_id: int) -> list[tuple[str, str, str]]:
    with session(runtime.engine) as db:
        return [(e.status, e.source, e.detail) for e in db.exec(
            select(MessageEvent).where(MessageEvent.message_id == message_id).order_by(MessageEvent.id))]


def to_patient(fake: FakeTwilio) -> list[dict]:
    return [m for m in fake.messages.values() if m["to"] == MOBILE]


# -- the fake's message list --------------------------------------------------------------------------

def test_the_fake_lists_messages_by_recipient_and_date_sent_as_twilio_does(twilio, clock):
    sms = TwilioSms(twilio.account_sid, twilio.auth_token, from_number="+15005550006", base_url=twilio.base_url)
    sid = sms.send(Outgoing(message_id=1, key="k", channel="sms", to=MOBILE, body="hello"))
    sms.send(Outgoing(message_id=2, key="k2", channel="sms", to="+12125550002", body="hello"))
    client = sms._client
    (listed,) = client.messages.list(to=MOBILE, date_sent_after=clock.now().replace(hour=0))
    assert listed.sid == sid and listed.body == "hello" and listed.status == "delivered"
    assert listed.date_sent == listed.date_created and listed.date_sent.date() == clock.now().date()
    assert client.messages.list(to=MOBILE, date_sent_after=clock.now().replace(year=2027)) == []
    request = twilio.requests[-1]
    assert request.method == "GET" and request.form["To"] == [MOBILE] and "DateSent>" in request.form
    wanted = Outgoing(message_id=1, key="k", channel="sms", to=MOBILE, body="hello")
    assert sms.find(wanted, clock.now()) == sid
    assert sms.find(wanted, clock.now(), exclude={sid}) is None
    with pytest.raises(AmbiguousSendError):  # an unclaimed text to that number with another body proves nothing
        sms.find(Outgoing(message_id=1, key="k", channel="sms", to=MOBILE, body="hello again"), clock.now())


# -- through the real twilio client -------------------------------------------------------------------

def test_a_send_that_hung_is_found_at_twilio_and_never_sent_twice(runtime, connector, twilio):
    use_twilio(runtime, twilio, timeout=0.3)
    one_reminder_due(runtime, connector)
    twilio.switches.hang, twilio.switches.hang_seconds = 1, 5
    assert runtime.dispatch_once().unsure == 1
    (at_twilio,) = to_patient(twilio)  # it did leave
    assert the_message(runtime).status == MessageStatus.NEEDS_RECONCILIATION

    report = runtime.reconcile_once()
    assert (report.sent, report.requeued, report.left) == (1, 0, 0)
    message = the_message(runtime)
    assert message.status == MessageStatus.SENT and message.provider_ref == at_twilio["sid"]
    assert not message.in_flight and message.lease_owner is None and message.sent_at is not None
    assert events(runtime, message.id)[-1] == (MessageStatus.SENT, "reconciler", "found at the provider")

    runtime.dispatch_once()
    assert runtime.reconcile_once().sent == 0
    assert len(to_patient(twilio)) == 1  # exactly one message reached the patient


def test_a_message_twilio_never_got_is_requeued_and_sent_exactly_once(runtime, connector, twilio):
    use_twilio(runtime, twilio)
    one_reminder_due(runtime, connector)
    flagged = flag_by_hand(runtime)
    assert runtime.reconcile_once().left == 1, "absence proves nothing until the provider had time to list it"
    runtime.clock.advance(SETTLE)

    report = runtime.reconcile_once()
    assert (report.sent, report.requeued, report.left) == (0, 1, 0)
    message = the_message(runtime)
    assert message.status == MessageStatus.NOT_SENT and not message.in_flight and message.lease_until is None
    assert events(runtime, flagged.id)[-1] == (MessageStatus.NOT_SENT, "reconciler", NOT_FOUND)
    assert to_patient(twilio) == []

    assert runtime.dispatch_once().sent == 1
    runtime.dispatch_once()
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 0}
    (at_twilio,) = to_patient(twilio)
    message = the_message(runtime)
    assert message.status == MessageStatus.SENT and message.provider_ref == at_twilio["sid"]
    assert message.attempts == 2


def test_a_lookup_that_fails_leaves_the_message_flagged_and_unsent(runtime, connector, twilio):
    use_twilio(runtime, twilio)
    one_reminder_due(runtime, connector)
    flagged = flag_by_hand(runtime)
    before = events(runtime, flagged.id)
    twilio.switches.server_error = 1  # the list request gets a 503

    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 1}
    message = the_message(runtime)
    assert message.status == MessageStatus.NEEDS_RECONCILIATION and message.in_flight
    assert events(runtime, flagged.id) == before
    runtime.dispatch_once()
    assert to_patient(twilio) == [] and the_message(runtime).status == MessageStatus.NEEDS_RECONCILIATION

    runtime.clock.advance(SETTLE)
    assert runtime.reconcile_once().requeued == 1  # the provider answers again: now it is provable


def test_a_sender_that_cannot_look_leaves_the_message_flagged(runtime, connector):
    class NoLookup:
        channels = frozenset({"sms"})

        def send(self, outgoing):  # pragma: no cover - never called
            raise AssertionError("a flagged message must not be sent")

    runtime.senders = {"sms": NoLookup()}
    one_reminder_due(runtime, connector)
    flag_by_hand(runtime)
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 1}
    runtime.dispatch_once()
    assert the_message(runtime).status == MessageStatus.NEEDS_RECONCILIATION


# -- with the in-memory sender ------------------------------------------------------------------------

def test_with_the_fake_sender_a_message_that_left_is_found_by_its_body(runtime, connector, monkeypatch):
    one_reminder_due(runtime, connector)
    fake = runtime.sender
    real_send = fake.send

    def send_then_time_out(outgoing):
        real_send(outgoing)
        raise AmbiguousSendError("simulated: no answer in time")

    monkeypatch.setattr(fake, "send", send_then_time_out)
    assert runtime.dispatch_once().unsure == 1
    monkeypatch.setattr(fake, "send", real_send)
    (handed,) = fake.sent

    assert runtime.reconcile_once().sent == 1
    message = the_message(runtime)
    assert message.status == MessageStatus.SENT and message.provider_ref.startswith("FK")
    assert fake.find(handed, message.status_at) == message.provider_ref
    runtime.dispatch_once()
    assert len(fake.sent) == 1


def test_with_the_fake_sender_a_message_never_handed_over_is_sent_once(runtime, connector):
    one_reminder_due(runtime, connector)
    flag_by_hand(runtime)
    runtime.clock.advance(SETTLE)
    assert runtime.reconcile_once().requeued == 1
    assert runtime.sender.sent == []
    assert runtime.dispatch_once().sent == 1
    runtime.dispatch_once()
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 0}
    (handed,) = runtime.sender.sent
    assert handed.to == MOBILE and the_message(runtime).status == MessageStatus.SENT


def test_with_the_fake_sender_a_lookup_that_raises_changes_nothing(runtime, connector, monkeypatch):
    one_reminder_due(runtime, connector)
    flagged = flag_by_hand(runtime)
    before = events(runtime, flagged.id)

    def broken(*args, **kwargs):
        raise ConnectionError("the provider is unreachable")

    monkeypatch.setattr(runtime.sender, "find", broken)
    assert runtime.reconcile_once().__dict__ == {"sent": 0, "requeued": 0, "left": 1}
    message = the_message(runtime)
    assert message.status == MessageStatus.NEEDS_RECONCILIATION and message.attempts == 1 and message.in_flight
    assert events(runtime, flagged.id) == before and runtime.sender.sent == []
