"""Patients answer by email, and unsubscribe by email, end to end over loopback.

The reminder goes through the real sendgrid client to the fake SendGrid with Reply-To
reply+TOKEN@reply_domain; the patient's answer comes back as SendGrid's Inbound Parse posts it
(multipart/form-data, parsed fields or raw MIME), authenticated by the secret in its URL, to the
receiver served by uvicorn. SendGrid's unsubscribe and spam report events opt the address out of
email; a resubscribe lifts it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket

import pytest
from sqlmodel import select

from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_sendgrid_inbound import post_inbound
from vitalsync.dispatch.sendgrid_email import SendGridEmail
from vitalsync.mirror.tables import OptOut
from vitalsync.queue.tables import Message
from vitalsync.status.tables import Reply
from vitalsync.status.webhooks import serve, webhook_app

SECRET = "a-long-random-inbound-secret-0123456789"
DOMAIN = "reply.clinic.example"
ANN, BEN = "ann1@example.com", "ben2@example.com"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("VITALSYNC_SENDGRID_INBOUND_SECRET", SECRET)


@pytest.fixture
def emailed(runtime, connector, clock):
    """Ann's and Ben's reminders sent by email (they have no mobile), and the receiver's address."""
    runtime.config.sendgrid.reply_domain = DOMAIN
    runtime.kinds = {"appointment_reminder": runtime.kinds["appointment_reminder"]}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with FakeSendGrid(clock=clock, event_url=base + "/webhooks/sendgrid/events") as sendgrid:
        app = webhook_app(runtime.engine, runtime.config, runtime.clock, twilio_auth_token=None,
                          sendgrid_public_key=sendgrid.public_key, public_url=base)
        served = serve(app, "127.0.0.1", port)
        runtime.senders = {"email": SendGridEmail(sendgrid.api_key, "clinic@example.org", base_url=sendgrid.url,
                                                  timeout=5, clock=clock)}
        open_practice(connector, patient("1", "Ann", mobile=None), patient("2", "Ben", mobile=None))
        book(connector, "A1", "1", ny(4, 10))
        book(connector, "A2", "2", ny(4, 11))
        runtime.sync_once()
        runtime.plan_once()
        clock.set(ny(2, 11))  # both -2d reminders are due
        assert runtime.dispatch_once().sent == 2
        try:
            yield sendgrid, base
        finally:
            served.stop()


def message_to(runtime, address: str) -> Message:
    with session(runtime.engine) as db:
        return db.exec(select(Message).where(Message.address == address, Message.status != MessageStatus.NOT_SENT)).one()


def replies(runtime) -> list[Reply]:
    with session(runtime.engine) as db:
        return list(db.exec(select(Reply).order_by(Reply.id)))


def email_opt_outs(runtime) -> list[str]:
    with session(runtime.engine) as db:
        return sorted(db.exec(select(OptOut.address).where(OptOut.channel == "email")).all())


def test_each_email_carries_a_reply_to_that_names_its_message_and_nothing_else(runtime, emailed):
    sendgrid, _ = emailed
    mails = [r.json() for r in sendgrid.requests if r.path == "/v3/mail/send"]
    reply_tos = {m["personalizations"][0]["to"][0]["email"]: m["reply_to"]["email"] for m in mails}
    for address in (ANN, BEN):
        token = message_to(runtime, address).reply_token
        assert reply_tos[address] == f"reply+{token}@{DOMAIN}"
        assert "ann" not in reply_tos[address].lower() and "ben" not in reply_tos[address].lower()


def test_a_reply_by_email_confirms_and_a_raw_mime_one_declines(runtime, emailed):
    _, base = emailed
    ann, ben = message_to(runtime, ANN), message_to(runtime, BEN)
    assert post_inbound(base + "/webhooks/sendgrid/inbound", auth=("parse", SECRET), sender=f"Ann Doe <{ANN}>",
                        to=f"reply+{ann.reply_token}@{DOMAIN}",
                        text="Yes I'll be there\n\nOn Mon, Mar 2, 2026 Riverside wrote:\n> Reply C to confirm") == 200
    assert post_inbound(f"{base}/webhooks/sendgrid/inbound/{SECRET}", raw=True, sender=BEN,
                        to=f"reply+{ben.reply_token}@{DOMAIN}", text="N\n\n> Reply C to confirm, N to decline") == 200
    assert message_to(runtime, ANN).status == MessageStatus.CONFIRMED
    assert message_to(runtime, BEN).status == MessageStatus.DECLINED
    got = replies(runtime)
    assert [(r.channel, r.address, r.message_id) for r in got] == [("email", ANN, ann.id), ("email", BEN, ben.id)]
    assert got[1].needs_staff  # a decline frees a slot: staff see it


def test_the_same_post_again_is_recorded_once(runtime, emailed):
    _, base = emailed
    ann = message_to(runtime, ANN)
    for _ in range(3):  # SendGrid retries a post it thinks failed
        assert post_inbound(base + "/webhooks/sendgrid/inbound", auth=("parse", SECRET), sender=ANN,
                            to=f"reply+{ann.reply_token}@{DOMAIN}", text="C") == 200
    assert len(replies(runtime)) == 1


def test_a_reply_to_an_unknown_token_goes_by_its_sender_and_a_stop_opts_out_of_email(runtime, emailed):
    _, base = emailed
    assert post_inbound(base + "/webhooks/sendgrid/inbound", auth=("parse", SECRET), sender=ANN,
                        to=f"reply+{'0' * 24}@{DOMAIN}", text="STOP") == 200
    [reply] = replies(runtime)
    assert reply.intent == "opt_out" and reply.message_id == message_to(runtime, ANN).id
    assert email_opt_outs(runtime) == [ANN]


@pytest.mark.parametrize(("auth", "path"), [
    (None, "/webhooks/sendgrid/inbound"),
    (("parse", "wrong"), "/webhooks/sendgrid/inbound"),
    (None, "/webhooks/sendgrid/inbound/wrong-secret"),
])
def test_a_post_without_the_secret_is_refused_and_records_nothing(runtime, emailed, auth, path):
    _, base = emailed
    ann = message_to(runtime, ANN)
    assert post_inbound(base + path, auth=auth, sender=ANN, to=f"reply+{ann.reply_token}@{DOMAIN}", text="C") == 403
    assert replies(runtime) == [] and message_to(runtime, ANN).status == MessageStatus.SENT


def test_a_post_that_is_not_an_inbound_email_is_a_400(runtime, emailed):
    import httpx
    _, base = emailed
    url = base + "/webhooks/sendgrid/inbound"
    assert httpx.post(url, auth=("parse", SECRET), json={"text": "C"}).status_code == 400
    assert httpx.post(url, auth=("parse", SECRET), files={"x": ("a", b"b")}, data={"text": "C"}).status_code == 400
    assert replies(runtime) == []


def test_unsubscribe_and_spam_report_opt_out_of_email_and_resubscribe_lifts_it(runtime, emailed):
    sendgrid, _ = emailed
    sendgrid.engage(ANN, "unsubscribe")
    sendgrid.engage(BEN, "spamreport")
    assert sendgrid.post_events() == 200
    assert email_opt_outs(runtime) == [ANN, BEN]
    sendgrid.engage(ANN, "group_resubscribe", asm_group_id=1)
    assert sendgrid.post_events() == 200
    assert email_opt_outs(runtime) == [BEN]
