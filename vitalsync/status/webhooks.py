"""The webhook receiver: an ASGI app for Twilio's and SendGrid's callbacks, served by uvicorn.

    app = webhook_app(engine, config, clock, twilio_auth_token=token, sendgrid_public_key=key,
                      public_url="https://hooks.example.org")
    served = serve(app, "127.0.0.1", 8088)   # a started uvicorn server in a background thread
    served.stop()

Unsigned or forged requests get 403 and nothing is read or written; unreadable ones 400 (never 500).
Each accepted request does its database work in a worker thread with its own session, committed;
delivery reports, the bulk of the traffic, are committed in groups (:mod:`vitalsync.status.deliveries`),
each answered once its group is committed.
Repeats are harmless: ``transition`` refuses the same status twice and never moves a message back;
SendGrid event ids seen lately are also skipped (in memory, per process).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import is_sqlite, session
from vitalsync.core.web import Limits, Served, harden, run_loop, serve  # noqa: F401  (serve, run_loop: re-exported)
from vitalsync.core.vocab import MessageStatus
from vitalsync.rules.kinds import MessageKind, load_kinds
from vitalsync.status import webhook_twilio as tw
from vitalsync.status.deliveries import DeliveryWriter
from vitalsync.status.record import record_delivery
from vitalsync.status.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_events, verify_sendgrid

log = structlog.get_logger("vitalsync.webhooks")
MAX_SENDGRID_BATCH = 4 * 1024 * 1024  #: SendGrid batches by count and size; far below this in practice
WRITERS = 3  #: PostgreSQL: delivery groups written at once (SQLite has one writer)
SEEN_EVENTS = 50_000  #: SendGrid event ids remembered to skip repeats
HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


class SeenEvents:
    """A bounded, thread-safe LRU of recent SendGrid event ids."""

    def __init__(self, size: int = SEEN_EVENTS) -> None:
        self.size, self._ids, self._lock = size, OrderedDict(), threading.Lock()

    def __contains__(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                self._ids.move_to_end(event_id)
                return True
            return False

    def add(self, event_ids) -> None:
        with self._lock:
            for event_id in event_ids:
                self._ids[event_id] = None
                self._ids.move_to_end(event_id)
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)


def webhook_app(engine: Engine, config: Config, clock: Clock, *, twilio_auth_token: str | None,
                sendgrid_public_key: str | None, public_url: str,
                sendgrid_tolerance: timedelta = timedelta(minutes=5),
                kinds: dict[str, MessageKind] | None = None) -> Starlette:
    """The receiver. A provider whose secret is None (not configured) gets 403 on each of its routes.

    ``kinds`` (by default the config's) give the fallback order after a permanent failure and the
    text a call repeats."""
    if kinds is None:
        kinds = load_kinds(config.message_kinds.enabled,
                           config.message_kinds.directory and config.relative(config.message_kinds.directory))
    sqlite_lock = threading.Lock() if is_sqlite(engine) else None  # SQLite: one writer; PostgreSQL: row locks

    def in_thread(work):
        with session(engine) as db:
            if sqlite_lock is None:
                result = work(db)
                db.commit()
                return result
            with sqlite_lock:
                result = work(db)
                db.commit()
                return result

    async def db_work(work):
        return await run_in_threadpool(in_thread, work)

    hooks = tw.Hooks(engine, config, clock, public_url, twilio_auth_token, db_work, kinds=kinds,
                     deliveries=DeliveryWriter(engine, clock, sqlite_lock, writers=1 if sqlite_lock else WRITERS,
                                               kinds=kinds))
    seen = SeenEvents()

    async def sendgrid_events(request: Request) -> Response:
        if not sendgrid_public_key or tw.too_long(request, MAX_SENDGRID_BATCH):
            raise tw.Refused(403)
        payload = await request.body()
        if len(payload) > MAX_SENDGRID_BATCH or not verify_sendgrid(
                sendgrid_public_key, payload, request.headers.get(SIGNATURE_HEADER, ""),
                request.headers.get(TIMESTAMP_HEADER, ""), now=clock.now(), tolerance=sendgrid_tolerance):
            raise tw.Refused(403)
        try:
            if not isinstance(json.loads(payload), list):
                raise tw.Refused(400)
        except (ValueError, UnicodeDecodeError):
            raise tw.Refused(400) from None
        events = [e for e in parse_events(payload) if e.status is not None and e.event_id not in seen]

        def work(db):
            return sum(record_delivery(db, e.reference, e.status is MessageStatus.RECEIVED, e.at, kinds=kinds,
                                       source="provider", detail="" if e.status is MessageStatus.RECEIVED else e.detail)
                       for e in events)

        moved = await db_work(work) if events else 0
        seen.add(e.event_id for e in events)  # only once committed: a failed batch is taken again on retry
        log.info("sendgrid_events", source="sendgrid", count=len(events), changed=moved)
        return Response(status_code=200)

    def route(path: str, handler) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except tw.Refused as refused:
                log.info("webhook_refused", source=path.rsplit("/", 2)[-2], outcome=refused.status)
                return Response(status_code=refused.status)
        return Route(path, endpoint, methods=["POST"])

    def twilio(handler):
        return lambda request: handler(hooks, request)

    app = Starlette(routes=[
        route("/webhooks/twilio/sms/status", twilio(tw.sms_status)),
        route("/webhooks/twilio/sms/inbound", twilio(tw.sms_inbound)),
        route("/webhooks/twilio/voice/status", twilio(tw.voice_status)),
        route(tw.GATHER_PATH, twilio(tw.voice_gather)),
        route("/webhooks/sendgrid/events", sendgrid_events),
    ])
    return harden(app, Limits(max_body=config.webhooks.max_body_bytes), HEADERS)


def stop(served: Served) -> None:
    served.stop()
