"""Twilio SMS and voice senders, through the real twilio client, against the fake Twilio on loopback."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import urllib3
from twilio.request_validator import RequestValidator

from vitalsync.core.errors import (AmbiguousSendError, PermanentSendError, PersonMustAct, SendError,
                                   TransientSendError, UnreachableError)
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.dispatch.sender import Outgoing
from vitalsync.dispatch.twilio_sms import TwilioSms, connect
from vitalsync.dispatch.twilio_voice import TwilioVoice

PATIENT, INVALID, UNSUBSCRIBED, NOT_MOBILE, LANDLINE, MACHINE = (
    "+15551230001", "+15005550001", "+15005550004", "+15005550009", "+15551230006", "+15551230009")
BODY = "Bright Smiles: see you Tue 3:00 PM <Dr. O'Neil & team>. Reply C to confirm, N if you can't come."


class Capture:
    """A tiny webhook receiver that records what arrives: (path, params, X-Twilio-Signature)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], str]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode(), keep_blank_values=True)
                capture.received.append((self.path, {k: v[-1] for k, v in form.items()},
                                         self.headers.get("X-Twilio-Signature", "")))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.end_headers()
                self.wfile.write(b"<Response/>")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, str], str]]:
        end = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < end:
            time.sleep(0.01)
        return self.received


@pytest.fixture
def capture():
    receiver = Capture()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def twilio():
    with FakeTwilio(invalid={INVALID}, unsubscribed={UNSUBSCRIBED}, not_mobile={NOT_MOBILE}, landlines={LANDLINE},
                    machines={MACHINE}) as fake:
        yield fake


def sms(fake: FakeTwilio, capture: Capture | None = None, **overrides) -> TwilioSms:
    settings = dict(from_number="+15005550006", base_url=fake.base_url, timeout=5.0,
                    status_callback=capture.url("/webhooks/twilio/sms/status") if capture else None)
    return TwilioSms(fake.account_sid, fake.auth_token, **{**settings, **overrides})


def voice(fake: FakeTwilio, capture: Capture) -> TwilioVoice:
    return TwilioVoice(fake.account_sid, fake.auth_token, from_number="+15005550006", base_url=fake.base_url,
                       gather_url=capture.url("/webhooks/twilio/voice/gather"),
                       status_callback=capture.url("/webhooks/twilio/voice/status"))


def outgoing(to: str = PATIENT, channel: str = "sms", language: str = "en", asks_reply: bool = True) -> Outgoing:
    return Outgoing(message_id=1, key="k1", channel=channel, to=to, body=BODY, language=language, asks_reply=asks_reply)


def signed_by(fake: FakeTwilio, capture: Capture, path: str, params: dict[str, str], signature: str) -> bool:
    return RequestValidator(fake.auth_token).validate(capture.url(path), params, signature)


def test_an_sms_is_accepted_and_its_sid_returned(twilio):
    sid = sms(twilio).send(outgoing())
    assert sid.startswith("SM") and len(sid) == 34
    (request,) = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.form == {"To": [PATIENT], "From": ["+15005550006"], "Body": [BODY]}
    assert twilio.messages[sid]["status"] == "delivered"


def test_delivery_is_reported_by_callbacks_signed_as_twilio_signs_them(twilio, capture):
    sid = sms(twilio, capture).send(outgoing())
    received = capture.wait_for(2)
    assert [params["MessageStatus"] for _, params, _ in received] == ["sent", "delivered"]
    for path, params, signature in received:
        assert path == "/webhooks/twilio/sms/status"
        assert params["MessageSid"] == params["SmsSid"] == sid and params["AccountSid"] == twilio.account_sid
        assert signed_by(twilio, capture, path, params, signature)


def test_a_forged_or_altered_callback_does_not_validate(twilio, capture):
    sms(twilio, capture).send(outgoing())
    path, params, signature = capture.wait_for(2)[-1]
    assert not signed_by(twilio, capture, path, {**params, "MessageStatus": "undelivered"}, signature)
    forged = RequestValidator("not-the-auth-token").compute_signature(capture.url(path), params)
    assert not signed_by(twilio, capture, path, params, forged)


