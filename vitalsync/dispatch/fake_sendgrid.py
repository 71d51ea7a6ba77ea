"""A local SendGrid on 127.0.0.1: v3 mail send, and Event Webhook batches signed as SendGrid signs them.

It speaks the wire format the real client expects (``202`` with ``X-Message-Id``; errors as
``{"errors": [{"message", "field", "help"}]}``), answers with the failures a sender must survive
(a wrong key, an invalid address, 429 with ``X-RateLimit-Reset``, 5xx, a request that hangs) and
plays the events: ``processed``, ``delivered`` and ``open``; ``bounce`` for addresses on the bounce
list; ``dropped`` for those on the dropped list. Batches are POSTed to ``event_url`` with an ECDSA
P-256 / SHA-256 signature over ``timestamp + body``; :attr:`FakeSendGrid.public_key` is the key a
receiver verifies with, base64 DER as SendGrid's settings page shows it.

The Email Activity API is there too: ``GET /v3/messages?query=…&limit=…`` answers
``{"messages": [{"from_email", "msg_id", "subject", "to_email", "status", "opens_count",
"clicks_count", "last_event_time"}]}`` for the query clauses a reconciler uses, joined by AND:
``msg_id="…"``, ``msg_id LIKE '…%'``, ``to_email="…"``, ``unique_args['name']="…"`` and
``last_event_time BETWEEN TIMESTAMP '…' AND TIMESTAMP '…'``; anything else is a 400, as a query
SendGrid cannot parse. ``activity = False`` answers 403, as an account without the add-on.

    with FakeSendGrid("SG.key", event_url=receiver_url, bounce={"gone@example.com"}) as fake:
        sender = SendGridEmail("SG.key", "clinic@example.com", base_url=fake.url)
        ...
        fake.post_events()
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vitalsync.core.clock import Clock, SystemClock
from vitalsync.dispatch.fake_sendgrid_mail import error, mail_problems

_CLAUSE = re.compile(
    r"""\s*(?:(?P<field>msg_id|to_email|from_email|subject)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"
    |msg_id\s+LIKE\s+'(?P<prefix>[^'%]*)%'
    |unique_args\['(?P<arg>[^']+)'\]\s*=\s*"(?P<arg_value>(?:[^"\\]|\\.)*)"
    |last_event_time\s+BETWEEN\s+TIMESTAMP\s+'(?P<start>[^']+)'\s+AND\s+TIMESTAMP\s+'(?P<end>[^']+)')\s*""",
    re.VERBOSE)
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@dataclass(frozen=True)
class Received:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeSendGrid:
    def __init__(self, api_key: str = "SG.fake-key", *, event_url: str | None = None, bounce=(), invalid=(),
                 dropped=(), opens: bool = True, auto_events: bool = False, clock: Clock | None = None) -> None:
        self.api_key, self.event_url, self.opens, self.auto_events = api_key, event_url, opens, auto_events
        self.bounce, self.invalid, self.dropped = set(bounce), set(invalid), set(dropped)
        self.clock = clock or SystemClock()
        self.status: int | None = None  #: answer every send with this status (429, 500, 503 …) when set
        self.rate_limit_reset = 30  #: seconds until X-RateLimit-Reset, on a 429
        self.hang = False  #: read each send, then answer nothing until stopped
        self.activity = True  #: the account has the Email Activity add-on (else GET /v3/messages is 403)
        self.activity_status: int | None = None  #: answer Email Activity queries with this status when set
        self.stored: list[dict[str, Any]] = []  #: what the Email Activity API knows, one row per recipient
        self.requests: list[Received] = []
        self.pending: list[dict[str, Any]] = []  #: events waiting for the next batch
        self.batches: list[bytes] = []  #: event batches delivered to event_url
        self._private = ec.generate_private_key(ec.SECP256R1())
        der = self._private.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()
        self._lock, self._stopping = threading.Lock(), threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeSendGrid:
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-sendgrid", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sign(self, payload: bytes, timestamp: str) -> str:
        """The signature SendGrid puts in X-Twilio-Email-Event-Webhook-Signature."""
        der = self._private.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(der).decode()

    def post_events(self) -> int | None:
        """POST the pending events as one signed batch; the receiver's status, or None if unreachable.

        Events the receiver did not take (no answer, or not 2xx) stay pending, as SendGrid retries them.
        """
        with self._lock:
            batch, self.pending = self.pending, []
        if not batch or not self.event_url:
            with self._lock:
                self.pending[:0] = batch
            return None
        payload = json.dumps(batch, separators=(",", ":")).encode()
        timestamp = str(int(self.clock.now().timestamp()))
        request = urllib.request.Request(self.event_url, data=payload, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "SendGrid Event API",
            SIGNATURE_HEADER: self.sign(payload, timestamp), TIMESTAMP_HEADER: timestamp})
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = None
        if status is not None and 200 <= status < 300:
            self.batches.append(payload)
        else:
            with self._lock:
                self.pending[:0] = batch
        return status

    def engage(self, email: str, event: str, **extra: Any) -> None:
        """The recipient acts on the last email to ``email``: ``unsubscribe``, ``group_unsubscribe``,
        ``group_resubscribe`` or ``spamreport`` (its event waits for the next batch, with the email's custom args)."""
        with self._lock:
            row = next(row for row in reversed(self.stored) if row["to_email"] == email)
            self.pending.append({"email": email, "timestamp": int(self.clock.now().timestamp()), "event": event,
                                 "sg_event_id": secrets.token_urlsafe(18), "sg_message_id": row["msg_id"],
                                 **row["unique_args"], **extra})

    def _accept(self, mail: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)[:22]
        now = int(self.clock.now().timestamp())
        common_args = {str(k): str(v) for k, v in (mail.get("custom_args") or {}).items()}
        for p_index, personalization in enumerate(mail["personalizations"]):
            own = personalization.get("custom_args")
            args = {**common_args, **({str(k): str(v) for k, v in own.items()} if isinstance(own, dict) else {})}
            for r_index, recipient in enumerate(personalization["to"]):
                email = recipient["email"]
                base = {"email": email, "timestamp": now, "smtp-id": f"<{message_id}@ismtpd0001p1iad2.sendgrid.net>",
                        "sg_message_id": f"{message_id}.filterdrecv-{secrets.token_hex(4)}-1-{p_index}-{r_index}.0",
                        "category": list(mail.get("categories") or []), **args}
                story = self._story(email)
                for event, extra in story:
                    self.pending.append({**base, "event": event, "sg_event_id": secrets.token_urlsafe(18), **extra})
                last = story[-1][0]
                self.stored.append({
                    "from_email": mail["from"]["email"], "msg_id": base["sg_message_id"], "to_email": email,
                    "subject": personalization.get("subject") or mail.get("subject", ""),
                    "status": "delivered" if last in ("delivered", "open") else "not_delivered",
                    "opens_count": int(last == "open"), "clicks_count": 0, "unique_args": args,
                    "last_event_time": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        if self.auto_events and self.event_url:
            threading.Thread(target=self.post_events, daemon=True).start()
        return message_id

    def activity_query(self, query: str, limit: int) -> tuple[int, dict[str, Any]]:
        """What ``GET /v3/messages`` answers: (HTTP status, body)."""
        clauses, position = [], 0
        while position < len(query):
            match = _CLAUSE.match(query, position)
            if not match:
                return 400, {"errors": [error("invalid query", "query")]}
            clauses.append(match)
            position = match.end()
            joiner = re.match(r"AND\s+", query[position:])
            if joiner:
                position += joiner.end()
            elif position < len(query):
                return 400, {"errors": [error("invalid query", "query")]}
        with self._lock:
            rows = list(self.stored)
        found = [row for row in rows if all(_matches(row, clause) for clause in clauses)]
        found.sort(key=lambda row: row["last_event_time"], reverse=True)
        return 200, {"messages": [{k: v for k, v in row.items() if k != "unique_args"}
                                  for row in found[:max(1, min(limit, 1000))]]}

    def _story(self, email: str) -> list[tuple[str, dict[str, Any]]]:
        if email in self.dropped:
            return [("dropped", {"reason": "Unsubscribed Address"})]
        processed = ("processed", {})
        if email in self.bounce:
            return [processed, ("bounce", {"reason": "550 5.1.1 The email account that you tried to reach does not "
                                                    "exist.", "status": "5.1.1", "type": "bounce",
                                           "bounce_classification": "Invalid Address"})]
        story = [processed, ("delivered", {"response": "250 2.0.0 OK", "ip": "127.0.0.1", "tls": 1})]
        return story + ([("open", {"useragent": "Mozilla/5.0", "ip": "127.0.0.1"})] if self.opens else [])


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSendGrid
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests and the demo log their own way
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake = self.fake
        with fake._lock:
            fake.requests.append(Received("POST", self.path, dict(self.headers), body))
        if self.path != "/v3/mail/send":
            return self._answer(404, {"errors": [error("resource not found")]})
        if self.headers.get("Authorization") is None:
            return self._answer(401, {"errors": [error("authorization required")]})
        if not secrets.compare_digest(self.headers["Authorization"].encode(), f"Bearer {fake.api_key}".encode()):
            return self._answer(401, {"errors": [error("The provided authorization grant is invalid, expired, "
                                                       "or revoked")]})
        if fake.hang:
            fake._stopping.wait(60)
            self.close_connection = True
            return
        if fake.status == 429:
            reset = int(fake.clock.now().timestamp()) + fake.rate_limit_reset
            return self._answer(429, {"errors": [error("too many requests")]}, {
                "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
        if fake.status is not None:
            return self._answer(fake.status, {"errors": [error("The server encountered an unexpected error.")]})
        try:
            mail = json.loads(body)
        except ValueError:
            mail = None
        problems = mail_problems(mail, fake.invalid)
        if problems:
            return self._answer(400, {"errors": problems})
        with fake._lock:
            message_id = fake._accept(mail)
        self._answer(202, None, {"X-Message-Id": message_id})

    def do_GET(self) -> None:
        fake = self.fake
        with fake._lock:
            fake.requests.append(Received("GET", self.path, dict(self.headers), b""))
        url = urlsplit(self.path)
        if url.path != "/v3/messages":
            return self._answer(404, {"errors": [error("resource not found")]})
        if not secrets.compare_digest((self.headers.get("Authorization") or "").encode(), f"Bearer {fake.api_key}".encode()):
            return self._answer(401, {"errors": [error("authorization required")]})
        if not fake.activity:
            return self._answer(403, {"errors": [error("access forbidden")]})
        if fake.activity_status is not None:
            return self._answer(fake.activity_status, {"errors": [error("The server encountered an unexpected error.")]})
        params = {name: values[-1] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 10
        self._answer(*fake.activity_query(params.get("query", ""), limit))

    def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _matches(row: dict[str, Any], clause: re.Match) -> bool:
    unquote = lambda value: re.sub(r"\\(.)", r"\1", value)  # noqa: E731
    if clause["field"]:
        return str(row[clause["field"]]) == unquote(clause["value"])
    if clause["prefix"] is not None:
        return row["msg_id"].startswith(clause["prefix"])
    if clause["arg"]:
        return row["unique_args"].get(clause["arg"]) == unquote(clause["arg_value"])
    return clause["start"] <= row["last_event_time"] <= clause["end"]
