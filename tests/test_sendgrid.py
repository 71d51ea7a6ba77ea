"""SendGrid email over real HTTP on loopback: the official client, the fake SendGrid, signed event batches."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from sendgrid.helpers.eventwebhook import EventWebhook

from vitalsync.core.errors import AmbiguousSendError, PermanentSendError, SendError, TransientSendError
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.fake_sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, FakeSendGrid
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.sendgrid_email import SendGridEmail
from vitalsync.status.sendgrid_signature import SENDGRID_EVENTS, parse_events, verify_sendgrid

KEY = "SG.test-key.0123456789"
PATIENT = "maria.garcia@example.com"


def reminder(to: str = PATIENT, message_id: int = 42) -> Outgoing:
    return Outgoing(message_id=message_id, key=f"m{message_id}", channel="email", to=to,
                    subject="Your appointment on Tuesday", body="Maria, see you Tuesday at 9:00. Confirm: https://x/c",
                    html="<p>Maria, see you Tuesday at 9:00. <a href='https://x/c'>Confirm</a></p>")


class Capture:
    """A webhook receiver that keeps what arrives and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                capture.received.append((dict(self.headers), body))
                self.send_response(capture.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/sendgrid/events"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def capture():
    receiver = Capture()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def fake(capture):
    with FakeSendGrid(KEY, event_url=capture.url, bounce={"gone@example.com"}, invalid={"nobody@invalid.test"},
                      dropped={"unsubscribed@example.com"}) as server:
        yield server


@pytest.fixture
def sender(fake):
    return SendGridEmail(KEY, "clinic@example.com", "Main Street Dental", base_url=fake.url, timeout=5)


def refused(sender: SendGridEmail, outgoing: Outgoing, error: type[SendError]) -> SendError:
    with pytest.raises(error) as caught:
        sender.send(outgoing)
    assert outgoing.to not in str(caught.value) and "Maria" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    return caught.value


def test_an_email_is_accepted_and_the_x_message_id_is_the_reference(fake, sender):
    reference = sender.send(reminder())
    assert reference and all(e["sg_message_id"].startswith(reference + ".filter") for e in fake.pending)
    assert [e["event"] for e in fake.pending] == ["processed", "delivered", "open"]


def test_the_email_has_text_and_html_and_no_patient_data_in_custom_args_or_categories(fake, sender):
    sender.send(reminder())
    request = fake.requests[-1]
    mail = request.json()
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert [c["type"] for c in mail["content"]] == ["text/plain", "text/html"]
    assert mail["personalizations"][0]["to"] == [{"email": PATIENT}]
    assert mail["from"] == {"email": "clinic@example.com", "name": "Main Street Dental"}
    assert mail["custom_args"] == {"vitalsync_message": "42"}
    assert not mail.get("categories")
    assert "Maria" not in json.dumps(mail.get("custom_args")) + json.dumps(mail.get("categories"))


def test_a_signed_event_batch_arrives_and_verifies_with_the_fakes_public_key(fake, sender, capture):
    reference = sender.send(reminder())
    assert fake.post_events() == 200
    headers, body = capture.received[0]
    signature, timestamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    assert verify_sendgrid(fake.public_key, body, signature, timestamp)
    assert verify_sendgrid(fake.public_key, body, signature, timestamp, now=datetime.now(timezone.utc))
    assert EventWebhook(fake.public_key).verify_signature(body.decode(), signature, timestamp)  # SendGrid's own check
    events = parse_events(body)
    assert [(e.event, e.status) for e in events] == [
        ("processed", None), ("delivered", MessageStatus.RECEIVED), ("open", MessageStatus.RECEIVED)]
    assert {(e.reference, e.message_id) for e in events} == {(reference, 42)}
    assert len({e.event_id for e in events}) == 3 and not fake.pending


def test_a_tampered_payload_a_wrong_timestamp_and_a_forged_signature_are_refused(fake, sender, capture):
    sender.send(reminder())
    fake.post_events()
    headers, body = capture.received[0]
    signature, timestamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    assert not verify_sendgrid(fake.public_key, body.replace(b"delivered", b"bounce"), signature, timestamp)
    assert not verify_sendgrid(fake.public_key, body, signature, str(int(timestamp) + 1))
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = base64.b64encode(forger.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    assert not verify_sendgrid(fake.public_key, body, forged, timestamp)
    stale = datetime.now(timezone.utc) + timedelta(hours=1)
    assert not verify_sendgrid(fake.public_key, body, signature, timestamp, now=stale)


@pytest.fixture(scope="module")
def shared_fake():
    with FakeSendGrid(KEY) as server:
        yield server


@pytest.fixture(scope="module")
def public_key(shared_fake):
    return shared_fake.public_key


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=200), signature=st.text(max_size=120), timestamp=st.text(max_size=20),
       key=st.one_of(st.text(max_size=150), st.just("")))
def test_garbage_is_refused_without_raising(public_key, payload, signature, timestamp, key):
    assert verify_sendgrid(public_key, payload, signature, timestamp) is False
    assert verify_sendgrid(key, payload, signature, timestamp) is False
    assert isinstance(parse_events(payload), list)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.text(), st.dictionaries(
    st.sampled_from(["event", "sg_event_id", "sg_message_id", "timestamp", "vitalsync_message"]),
    st.one_of(st.text(), st.integers(), st.none(), st.floats())))))