def test_a_messaging_service_message_is_accepted_then_reports_queued(twilio, capture):
    sender = sms(twilio, capture, from_number=None, messaging_service_sid="MG" + "1" * 32)
    sender.send(outgoing())
    received = capture.wait_for(3)
    assert [params["MessageStatus"] for _, params, _ in received] == ["queued", "sent", "delivered"]
    assert all(params["MessagingServiceSid"] == "MG" + "1" * 32 for _, params, _ in received)


@pytest.mark.parametrize("to", [INVALID, "555-0100"])
def test_an_invalid_number_fails_for_good(twilio, to):
    with pytest.raises(PermanentSendError, match="not valid"):
        sms(twilio).send(outgoing(to))


def test_an_unsubscribed_recipient_fails_for_good(twilio):
    with pytest.raises(PermanentSendError, match="recipient unsubscribed"):
        sms(twilio).send(outgoing(UNSUBSCRIBED))


def test_a_number_that_cannot_take_texts_is_unreachable_so_the_next_channel_is_tried(twilio):
    with pytest.raises(UnreachableError):
        sms(twilio).send(outgoing(NOT_MOBILE))


def test_a_landline_is_accepted_then_reported_undelivered_with_30006(twilio, capture):
    sid = sms(twilio, capture).send(outgoing(LANDLINE))
    *_, (path, last, signature) = capture.wait_for(2)
    assert (last["MessageSid"], last["MessageStatus"], last["ErrorCode"]) == (sid, "undelivered", "30006")
    assert signed_by(twilio, capture, path, last, signature)


def test_rate_limiting_is_transient_and_carries_retry_after(twilio):
    twilio.switches.rate_limited, twilio.switches.retry_after = 1, 7
    sender = sms(twilio)
    with pytest.raises(TransientSendError) as caught:
        sender.send(outgoing())
    assert caught.value.retry_after == 7.0
    assert sender.send(outgoing()).startswith("SM")  # the switch covered one request only


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_transient(twilio, status):
    twilio.switches.server_error, twilio.switches.server_status = 1, status
    with pytest.raises(TransientSendError, match=f"HTTP {status}"):
        sms(twilio).send(outgoing())
    assert not twilio.messages


def test_a_refused_connection_is_transient_even_after_a_kept_alive_one():
    with FakeTwilio() as fake:
        sender = sms(fake)
        sender.send(outgoing())
    with pytest.raises(TransientSendError, match="nothing was sent"):
        sender.send(outgoing())


def test_a_request_that_hangs_past_the_timeout_is_ambiguous(twilio):
    twilio.switches.hang, twilio.switches.hang_seconds = 1, 10
    with pytest.raises(AmbiguousSendError):
        sms(twilio, timeout=0.3).send(outgoing())
    assert len(twilio.messages) == 1  # it did leave: only reconciliation can tell


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\nnot json!"],
                         ids=["connection closed after the request", "unreadable answer"])
def test_a_request_that_left_without_a_readable_answer_is_ambiguous(answer):
    """The request reached the server, so the message may exist: reconcile, never send again blindly."""
    server = socket.create_server(("127.0.0.1", 0))
    heard = []

    def one_exchange():
        conn, _ = server.accept()
        with conn:
            heard.append(conn.recv(65536))
            conn.sendall(answer)

    thread = threading.Thread(target=one_exchange, daemon=True)
    thread.start()
    sender = TwilioSms("AC" + "0" * 32, "token", from_number="+15005550006",
                       base_url=f"http://127.0.0.1:{server.getsockname()[1]}", timeout=5)
    with pytest.raises(AmbiguousSendError):
        sender.send(outgoing())
    thread.join(5)
    server.close()
    assert heard and heard[0].startswith(b"POST ")


def test_a_wrong_auth_token_stops_for_a_person_and_sends_nothing(twilio):
    with pytest.raises(TransientSendError) as caught:
        TwilioSms(twilio.account_sid, "wrong", from_number="+15005550006", base_url=twilio.base_url).send(outgoing())
    assert isinstance(caught.value, PersonMustAct) and "credentials" in str(caught.value)
    assert not twilio.messages


