"""A permanent failure on one channel moves the message to the kind's next channel, once.

End to end over loopback: dispatch sends through the real sendgrid and twilio clients to the local
fakes; the fakes' signed webhooks (SendGrid's Event Webhook, Twilio's status callbacks) reach the
receiver served by uvicorn; the follower is planned, kept by planning and sent by the next dispatch.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import socket

import pytest
from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.sendgrid_email import SendGridEmail
from vitalsync.dispatch.twilio_sms import TwilioSms
from vitalsync.dispatch.twilio_voice import TwilioVoice
from vitalsync.queue.tables import Decision, Message, MessageEvent
from vitalsync.status.fallback import permanent
from vitalsync.status.record import record_delivery
from vitalsync.status.webhooks import serve, webhook_app

EMAIL, MOBILE = "ann1@example.com", "+12125550001"
GATHER = "/webhooks/twilio/voice/gather"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def providers(runtime, clock):
    """The fakes, the senders pointed at them, and the webhook receiver they call back, over loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with FakeTwilio() as twilio, FakeSendGrid(clock=clock, event_url=base + "/webhooks/sendgrid/events") as sendgrid:
        app = webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=twilio.auth_token,
                          sendgrid_public_key=sendgrid.public_key, public_url=base)
        served = serve(app, "127.0.0.1", port)
        runtime.senders = {
            "email": SendGridEmail(sendgrid.api_key, "clinic@example.org", base_url=sendgrid.url, timeout=5, clock=clock),
            "sms": TwilioSms(twilio.account_sid, twilio.auth_token, from_number="+15005550006", base_url=twilio.base_url,
                             timeout=5, status_callback=base + "/webhooks/twilio/sms/status"),
            "voice": TwilioVoice(twilio.account_sid, twilio.auth_token, from_number="+15005550006",
                                 base_url=twilio.base_url, timeout=5, gather_url=base + GATHER),
        }
        try:
            yield twilio, sendgrid, base
        finally:
            twilio.callbacks.close()
            served.stop()


def messages(runtime, kind: str) -> list[Message]:
    with session(runtime.engine) as db:
        return list(db.exec(select(Message).where(Message.kind == kind).order_by(Message.id)).all())


def history(runtime, message_id: int) -> list[tuple[str, str, str]]:
    with session(runtime.engine) as db:
        return [(e.status, e.source, e.detail) for e in db.exec(
            select(MessageEvent).where(MessageEvent.message_id == message_id).order_by(MessageEvent.id))]


def test_an_email_that_bounces_is_followed_by_a_text_once(runtime, connector, clock, providers):
    twilio, sendgrid, _ = providers
    sendgrid.bounce.add(EMAIL)
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(9, 10))  # pre_appointment (email, then sms) goes 7 days before
    runtime.sync_once()
    runtime.plan_once()
    clock.set(ny(2, 10))
    assert runtime.dispatch_once().sent == 1
    [email] = messages(runtime, "pre_appointment")
    assert (email.channel, email.status) == ("email", MessageStatus.SENT)

    assert sendgrid.post_events() == 200  # processed, then bounce
    email, follower = messages(runtime, "pre_appointment")
    assert email.status == MessageStatus.NOT_RECEIVED
    assert (follower.channel, follower.address, follower.status) == ("sms", MOBILE, MessageStatus.NOT_SENT)
    assert follower.key == email.key + "|after:email" and follower.deadline == email.deadline
    assert history(runtime, email.id)[-1] == (
        "not_received", "provider", f"email failed for good (bounce bounce 5.1.1); falling back to sms as message {follower.id}")
    assert history(runtime, follower.id) == [
        ("not_sent", "provider", f"follows message {email.id}: email failed for good (bounce bounce 5.1.1)")]
    with session(runtime.engine) as db:
        trace = db.exec(select(Decision).where(Decision.message_id == follower.id)).one()
    assert (trace.decision, trace.appointment_key, trace.channel) == ("queued", "A1", "sms")

    runtime.plan_once()  # planning keeps the follower: it wants the message it follows
    assert runtime.dispatch_once().sent == 1
    [text] = twilio.messages.values()
    assert text["to"] == MOBILE and "Ann" in text["body"]
    assert messages(runtime, "pre_appointment")[1].status == MessageStatus.SENT

    # "once": SendGrid later reports the same email dropped, then delivered and bounced again
    bounce = next(e for batch in sendgrid.batches for e in json.loads(batch) if e["event"] == "bounce")
    sendgrid.pending = [dict(bounce, event="dropped", reason="Bounced Address", sg_event_id="again-1"),
                        dict(bounce, event="delivered", sg_event_id="again-2"), dict(bounce, sg_event_id="again-3")]
    assert sendgrid.post_events() == 200
    assert len(messages(runtime, "pre_appointment")) == 2
    runtime.plan_once()
    assert runtime.dispatch_once().sent == 0 and len(twilio.messages) == 1