def test_garbled_event_entries_are_left_out_without_raising(batch):
    for event in parse_events(json.dumps(batch).encode()):
        assert event.event in SENDGRID_EVENTS and event.event_id and event.reference


def test_a_bounced_address_produces_a_bounce_event(fake, sender, capture):
    sender.send(reminder(to="gone@example.com"))
    fake.post_events()
    events = parse_events(capture.received[0][1])
    assert [(e.event, e.status) for e in events] == [("processed", None), ("bounce", MessageStatus.NOT_RECEIVED)]
    assert "gone@example.com" not in events[1].detail


def test_a_suppressed_address_produces_a_dropped_event(fake, sender, capture):
    sender.send(reminder(to="unsubscribed@example.com"))
    fake.post_events()
    [event] = parse_events(capture.received[0][1])
    assert (event.event, event.status, event.detail) == ("dropped", MessageStatus.NOT_RECEIVED,
                                                         "dropped: Unsubscribed Address")


def test_events_the_receiver_refuses_stay_pending_for_the_next_batch(fake, sender, capture):
    sender.send(reminder())
    capture.status = 503
    assert fake.post_events() == 503 and len(fake.pending) == 3
    capture.status = 200
    assert fake.post_events() == 200 and not fake.pending and len(fake.batches) == 1


def test_with_auto_events_the_batch_follows_each_send(capture):
    with FakeSendGrid(KEY, event_url=capture.url, auto_events=True) as fake:
        SendGridEmail(KEY, "clinic@example.com", base_url=fake.url).send(reminder())
        deadline = time.monotonic() + 5
        while not capture.received and time.monotonic() < deadline:
            time.sleep(0.01)
    headers, body = capture.received[0]
    assert verify_sendgrid(fake.public_key, body, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])


def test_an_invalid_address_is_a_permanent_error(fake, sender):
    error = refused(sender, reminder(to="nobody@invalid.test"), PermanentSendError)
    assert "personalizations.0.to.0.email" in str(error)
    refused(sender, reminder(to="not an address"), PermanentSendError)


def test_a_bad_body_gets_sendgrids_error_shape(fake):
    answer = httpx.post(fake.url + "/v3/mail/send", headers={"Authorization": f"Bearer {KEY}"},
                        json={"personalizations": [], "content": [{"type": "text/html", "value": ""}]})
    assert answer.status_code == 400
    fields = {e["field"] for e in answer.json()["errors"]}
    assert {"personalizations", "from", "subject", "content.0.value"} <= fields
    assert all(set(e) == {"message", "field", "help"} for e in answer.json()["errors"])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=20)
MAIL_KEYS = st.sampled_from(["personalizations", "from", "subject", "content", "custom_args", "categories"])


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(MAIL_KEYS, JSON) | JSON)
def test_any_json_body_gets_a_400_or_a_202_never_a_crash(shared_fake, body):
    answer = httpx.post(shared_fake.url + "/v3/mail/send", headers={"Authorization": f"Bearer {KEY}"}, json=body)
    assert answer.status_code in (202, 400)
    if answer.status_code == 400:
        assert all(set(e) == {"message", "field", "help"} for e in answer.json()["errors"])


def test_a_wrong_api_key_is_a_permanent_error_that_names_no_key(fake):
    sender = SendGridEmail("SG.wrong-secret", "clinic@example.com", base_url=fake.url, timeout=5)
    error = refused(sender, reminder(), PermanentSendError)
    assert "check the SendGrid API key" in str(error) and "wrong-secret" not in str(error)


def test_rate_limiting_is_transient_with_retry_after(fake, sender):
    fake.status = 429
    error = refused(sender, reminder(), TransientSendError)
    assert 25 <= error.retry_after <= 31


def test_a_server_error_is_transient(fake, sender):
    fake.status = 503
    refused(sender, reminder(), TransientSendError)
    assert not fake.pending


def test_a_stopped_server_is_transient(fake, sender):
    fake.stop()
    error = refused(sender, reminder(), TransientSendError)
    assert "ConnectionRefusedError" in str(error)


def test_a_hanging_server_is_ambiguous(fake):
    fake.hang = True
    sender = SendGridEmail(KEY, "clinic@example.com", base_url=fake.url, timeout=0.3)
    started = time.monotonic()
    refused(sender, reminder(), AmbiguousSendError)
    assert time.monotonic() - started < 3
    assert fake.requests[-1].json()["custom_args"] == {"vitalsync_message": "42"}  # it did leave


def test_an_email_without_html_is_sent_as_plain_text(fake, sender):
    outgoing = Outgoing(message_id=7, key="m7", channel="email", to=PATIENT, subject="Reminder", body="See you.")
    assert sender.send(outgoing)
    assert [c["type"] for c in fake.requests[-1].json()["content"]] == ["text/plain"]


def test_debug_logging_never_shows_the_address_or_the_body(fake, sender, caplog):
    caplog.set_level(logging.DEBUG)
    sender.send(reminder())
    assert PATIENT not in caplog.text and "Maria" not in caplog.text
