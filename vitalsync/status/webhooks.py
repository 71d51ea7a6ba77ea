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

import asyncio
import json
import threading
import time
from collections import OrderedDict
from datetime import timedelta

import structlog
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import is_sqlite, session
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

    return Starlette(routes=[
        route("/webhooks/twilio/sms/status", twilio(tw.sms_status)),
        route("/webhooks/twilio/sms/inbound", twilio(tw.sms_inbound)),
        route("/webhooks/twilio/voice/status", twilio(tw.voice_status)),
        route(tw.GATHER_PATH, twilio(tw.voice_gather)),
        route("/webhooks/sendgrid/events", sendgrid_events),
    ])


class Served:
    """A uvicorn server running in a background thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve(app, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0) -> Served:
    """Start uvicorn on ``host:port`` (0: any free port) in a daemon thread; return once it listens."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=lambda: run_loop(server.serve()), name="vitalsync-webhooks", daemon=True)
    thread.start()
    end = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            server.should_exit = True
            raise RuntimeError(f"the webhook receiver did not start on {host}:{port}")
        time.sleep(0.01)
    return Served(server, thread)


def run_loop(main) -> None:
    """``asyncio.run`` on uvloop's event loop where it is installed (Linux and macOS): its C loop and
    transports roughly halve the event loop's share of each request (bench/dispatch's webhooks step)."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows: the standard loop
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def stop(served: Served) -> None:
    served.stop()
