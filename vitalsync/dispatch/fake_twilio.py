"""A local fake Twilio speaking the real wire format, for tests and the demo.

    with FakeTwilio(invalid={"+15005550001"}, landlines={"+15550001111"}) as twilio:
        client.api.base_url = twilio.base_url    # (what TwilioSms(base_url=...) does)
        twilio.switches.rate_limited = 2         # the next two requests get 429 / 20429

Messages and Calls are created with HTTP basic auth and form parameters, answered with Twilio's
JSON; delivery is simulated with signed status callbacks. Initial statuses get no callback, as on
Twilio: a message sent from a number is ``queued`` and then calls back ``sent``, then ``delivered``
(or ``undelivered`` with ErrorCode 30006 for a landline, 30003 for an unreachable handset); one sent
through a Messaging Service is ``accepted`` and also calls back ``queued``.

``GET .../Messages.json`` lists messages as Twilio does (newest first, one page, ``next_page_uri``
null), filtered by ``To``, ``From`` and ``DateSent`` (``DateSent>=`` / ``DateSent<=`` a date or an
ISO 8601 time in UTC; messages without a ``date_sent`` never match a DateSent filter, as on Twilio).
``GET .../Calls.json`` lists calls the same way, filtered by ``To``, ``From`` and ``StartTime``; the
fake's calls start as soon as they are created and end ``completed``.
With ``callbacks_first=True`` a message's or call's status callbacks are posted (and answered) before
the request that created it is answered, as a fast provider's can overtake the sender's own commit.
Given a ``clock``, the fake dates its messages by it (the virtual clock of tests and the demo).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import uuid
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from vitalsync.dispatch.fake_twilio_state import (API_VERSION, Callbacks, Received, Switches, call_json, error,
                                                  message_json, rfc2822)

PATH = re.compile(r"/2010-04-01/Accounts/(AC\w+)/(Messages|Calls)\.json")
E164 = re.compile(r"\+[1-9]\d{1,14}")
CALL_EVENTS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress", "completed": "completed"}


class FakeTwilio:
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "fake-twilio-auth-token", *,
                 invalid=(), unsubscribed=(), not_mobile=(), landlines=(), unreachable=(), machines=(),
                 sender: str = "+15005550006", callback_delay: float = 0.0, clock=None,
                 callbacks_first: bool = False) -> None:
        self.account_sid, self.auth_token, self.sender = account_sid, auth_token, sender
        self.callbacks_first = callbacks_first
        self.clock = clock
        self.invalid, self.unsubscribed, self.not_mobile = set(invalid), set(unsubscribed), set(not_mobile)
        self.landlines, self.unreachable, self.machines = set(landlines), set(unreachable), set(machines)
        self.switches = Switches()
        self.requests: list[Received] = []
        self.messages: dict[str, dict] = {}
        self.calls: dict[str, dict] = {}
        self.callbacks = Callbacks(auth_token, callback_delay)
        self._lock, self._stopping = threading.Lock(), threading.Event()
        self._server: _Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeTwilio:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-twilio", daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop answering: the port closes and kept-alive connections are cut, so clients see refusals."""
        self._stopping.set()
        self._server.shutdown()
        self._server.cut_connections()
        self._server.server_close()
        self.callbacks.close()

    def send_inbound(self, to_url: str, From: str, To: str, Body: str) -> tuple[int, str]:  # noqa: N803 - Twilio's names
        """A patient's text arrives: post Twilio's signed inbound-SMS webhook; return (status, body)."""
        sid = "SM" + uuid.uuid4().hex
        params = {"ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "", "FromZip": "",
                  "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "", "Body": Body,
                  "FromCountry": "US", "To": To, "ToZip": "", "NumSegments": "1", "MessageSid": sid,
                  "AccountSid": self.account_sid, "From": From, "ApiVersion": API_VERSION}
        return self.callbacks.post(to_url, params)

    def press(self, gather_url: str, call_sid: str, digits: str) -> tuple[int, str]:
        """The callee presses keys during a <Gather>: post its signed action request; return (status, body)."""
        params = {**self._call_params(self.calls[call_sid], "in-progress"), "Digits": digits, "FinishedOnKey": ""}
        return self.callbacks.post(gather_url, params)

    def handle(self, path: str, authorization: str, form: dict[str, list[str]],
               method: str = "POST") -> tuple[int, dict, dict]:
        match = PATH.fullmatch(path.split("?")[0])
        if not match:
            return (*error(20404), {})
        if not self._authorised(authorization, match[1]):
            return (*error(20003), {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        with self._lock:
            fault = next((name for name in ("hang", "rate_limited", "server_error") if getattr(self.switches, name)), None)
            if fault:
                setattr(self.switches, fault, getattr(self.switches, fault) - 1)
        if fault == "rate_limited":
            return (*error(20429), {"Retry-After": str(self.switches.retry_after)})
        if fault == "server_error":
            return (*error(20500 if self.switches.server_status == 500 else 20503), {})
        if method == "GET":
            status, body = 200, self._list(path, form, match[2])
        else:
            one = {name: values[-1] for name, values in form.items()}
            status, body = self._message(one) if match[2] == "Messages" else self._call(one, form)
        if fault == "hang":
            self._stopping.wait(self.switches.hang_seconds)
        return status, body, {}

    def _list(self, path: str, query: dict[str, list[str]], resource: str = "Messages") -> dict:
        """Twilio's message or call list: newest first, filtered by To, From and DateSent / StartTime; one page."""
        one = {name: values[-1] for name, values in query.items()}
        moment, items = ("date_sent", self.messages) if resource == "Messages" else ("start_time", self.calls)
        param = "DateSent" if resource == "Messages" else "StartTime"
        after, before = _moment(one.get(param + ">")), _moment(one.get(param + "<"))
        on = _moment(one.get(param))
        found = []
        for message in list(items.values()):
            if one.get("To") not in (None, message["to"]) or one.get("From") not in (None, message["from"]):
                continue
            if after or before or on:
                sent = parsedate_to_datetime(message[moment]) if message.get(moment) else None
                if sent is None or (after and sent < after) or (before and sent > before) or (
                        on and sent.date() != on.date()):
                    continue
            found.append(message)
        found.sort(key=lambda m: parsedate_to_datetime(m["date_created"]), reverse=True)
        size = max(1, min(1000, int(one["PageSize"]) if one.get("PageSize", "").isdigit() else 50))
        uri = path
        return {"first_page_uri": uri, "end": max(0, min(size, len(found)) - 1), "previous_page_uri": None,
                resource.lower(): found[:size], "uri": uri, "page_size": size, "start": 0, "next_page_uri": None,
                "page": 0}

    def _now(self) -> str:
        return rfc2822(self.clock.now().timestamp() if self.clock else None)

    def _authorised(self, authorization: str, account: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return scheme == "Basic" and (user, password, account) == (self.account_sid, self.auth_token, self.account_sid)

    def _message(self, form: dict[str, str]) -> tuple[int, dict]:
        to = form.get("To", "")
        if not to:
            return error(21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return error(21603)
        if not form.get("Body") and not form.get("MediaUrl"):
            return error(21602)
        if to in self.invalid or not E164.fullmatch(to):
            return error(21211, to=to)
        if to in self.unsubscribed:
            return error(21610)
        if to in self.not_mobile:
            return error(21614, to=to)
        sid, service = "SM" + uuid.uuid4().hex, form.get("MessagingServiceSid")
        body = message_json(self.account_sid, sid, form, "accepted" if service else "queued", self.sender)
        self.messages[sid] = body
        if self.clock:
            body["date_created"] = body["date_updated"] = self._now()
        code = "30006" if to in self.landlines else "30003" if to in self.unreachable else None
        body_now, steps = dict(body), (["queued"] if service else []) + ["sent", "undelivered" if code else "delivered"]
        self.messages[sid] = dict(body, status=steps[-1], error_code=int(code) if code else None,
                                  date_sent=body["date_created"])
        if url := form.get("StatusCallback"):
            params = {"SmsSid": sid, "MessageSid": sid, "AccountSid": self.account_sid, "From": body["from"],
                      "To": to, "ApiVersion": API_VERSION, **({"MessagingServiceSid": service} if service else {})}
            for step in steps:
                extra = {"ErrorCode": code} if step == "undelivered" else {}
                self._callback(url, {**params, "SmsStatus": step, "MessageStatus": step, **extra})
        return 201, body_now

    def _call(self, form: dict[str, str], lists: dict[str, list[str]]) -> tuple[int, dict]:
        to = form.get("To", "")
        if not to or to in self.invalid or not E164.fullmatch(to):
            return error(21211, to=to)
        if not form.get("Url") and not form.get("Twiml"):
            return error(21205)
        sid = "CA" + uuid.uuid4().hex
        body = call_json(self.account_sid, sid, form)
        if self.clock:
            body["date_created"] = body["date_updated"] = self._now()
        # the call as the list shows it later: it started at once and has ended
        self.calls[sid] = dict(body, start_time=body["date_created"], end_time=body["date_created"], status="completed",
                               duration="21")
        body = self.calls[sid] | {"start_time": None, "end_time": None, "status": "queued", "duration": None}
        if form.get("MachineDetection"):
            body["answered_by"] = self.calls[sid]["answered_by"] = "machine_end_beep" if to in self.machines else "human"
        if url := form.get("StatusCallback"):
            wanted = set(lists.get("StatusCallbackEvent") or ["completed"])
            for sequence, event in enumerate(e for e in CALL_EVENTS if e in wanted):
                params = {**self._call_params(body, CALL_EVENTS[event]), "SequenceNumber": str(sequence)}
                if event in ("answered", "completed") and body["answered_by"]:
                    params["AnsweredBy"] = body["answered_by"]
                if event == "completed":
                    params.update(CallDuration="21", Duration="1")
                self._callback(url, params)
        return 201, dict(body, answered_by=None)

    def _callback(self, url: str, params: dict[str, str]) -> None:
        if self.callbacks_first:
            self.callbacks.post(url, params)
        else:
            self.callbacks.enqueue(url, params)

    def _call_params(self, call: dict, status: str) -> dict[str, str]:
        return {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": call["sid"], "CallStatus": status,
                "Called": call["to"], "Caller": call["from"], "Direction": "outbound-api", "From": call["from"],
                "To": call["to"], "Timestamp": rfc2822(), "CallbackSource": "call-progress-events"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTwilio

    def __init__(self, *args) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__(*args)

    def process_request(self, request, client_address) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a hanging request: nothing to report

    def cut_connections(self) -> None:
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the twilio client's pooled transport expects
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body leave at once

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self._answer("POST", parse_qs(raw, keep_blank_values=True))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer("GET", parse_qs(urlsplit(self.path).query, keep_blank_values=True))

    def _answer(self, method: str, form: dict[str, list[str]]) -> None:
        fake = self.server.fake
        fake.requests.append(Received(method, self.path, form, dict(self.headers.items())))
        status, body, headers = fake.handle(self.path, self.headers.get("Authorization", ""), form, method)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def finish(self) -> None:
        super().finish()
        self.server.connections.discard(self.request)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the request line can hold numbers: no PHI on stderr
        pass


def _moment(value: str | None) -> datetime | None:
    """A DateSent filter value: ``YYYY-MM-DD`` (midnight UTC) or ``YYYY-MM-DDTHH:MM:SSZ``."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