def test_a_text_to_a_landline_is_followed_by_an_email(runtime, connector, clock, providers, monkeypatch):
    twilio, sendgrid, _ = providers
    twilio.landlines.add(MOBILE)  # Twilio takes it, then reports undelivered 30006
    runtime.kinds = {"appointment_reminder": runtime.kinds["appointment_reminder"]}  # the text is the reminder
    open_practice(connector, patient("1", "Ann"))
    book(connector, "A1", "1", ny(4, 10))
    runtime.sync_once()
    runtime.plan_once()
    clock.set(ny(2, 10))
    held: list[tuple[str, dict]] = []  # Twilio's callbacks, posted once the send is recorded (no race with it)
    monkeypatch.setattr(twilio.callbacks, "enqueue", lambda url, params: held.append((url, params)))
    assert runtime.dispatch_once().sent == 1
    assert [twilio.callbacks.post(url, params)[0] for url, params in held] == [200, 200]  # sent, undelivered 30006
    text, follower = messages(runtime, "appointment_reminder")[0], messages(runtime, "appointment_reminder")[-1]
    assert text.status == MessageStatus.NOT_RECEIVED and text.reason == "twilio undelivered 30006"
    assert (follower.channel, follower.address, follower.key) == ("email", EMAIL, text.key + "|after:sms")

    assert runtime.dispatch_once().sent == 1
    [mail] = [r.json() for r in sendgrid.requests if r.path == "/v3/mail/send"]
    assert mail["personalizations"][0]["to"][0]["email"] == EMAIL


def add_sent(runtime, ref: str, *, kind: str, channel: str, address: str, deadline=None) -> Message:
    now = runtime.clock.now()
    with session(runtime.engine) as db:
        message = Message(key=f"{kind}|{ref}", kind=kind, channel=channel, address=address, patient_key="1",
                          send_at=now, deadline=deadline, status="sent", status_at=now, provider_ref=ref,
                          created_at=now, sent_at=now)
        db.add(message)
        db.commit()
        return message


def report(runtime, ref: str, detail: str) -> None:
    with session(runtime.engine) as db:
        record_delivery(db, ref, False, runtime.clock.now(), source="provider", detail=detail, kinds=runtime.kinds)
        db.commit()


def test_no_follower_past_the_last_channel_nor_after_the_deadline_and_the_history_says_why(runtime, connector, clock):
    open_practice(connector, patient("1", "Ann"))
    runtime.sync_once()
    last = add_sent(runtime, "SMlast", kind="after_appointment", channel="sms", address=MOBILE)
    late = add_sent(runtime, "EMlate", kind="appointment_reminder", channel="email", address=EMAIL, deadline=clock.now())
    report(runtime, "SMlast", "twilio undelivered 30003")
    report(runtime, "EMlate", "dropped: Bounced Address")
    assert len(messages(runtime, "after_appointment")) == len(messages(runtime, "appointment_reminder")) == 1
    assert history(runtime, last.id)[-1][2] == ("sms failed for good (twilio undelivered 30003); "
                                                "no fallback: sms is the kind's last channel")
    assert history(runtime, late.id)[-1][2] == ("email failed for good (dropped: Bounced Address); "
                                                "no fallback: too late: the appointment has started")


def test_a_failure_that_says_nothing_about_the_address_is_left_to_a_person(runtime, connector):
    open_practice(connector, patient("1", "Ann"))
    runtime.sync_once()
    add_sent(runtime, "SMfilter", kind="appointment_reminder", channel="sms", address=MOBILE)
    report(runtime, "SMfilter", "twilio undelivered 30007")  # carrier filtering: not the number's fault
    assert len(messages(runtime, "appointment_reminder")) == 1


@pytest.mark.parametrize("detail, expected", [
    ("bounce bounce 5.1.1", True), ("bounce blocked 5.7.1", True), ("dropped: Invalid", True),
    ("twilio undelivered 30003", True), ("twilio failed 30005", True), ("twilio undelivered 30006", True),
    ("twilio failed 21211", True), ("twilio failed 21614", True), ("twilio undelivered 30007", False),
    ("twilio undelivered", False), ("call no-answer", False), ("simulated: no answer / undelivered", False), ("", False)])
def test_which_failures_are_permanent(detail, expected):
    assert permanent(detail) is expected
