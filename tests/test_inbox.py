"""The inbox: every provider event is stored once (in the database, under its provider id) before it
is acknowledged, acted on once, and never lost when the database or processing fails.

Signed requests through the real receiver; SQLite and PostgreSQL (the ``runtime`` fixture).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from sqlmodel import select
from structlog.testing import capture_logs
from twilio.request_validator import RequestValidator

from tests.providers import provider_settings
from tests.connectors.test_hl7_daemon import free_port
from tests.test_pipeline import book, ny, open_practice, patient
from tests.test_webhooks import (GATHER, INBOUND, PHONE, PUBLIC, SMS_STATUS, TOKEN, add_message, count, history,
                                 inbound, sendgrid_post, sg_event, sms_status, status, twilio)
from vitalsync.app.senders import build_senders
from vitalsync.core.config import load_config
from vitalsync.core.db import make_engine, session
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.mirror.tables import OptOut
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.status import webhook_twilio
from vitalsync.status.tables import InboxEvent, Reply
from vitalsync.status.webhooks import serve, webhook_app


@pytest.fixture
def sendgrid(clock):
    return FakeSendGrid(clock=clock)


@pytest.fixture
def app(runtime, sendgrid):
    return webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                       sendgrid_public_key=sendgrid.public_key, public_url=PUBLIC)


def inbox(runtime) -> list[InboxEvent]:
    with session(runtime.engine) as db:
        return list(db.exec(select(InboxEvent).order_by(InboxEvent.id)))


def replies(runtime) -> list[Reply]:
    with session(runtime.engine) as db:
        return list(db.exec(select(Reply)))


def test_the_same_signed_message_sid_three_times_makes_one_reply_and_one_opt_out(runtime, app):
    add_message(runtime, "SM1")
    for _ in range(3):
        assert twilio(app, INBOUND, inbound("STOP")).status_code == 200
    with session(runtime.engine) as db:
        assert sorted(o.channel for o in db.exec(select(OptOut).where(OptOut.address == PHONE))) == ["sms", "voice"]
    assert len(replies(runtime)) == 1
    assert [(e.kind, e.event_id, e.processed_at is not None) for e in inbox(runtime)] == [("sms_inbound", "SMin", True)]


def test_a_replayed_help_is_answered_once(runtime, app):
    add_message(runtime, "SM1")
    first, again = (twilio(app, INBOUND, inbound("HELP")) for _ in range(2))
    assert "<Message>" in first.text and "<Message>" not in again.text and again.status_code == 200


def test_a_replayed_keypress_confirms_once_and_is_answered_alike(runtime, app):
    message = add_message(runtime, "CA1", channel="voice")
    press = {"CallSid": "CA1", "Digits": "1", "CallStatus": "in-progress"}
    answers = [twilio(app, GATHER, press) for _ in range(3)]
    assert {a.status_code for a in answers} == {200} and all("confirmed" in a.text for a in answers)
    assert history(runtime, message) == ["confirmed"] and len(replies(runtime)) == 1


def test_a_late_undelivered_after_delivered_stays_received_and_is_in_the_history(runtime, app):
    message = add_message(runtime, "SM2")
    for state in ("delivered", "undelivered", "delivered", "undelivered"):
        extra = {"ErrorCode": "30006"} if state == "undelivered" else {}
        assert twilio(app, SMS_STATUS, sms_status("SM2", state, **extra)).status_code == 200
    assert status(runtime, message) == "received"
    with session(runtime.engine) as db:
        events = db.exec(select(MessageEvent).where(MessageEvent.message_id == message).order_by(MessageEvent.id)).all()
    assert [(e.status, e.detail) for e in events] == [
        ("received", ""), ("received", "provider reported not_received (twilio undelivered 30006); status kept")]


def test_undelivered_then_delivered_ends_received(runtime, app):
    message = add_message(runtime, "SM3")
    twilio(app, SMS_STATUS, sms_status("SM3", "undelivered", ErrorCode="30008"))  # not permanent: no fallback
    twilio(app, SMS_STATUS, sms_status("SM3", "delivered"))
    assert status(runtime, message) == "received" and history(runtime, message) == ["not_received", "received"]


def test_sendgrid_replays_are_recognised_in_the_database_after_a_restart(runtime, sendgrid, clock):
    message = add_message(runtime, "EM1", channel="email", address="ann@example.com")
    bounce = [sg_event("EM1", "bounce", "e1", clock, type="bounce", status="5.1.1")]
    later = [sg_event("EM1", "open", "e2", clock)]

    def fresh_app():  # a new process: nothing remembered but what the database holds
        return webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                           sendgrid_public_key=sendgrid.public_key, public_url=PUBLIC)

    assert sendgrid_post(fresh_app(), sendgrid, clock, bounce).status_code == 200
    assert sendgrid_post(fresh_app(), sendgrid, clock, later).status_code == 200
    before = history(runtime, message)  # (the bounce may also have been followed on the next channel)
    assert before[0] == "not_received" and before[-1] == "received"
    assert sendgrid_post(fresh_app(), sendgrid, clock, bounce + later).status_code == 200  # SendGrid retries the batch
    assert status(runtime, message) == "received" and history(runtime, message) == before
    assert sorted(e.event_id for e in inbox(runtime)) == ["e1", "e2"]


def test_parallel_replays_over_real_http_on_two_receivers_are_stored_and_acted_on_once(runtime):
    """The same signed requests posted at once to two receivers (two processes' worth) on one database,
    round after round: one reply, one opt-out per channel and one history row each time."""
    rounds, copies = 12, 8
    ports = [free_port(), free_port()]
    apps = [webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=TOKEN,
                        sendgrid_public_key=None, public_url=f"http://127.0.0.1:{port}") for port in ports]
    served = [serve(app, "127.0.0.1", port) for app, port in zip(apps, ports)]
    numbers = [f"+1212555{n:04d}" for n in range(rounds)]
    messages = [add_message(runtime, f"SMp{n}", address=numbers[n]) for n in range(rounds)]

    def signed(port: int, path: str, params: dict) -> tuple[str, str, dict]:
        url = f"http://127.0.0.1:{port}{path}"
        return url, urlencode(params), {"Content-Type": "application/x-www-form-urlencoded",
                                        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)}

    async def one_round(n: int) -> list[int]:
        stop = {**inbound("STOP", sender=numbers[n]), "MessageSid": f"SMstop{n}"}
        report = sms_status(f"SMp{n}", "delivered")
        posts = [signed(ports[i % 2], path, params) for i in range(copies)
                 for path, params in ((INBOUND, stop), (SMS_STATUS, report))]
        async with httpx.AsyncClient(timeout=60) as client:
            answers = await asyncio.gather(*(client.post(url, content=body, headers=headers)
                                             for url, body, headers in posts))
        return [a.status_code for a in answers]

    try:
        for n in range(rounds):
            assert set(asyncio.run(one_round(n))) == {200}
    finally:
        for server in served:
            server.stop()
    with session(runtime.engine) as db:
        for n, message in enumerate(messages):
            assert len(db.exec(select(Reply).where(Reply.address == numbers[n])).all()) == 1, n
            assert sorted(o.channel for o in db.exec(select(OptOut).where(OptOut.address == numbers[n]))) == ["sms", "voice"]
            assert history(runtime, message) == ["received"], n
    assert count(runtime, InboxEvent) == 2 * rounds


def test_a_reply_whose_processing_fails_is_stored_answered_and_recorded_by_the_inbox_step(runtime, app, monkeypatch):
    message = add_message(runtime, "SM4")
    real = webhook_twilio.record_reply

    def broken(*args, **kwargs):
        raise RuntimeError("+12125550001 said C")  # exception text may hold patient data: never logged

    monkeypatch.setattr(webhook_twilio, "record_reply", broken)
    with capture_logs() as lines:
        response = twilio(app, INBOUND, inbound("C"))
    assert response.status_code == 200 and "<Message>" not in response.text
    assert not [line for line in lines if line["event"] == "reply_recorded"]  # nothing claims what did not happen
    assert {"event": "inbox_processing_failed", "source": "twilio", "kind": "sms_inbound", "error_type": "RuntimeError",
            "log_level": "error"} in lines
    [stored] = inbox(runtime)
    assert stored.processed_at is None and stored.attempts == 1 and replies(runtime) == []
    monkeypatch.setattr(webhook_twilio, "record_reply", real)
    with capture_logs() as lines:
        assert runtime.inbox_once()["count"] == 1
    assert [line["event"] for line in lines] == ["reply_recorded"]
    assert status(runtime, message) == "confirmed" and len(replies(runtime)) == 1
    assert twilio(app, INBOUND, inbound("C")).status_code == 200  # Twilio's retry, late: a duplicate
    assert runtime.inbox_once()["count"] == 0 and len(replies(runtime)) == 1


def test_a_locked_database_gets_a_5xx_then_the_retry_records_the_reply_once(runtime, tmp_path):
    """An exclusive lock past the busy timeout: nothing stored, nothing claimed in the log, a 500 for
    Twilio to retry; the retry after the lock is gone records the reply exactly once."""
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database lock; PostgreSQL locks rows")
    message = add_message(runtime, "SM5")
    impatient = make_engine(str(runtime.engine.url) + "?timeout=0.5")
    app = webhook_app(impatient, runtime.config, runtime.clock, twilio_auth_token=TOKEN, sendgrid_public_key=None,
                      public_url=PUBLIC)
    locker = sqlite3.connect(runtime.engine.url.database, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with capture_logs() as lines:
            refused = twilio(app, INBOUND, inbound("C"))
            late = twilio(app, SMS_STATUS, sms_status("SM5", "delivered"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert refused.status_code == 500 and late.status_code == 500
    assert "x-request-id" in refused.headers and refused.headers["x-request-id"] in refused.text
    events = [line["event"] for line in lines]
    assert "reply_recorded" not in events and "deliveries_recorded" not in events
    assert [line["error_type"] for line in lines if line["event"] == "request_failed"] == ["OperationalError"] * 2
    assert twilio(app, INBOUND, inbound("C")).status_code == 200
    assert twilio(app, SMS_STATUS, sms_status("SM5", "delivered")).status_code == 200
    assert twilio(app, INBOUND, inbound("C")).status_code == 200
    assert status(runtime, message) == "confirmed" and len(replies(runtime)) == 1
    assert history(runtime, message) == ["confirmed"]
    impatient.dispose()


def test_a_delivery_report_that_overtakes_the_send_is_kept_and_matched(runtime, connector, write_config, tmp_path):
    """The fake Twilio posts the status callbacks before it answers the send, so they arrive before the
    dispatcher has committed the message's id: stored pending, then matched by the inbox step."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeTwilio(callbacks_first=True) as fake, FakeSendGrid().start() as sendgrid:
        app = webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=fake.auth_token,
                          sendgrid_public_key=None, public_url=base)
        served = serve(app, "127.0.0.1", port)
        try:
            config = load_config(write_config(provider_settings(tmp_path, fake, sendgrid, public_url=base), "p.toml"))
            runtime.senders = build_senders(config, runtime.clock, runtime.sender)
            open_practice(connector, patient("1", "Ann"))
            book(connector, "A1", "1", ny(4, 10))
            runtime.sync_once()
            runtime.plan_once()
            runtime.clock.set(ny(2, 12))
            runtime.dispatch_once()
        finally:
            served.stop()
    assert {(params["MessageStatus"], code) for _, params, code in fake.callbacks.posted} == {("sent", 200), ("delivered", 200)}
    with session(runtime.engine) as db:
        texts = db.exec(select(Message).where(Message.channel == "sms", Message.provider_ref.is_not(None))).all()
    assert texts and {m.status for m in texts} == {"sent"} and {m.provider_ref for m in texts} <= set(fake.messages)
    early = inbox(runtime)
    assert sorted((e.kind, e.reference, e.processed_at) for e in early) == sorted(
        ("sms_status", m.provider_ref, None) for m in texts)
    assert runtime.inbox_once()["count"] == len(texts)
    for message in texts:
        assert status(runtime, message.id) == "received" and history(runtime, message.id)[-2:] == ["sent", "received"]


def test_a_report_for_a_message_never_known_is_flagged_after_the_time_limit(runtime, app):
    assert twilio(app, SMS_STATUS, sms_status("SMnobody", "delivered")).status_code == 200
    assert runtime.inbox_once() == {"count": 0, "failed": 0, "flagged": 0}
    runtime.clock.advance(timedelta(hours=2))
    with capture_logs() as lines:
        assert runtime.inbox_once()["flagged"] == 1
    assert {"event": "inbox_unmatched", "count": 1, "log_level": "warning"} in lines
    [flagged] = inbox(runtime)
    assert flagged.outcome == "unmatched" and flagged.processed_at is not None


def test_an_event_whose_processing_keeps_failing_is_flagged_for_a_person(runtime, app, monkeypatch):
    add_message(runtime, "SM6")
    monkeypatch.setattr(webhook_twilio, "record_reply", lambda *a, **k: 1 / 0)
    twilio(app, INBOUND, inbound("N"))
    for _ in range(12):
        runtime.inbox_once()
    [failed] = inbox(runtime)
    assert (failed.outcome, failed.attempts) == ("failed", 10) and failed.processed_at is not None
