"""The webhook receiver: an ASGI app for Twilio's and SendGrid's callbacks, served by uvicorn.

    app = webhook_app(engine, config, clock, twilio_auth_token=token, sendgrid_public_key=key,
                      public_url="https://hooks.example.org")
    served = serve(app, "127.0.0.1", 8088)   # a started uvicorn server in a background thread
    served.stop()

Unsigned or forged requests get 403 and nothing is read or written; unreadable ones 400 (never 500).
Each accepted event is stored in the inbox (:mod:`vitalsync.status.inbox`) and processed in the
same transaction, committed before the answer; an event that could not be stored gets a 500, so the
provider sends it again, and one stored but not processed is left to the daemon's inbox step.
Delivery reports, the bulk of the traffic, are committed in groups (:mod:`vitalsync.status.deliveries`),
each answered once its group is committed. Repeats are harmless: each event is stored once under
its provider id (a unique key in the database), and ``transition`` never moves a message back.
An exception becomes a bare 500 and one log line with its type and a request id
(:class:`vitalsync.core.web.GuardErrors`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import is_sqlite, session
from vitalsync.core.web import GuardErrors, Limits, Served, harden, run_loop, serve  # noqa: F401  (serve, run_loop: re-exported)
from vitalsync.core.vocab import MessageStatus
from vitalsync.core.secrets import read_secret
from vitalsync.rules.kinds import MessageKind, load_kinds
from vitalsync.status import webhook_email as mail
from vitalsync.status import webhook_twilio as tw
from vitalsync.status.deliveries import Delivery, DeliveryWriter, record_deliveries
from vitalsync.status.inbox import Arrival, Processed, Taken, database_unavailable, receive, store_only
from vitalsync.status.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_events, verify_sendgrid

log = structlog.get_logger("vitalsync.webhooks")
MAX_SENDGRID_BATCH = 4 * 1024 * 1024  #: SendGrid batches by count and size; far below this in practice
WRITERS = 3  #: PostgreSQL: delivery groups written at once (SQLite has one writer)
HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


def email_delivery(event) -> Delivery | None:
    if event.status is None:
        return None
    received = event.status is MessageStatus.RECEIVED
    return Delivery(event.reference, received, "" if received else event.detail)


def process_email_event(db, context, arrival: Arrival, received_at, now) -> Processed | None:
    """The inbox step's processor for a stored SendGrid event; None while its message is unknown."""
    events = parse_events(f"[{arrival.payload}]".encode())
    delivery = email_delivery(events[0]) if events else None
    if delivery is None:
        return Processed("delivery_ignored", {"source": "sendgrid"})
    if not record_deliveries(db, [delivery], now, context.kinds)[0]:
        return None
    return Processed("delivery_recorded", {"source": "sendgrid"})


#: (provider, kind) → how a stored event is processed: the daemon's inbox step looks them up here.
PROCESSORS = {
    ("twilio", "sms_inbound"): tw.process_sms_inbound,
    ("twilio", "sms_status"): tw.process_sms_status,
    ("twilio", "voice_status"): tw.process_voice_status,
    ("twilio", "voice_gather"): tw.process_voice_gather,
    ("sendgrid", "email_event"): process_email_event,
    ("sendgrid", "email_engagement"): mail.process_email_engagement,
    ("sendgrid", "email_reply"): mail.process_email_reply,
}


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

    def take_now(arrival: Arrival, process) -> Taken:
        now = clock.now()
        try:
            return in_thread(lambda db: receive(db, arrival, process, hooks, received_at=now, now=now))
        except Exception as exc:
            if database_unavailable(exc):
                raise  # not stored: a 500, and the provider sends it again
            log.error("inbox_processing_failed", source=arrival.provider, kind=arrival.kind, error_type=type(exc).__name__)
            in_thread(lambda db: store_only(db, arrival, now))
            return Taken("pending")

    async def take(arrival: Arrival, process) -> Taken:
        return await run_in_threadpool(take_now, arrival, process)

    deliveries = DeliveryWriter(engine, clock, sqlite_lock, writers=1 if sqlite_lock else WRITERS, kinds=kinds)
    hooks = tw.Hooks(engine, config, clock, public_url, twilio_auth_token, db_work, deliveries=deliveries, take=take,
                     kinds=kinds)

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
        events = parse_events(payload)
        reports = [(delivery, event) for event in events if (delivery := email_delivery(event))]
        for event in events:  # the recipient's own acts: unsubscribe, spam report, resubscribe
            if event.event in mail.OPT_OUT_EVENTS | mail.OPT_IN_EVENTS:
                tw.logged(await take(Arrival("sendgrid", "email_engagement", event.event_id, event.payload),
                                  mail.process_email_engagement), "sendgrid", "email_engagement")
        # each event into the inbox with the delivery groups; the answer waits for all of them
        known = await asyncio.gather(*(deliveries.record(Delivery(
            d.reference, d.delivered, d.detail, Arrival("sendgrid", "email_event", e.event_id, e.payload, e.reference)))
            for d, e in reports))
        log.info("sendgrid_events", source="sendgrid", count=len(reports), matched=sum(known))
        return Response(status_code=200)

    inbound_secret = read_secret("sendgrid_inbound_secret", config.sendgrid.inbound_secret_file,
                                 key="sendgrid.inbound_secret_file", config_path=config.path, required=False)

    async def sendgrid_inbound(request: Request) -> Response:
        if not mail.authorised(inbound_secret, request.path_params.get("secret"), request.headers.get("authorization", "")):
            raise tw.Refused(403)  # checked before the body is read
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise tw.Refused(400)
        try:
            async with request.form(max_files=20, max_fields=100) as form:
                fields = {name: value for name, value in form.items() if isinstance(value, str)}
        except Exception:  # noqa: BLE001 - a body the multipart parser cannot read is the sender's fault
            raise tw.Refused(400) from None
        try:
            mail.read_inbound(fields)
        except ValueError:
            raise tw.Refused(400) from None
        tw.logged(await take(mail.inbound_arrival(fields), mail.process_email_reply), "sendgrid", "email_reply")
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
        route("/webhooks/sendgrid/inbound", sendgrid_inbound),
        route("/webhooks/sendgrid/inbound/{secret}", sendgrid_inbound),
    ], middleware=[Middleware(GuardErrors, source="webhooks")])
    return harden(app, Limits(max_body=config.webhooks.max_body_bytes), HEADERS)


def stop(served: Served) -> None:
    served.stop()