def test_a_call_reads_the_message_escaped_then_gathers_one_key(twilio, capture):
    sid = voice(twilio, capture).send(outgoing(channel="voice"))
    assert sid.startswith("CA")
    (request,) = twilio.requests
    twiml = request.form["Twiml"][0]
    assert "Dr. O'Neil &amp; team&gt;" in twiml and "&lt;Dr." in twiml and "<Dr." not in twiml
    assert twiml.index("<Say") < twiml.index("<Gather")
    gather_url = capture.url("/webhooks/twilio/voice/gather")
    assert f'<Gather action="{gather_url}" method="POST" numDigits="1"' in twiml
    assert "Press 1 to confirm, 2 to decline" in twiml and 'language="en-US"' in twiml
    assert request.form["MachineDetection"] == ["DetectMessageEnd"]
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


def test_a_spanish_call_is_read_in_spanish(twilio, capture):
    voice(twilio, capture).send(outgoing(channel="voice", language="es"))
    twiml = twilio.requests[0].form["Twiml"][0]
    assert 'language="es-US"' in twiml and "Marque 1 para confirmar" in twiml


def test_call_progress_is_reported_signed_and_a_machine_is_told_apart(twilio, capture):
    sender = voice(twilio, capture)
    sender.send(outgoing(channel="voice"))
    sender.send(outgoing(MACHINE, channel="voice"))
    received = capture.wait_for(8)
    assert [p["CallStatus"] for _, p, _ in received] == ["initiated", "ringing", "in-progress", "completed"] * 2
    assert [p.get("AnsweredBy") for _, p, _ in received[2:4] + received[6:8]] == ["human"] * 2 + ["machine_end_beep"] * 2
    assert all(signed_by(twilio, capture, *callback) for callback in received)


def test_a_keypress_arrives_signed(twilio, capture):
    sid = voice(twilio, capture).send(outgoing(channel="voice"))
    twilio.callbacks.drain()
    status, _ = twilio.press(capture.url("/webhooks/twilio/voice/gather"), sid, "1")
    path, params, signature = capture.received[-1]
    assert status == 200 and path == "/webhooks/twilio/voice/gather"
    assert (params["CallSid"], params["Digits"], params["To"]) == (sid, "1", PATIENT)
    assert signed_by(twilio, capture, path, params, signature)


def test_an_inbound_text_arrives_signed(twilio, capture):
    status, answer = twilio.send_inbound(capture.url("/webhooks/twilio/sms/inbound"), PATIENT, "+15005550006", "C")
    path, params, signature = capture.received[-1]
    assert (status, answer) == (200, "<Response/>")
    assert (params["From"], params["Body"], params["SmsStatus"]) == (PATIENT, "C", "received")
    assert signed_by(twilio, capture, path, params, signature)


def test_no_exception_names_a_phone_number_or_the_message(twilio):
    raised: list[SendError] = []
    for to in (INVALID, "555-0100", UNSUBSCRIBED, NOT_MOBILE):
        with pytest.raises(SendError) as caught:
            sms(twilio).send(outgoing(to))
        raised.append(caught.value)
    twilio.switches.rate_limited = twilio.switches.server_error = twilio.switches.hang = 1
    twilio.switches.hang_seconds = 5
    for _ in range(3):
        with pytest.raises(SendError) as caught:
            sms(twilio, timeout=0.3).send(outgoing())
        raised.append(caught.value)
    for error in raised:
        text = f"{error} {error!r} {vars(error)}"
        assert not any(secret in text for secret in (INVALID, "555-0100", UNSUBSCRIBED, NOT_MOBILE, PATIENT, BODY[:20]))
        assert error.__cause__ is None and error.__suppress_context__  # the vendor exception is not chained


def test_a_proxy_from_the_environment_is_read_once_when_the_client_is_made(monkeypatch):
    """The sender reads the environment's proxy for the API host at start (NO_PROXY honoured) and keeps it."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.clinic.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    _, http = connect("AC" + "0" * 32, "token", "https://api.twilio.com", 5)
    assert http.proxy == "http://proxy.clinic.example:3128"
    assert isinstance(http.pool, urllib3.ProxyManager) and http.pool.proxy.host == "proxy.clinic.example"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _, local = connect("AC" + "0" * 32, "token", "http://127.0.0.1:8080", 5)
    assert local.proxy is None and not isinstance(local.pool, urllib3.ProxyManager)
