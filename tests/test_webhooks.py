"""The webhook receiver: signed Twilio and SendGrid callbacks move messages on; forged ones record nothing.

Most tests post through httpx's ASGI transport; one goes over real HTTP on loopback through uvicorn,
posted by the fake Twilio. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select
from twilio.request_validator import RequestValidator

from vitalsync.core.db import session
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.mirror.tables import OptOut
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.status.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from vitalsync.status.tables import Reply
from vitalsync.status.webhooks import serve, webhook_app

TOKEN = "fake-twilio-auth-token"
PUBLIC = "https://hooks.example.org"
PHONE = "+12125550001"
SMS_STATUS, INBOUND = "/webhooks/twilio/sms/status", "/webhooks/twilio/sms/inbound"
VOICE_STATUS, GATHER, EVENTS = "/webhooks/twilio/voice/status", "/webhooks/twilio/voice/gather", "/webhooks/sendgrid/events"
ROUTES = [SMS_STATUS, INBOUND, VOICE_STATUS, GATHER, EVENTS]


@pytest.fixture
def sendgrid(clock):
    return FakeSendGrid(clock=clock)


@pytest.fixture
def app(runtime, sendgrid):
    return webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                       sendgrid_public_key=sendgrid.public_key, public_url=PUBLIC)


def add_message(runtime, ref: str, channel: str = "sms", address: str = PHONE, status: str = "sent") -> int:
    now = runtime.clock.now()
    with session(runtime.engine) as db:
        message = Message(key=f"key-{ref}", kind="appointment_reminder", channel=channel, address=address,
                          patient_key="1", asks_reply=True, send_at=now, status=status, status_at=now,
                          provider_ref=ref, created_at=now, sent_at=now)
        db.add(message)
        db.commit()
        return message.id


def status(runtime, message_id: int) -> str:
    with session(runtime.engine) as db:
        return db.get(Message, message_id).status


def history(runtime, message_id: int) -> list[str]:
    with session(runtime.engine) as db:
        return list(db.exec(select(MessageEvent.status).where(MessageEvent.message_id == message_id)
                            .order_by(MessageEvent.id)).all())


def count(runtime, table) -> int:
    with session(runtime.engine) as db:
        return db.exec(select(func.count()).select_from(table)).one()


def post(app, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            return await client.post(path, content=content, headers=headers)
    return asyncio.run(go())


def twilio(app, path: str, params: dict[str, str], signature: str | None = None) -> httpx.Response:
    signature = signature or RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    return post(app, path, urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})


def sms_status(ref: str, state: str, **extra) -> dict[str, str]:
    return {"MessageSid": ref, "SmsSid": ref, "MessageStatus": state, "SmsStatus": state, "AccountSid": "AC" + "0" * 32,
            "From": "+15005550006", "To": PHONE, "ApiVersion": "2010-04-01", **extra}


def inbound(body: str, sender: str = PHONE) -> dict[str, str]:
    return {"MessageSid": "SMin", "AccountSid": "AC" + "0" * 32, "From": sender, "To": "+15005550006", "Body": body,
            "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01"}


def sendgrid_post(app, sendgrid, clock, events: list[dict], tamper: bool = False) -> httpx.Response:
    payload = json.dumps(events).encode()
    timestamp = str(int(clock.now().timestamp()))
    signature = sendgrid.sign(payload, timestamp)
    if tamper:
        payload = payload.replace(b"delivered", b"bounce")
    return post(app, EVENTS, payload, {"Content-Type": "application/json", SIGNATURE_HEADER: signature,
                                       TIMESTAMP_HEADER: timestamp})


def sg_event(ref: str, event: str, event_id: str, clock, **extra) -> dict:
    return {"email": "ann@example.com", "timestamp": int(clock.now().timestamp()), "event": event,
            "sg_event_id": event_id, "sg_message_id": f"{ref}.filterdrecv-1-0-0.0", **extra}


def test_a_signed_delivered_callback_moves_sent_to_received_once(runtime, app):
    message = add_message(runtime, "SM1")
    assert twilio(app, SMS_STATUS, sms_status("SM1", "sent")).status_code == 200
    assert status(runtime, message) == "sent"
    for _ in range(2):
        assert twilio(app, SMS_STATUS, sms_status("SM1", "delivered")).status_code == 200
    assert status(runtime, message) == "received"
    assert history(runtime, message) == ["received"]


def test_undelivered_records_the_error_code_only(runtime, app):
    message = add_message(runtime, "SM2")
    assert twilio(app, SMS_STATUS, sms_status("SM2", "undelivered", ErrorCode="30006")).status_code == 200
    with session(runtime.engine) as db:
        row = db.get(Message, message)
    assert (row.status, row.reason) == ("not_received", "twilio undelivered 30006")
    assert PHONE not in row.reason


def test_a_late_delivered_after_confirmed_stays_confirmed(runtime, app):
    message = add_message(runtime, "SM3")
    assert twilio(app, INBOUND, inbound("C")).status_code == 200
    assert status(runtime, message) == "confirmed"
    assert twilio(app, SMS_STATUS, sms_status("SM3", "delivered")).status_code == 200
    assert status(runtime, message) == "confirmed"
    assert history(runtime, message) == ["confirmed"]


@pytest.mark.parametrize("path", [SMS_STATUS, INBOUND, VOICE_STATUS, GATHER])
def test_forged_or_unsigned_twilio_requests_get_403_and_record_nothing(runtime, app, path):
    message = add_message(runtime, "SM4")
    params = {**sms_status("SM4", "delivered"), **inbound("C"), "CallSid": "SM4", "CallStatus": "completed",
              "Digits": "1"}
    forged = RequestValidator("another-token").compute_signature(PUBLIC + path, params)
    assert twilio(app, path, params, signature=forged).status_code == 403
    assert post(app, path, urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"}).status_code == 403
    # signed for the internal URL, not the public one Twilio calls: refused too
    internal = RequestValidator(TOKEN).compute_signature("http://testserver" + path, params)
    assert twilio(app, path, params, signature=internal).status_code == 403
    assert status(runtime, message) == "sent" and count(runtime, Reply) == 0


def test_an_unknown_message_id_gets_200(runtime, app):
    message = add_message(runtime, "SM5")
    assert twilio(app, SMS_STATUS, sms_status("SMnobody", "delivered")).status_code == 200
    assert twilio(app, VOICE_STATUS, {"CallSid": "CAnobody", "CallStatus": "completed"}).status_code == 200
    assert status(runtime, message) == "sent"


def test_inbound_confirm_gets_empty_twiml(runtime, app):
    message = add_message(runtime, "SM6")
    response = twilio(app, INBOUND, inbound("C"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert "<Message>" not in response.text and "<Response" in response.text
    assert status(runtime, message) == "confirmed"


def test_help_answers_with_the_help_text(runtime, app):
    add_message(runtime, "SM7")
    response = twilio(app, INBOUND, inbound("HELP"))
    assert "<Message>Appointment reminders from Test Dental." in response.text
    assert "(212) 555-0100" in response.text


def test_stop_records_an_opt_out_and_answers_nothing(runtime, app):
    add_message(runtime, "SM8")
    response = twilio(app, INBOUND, inbound("STOP"))
    assert response.status_code == 200 and "<Message>" not in response.text
    with session(runtime.engine) as db:
        assert {o.channel for o in db.exec(select(OptOut).where(OptOut.address == PHONE)).all()} == {"sms", "voice"}


def test_a_keypress_1_confirms_the_calls_message_and_3_asks_again(runtime, app):
    message = add_message(runtime, "CA1", channel="voice")
    again = twilio(app, GATHER, {"CallSid": "CA1", "Digits": "3", "CallStatus": "in-progress"})
    assert "<Gather" in again.text and PUBLIC + GATHER in again.text and status(runtime, message) == "sent"
    response = twilio(app, GATHER, {"CallSid": "CA1", "Digits": "1", "CallStatus": "in-progress"})
    assert response.status_code == 200 and "confirmed" in response.text and "<Hangup" in response.text
    assert status(runtime, message) == "confirmed"
    assert twilio(app, VOICE_STATUS, {"CallSid": "CA1", "CallStatus": "completed", "AnsweredBy": "human"}).status_code == 200
    assert status(runtime, message) == "confirmed"


def test_call_statuses(runtime, app):
    human, nobody = add_message(runtime, "CA2", channel="voice"), add_message(runtime, "CA3", channel="voice", address="+12125550002")
    twilio(app, VOICE_STATUS, {"CallSid": "CA2", "CallStatus": "ringing"})
    assert status(runtime, human) == "sent"
    twilio(app, VOICE_STATUS, {"CallSid": "CA2", "CallStatus": "completed", "AnsweredBy": "machine_end_beep"})
    twilio(app, VOICE_STATUS, {"CallSid": "CA3", "CallStatus": "no-answer"})
    assert (status(runtime, human), status(runtime, nobody)) == ("received", "not_received")


def test_sendgrid_signed_batch_delivered_and_bounced(runtime, app, sendgrid, clock):
    good, bad = add_message(runtime, "EM1", channel="email"), add_message(runtime, "EM2", channel="email", address="x@example.com")
    batch = [sg_event("EM1", "processed", "e0", clock), sg_event("EM1", "delivered", "e1", clock),
             sg_event("EM2", "bounce", "e2", clock, type="bounce", status="5.1.1", reason="550 x@example.com unknown"),
             sg_event("EMnobody", "delivered", "e3", clock)]
    assert sendgrid_post(app, sendgrid, clock, batch).status_code == 200
    assert sendgrid_post(app, sendgrid, clock, batch).status_code == 200  # SendGrid retries: recorded once
    assert (status(runtime, good), status(runtime, bad)) == ("received", "not_received")
    # the bounce is recorded once; the second row is the fallback's note (no patient in this mirror to fall back on)
    assert history(runtime, good) == ["received"] and history(runtime, bad) == ["not_received", "not_received"]
    with session(runtime.engine) as db:
        assert "@" not in db.get(Message, bad).reason


def test_sendgrid_tampered_or_stale_batches_are_refused(runtime, app, sendgrid, clock):
    message = add_message(runtime, "EM3", channel="email")
    assert sendgrid_post(app, sendgrid, clock, [sg_event("EM3", "delivered", "e9", clock)], tamper=True).status_code == 403
    payload = json.dumps([sg_event("EM3", "delivered", "e9", clock)]).encode()
    old = str(int((clock.now() - timedelta(hours=1)).timestamp()))
    assert post(app, EVENTS, payload, {SIGNATURE_HEADER: sendgrid.sign(payload, old), TIMESTAMP_HEADER: old}).status_code == 403
    assert status(runtime, message) == "sent"


def test_over_real_http_the_fake_twilio_posts_signed_callbacks(runtime, sendgrid):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                      sendgrid_public_key=sendgrid.public_key, public_url=base)
    message = add_message(runtime, "SM9")
    served = serve(app, "127.0.0.1", port)
    try:
        with FakeTwilio(auth_token=TOKEN) as fake:
            assert fake.callbacks.post(base + SMS_STATUS, sms_status("SM9", "delivered"))[0] == 200
            code, body = fake.send_inbound(base + INBOUND, From=PHONE, To="+15005550006", Body="HELP")
            assert code == 200 and "Test Dental" in body
            code, _ = fake.send_inbound(base + INBOUND, From=PHONE, To="+15005550006", Body="yes")
            assert code == 200
        forged = FakeTwilio(auth_token="wrong")
        assert forged.callbacks.post(base + SMS_STATUS, sms_status("SM9", "undelivered"))[0] == 403
        forged.callbacks.close()
    finally:
        served.stop()
    assert history(runtime, message) == ["received", "confirmed"]


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
FORM = st.dictionaries(st.sampled_from(["MessageSid", "MessageStatus", "CallSid", "CallStatus", "Digits", "From",
                                        "Body", "AnsweredBy", "ErrorCode", "x"]),
                       st.sampled_from(["SMh", "CAh", "delivered", "completed", "1", PHONE, "C", "STOP", "", "\x00"])
                       | st.text(max_size=20), max_size=8)


def test_garbled_and_forged_requests_never_fail_and_record_nothing(runtime, app, sendgrid, clock):
    add_message(runtime, "SMh")
    add_message(runtime, "CAh", channel="voice", address="+12125550003")
    add_message(runtime, "EMh", channel="email", address="h@example.com")
    with session(runtime.engine) as db:
        before = sorted((m.id, m.status) for m in db.exec(select(Message)).all())
    timestamp = str(int(clock.now().timestamp()))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(ROUTES), form=FORM, raw=st.binary(max_size=200), use_raw=st.booleans(),
           signature=HEADER_TEXT, content_type=st.sampled_from(["application/x-www-form-urlencoded",
                                                                "application/json", "text/plain", "multipart/form-data"]),
           length=st.sampled_from([None, "abc", "-1", "99999999999"]))
    def attack(path, form, raw, use_raw, signature, content_type, length):
        body = raw if use_raw else (json.dumps([sg_event("EMh", "delivered", "h1", clock)]).encode()
                                    if path == EVENTS else urlencode(form).encode())
        headers = {"Content-Type": content_type, "X-Twilio-Signature": signature, SIGNATURE_HEADER: signature,
                   TIMESTAMP_HEADER: timestamp}
        if length is not None:
            headers["Content-Length"] = length
        try:
            response = post(app, path, body, headers)
        except (httpx.LocalProtocolError, ValueError):
            return  # the client itself refuses to send it
        assert response.status_code in (400, 403, 413)  # 413: a declared length past [webhooks] max_body_bytes

    attack()
    with session(runtime.engine) as db:
        assert sorted((m.id, m.status) for m in db.exec(select(Message)).all()) == before
    assert count(runtime, Reply) == 0 and count(runtime, MessageEvent) == 0
