"""The web layer every vitalsync web app shares (the console, the webhook receiver; the portal next):
pure ASGI middleware and the uvicorn server they run on.

    app = harden(starlette_app, Limits(max_body=64 * 1024, trusted_proxies=("10.0.0.5",)), HEADERS)
    served = serve(app, "127.0.0.1", 8089)   # a started uvicorn server in a background thread
    served.stop()

- A request body is counted as its bytes arrive: past ``max_body`` (or a Content-Length above it)
  the client gets 413 and the connection is closed, without the rest being read; a body that takes
  longer than ``body_seconds`` gets 408. The app never sees more than ``max_body`` bytes.
- A client that goes away in the middle of its body costs one log line, not a traceback. The log
  lines carry the outcome and a byte count, never the path (it may name a patient's key).
- Every response carries the security headers (404s, 405s and static files too), and HSTS when the
  request came over https (directly, or as a trusted proxy's ``X-Forwarded-Proto`` says) or the
  app's public address is https.
- ``X-Forwarded-For`` / ``-Proto`` are believed only from ``trusted_proxies`` (addresses or
  networks); from anyone else they are ignored, so a client cannot choose its own address.
- A connection must send its request's head within ``HEAD_SECONDS`` of connecting (or of the
  request's first byte), and an idle keep-alive connection is closed after ``KEEP_ALIVE_SECONDS``.
- An exception in a request becomes one log line — its type and a random request id — and a bare
  500 showing the same id (:class:`GuardErrors`, inside the app's Starlette); uvicorn's own loggers
  go through vitalsync's allow-listed log (:func:`vitalsync.core.log.capture_everything`), so no
  traceback, whose text may name a patient's number or message, reaches a terminal or journal.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import uuid

import structlog
import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vitalsync.core import log as logs

log = structlog.get_logger("vitalsync.web")
HEAD_SECONDS = 10  #: to send a request line and headers (a slow-headers client is closed after this)
BODY_SECONDS = 30  #: to send a whole request body (ours are at most a few hundred KB)
KEEP_ALIVE_SECONDS = 5  #: an idle connection between requests
HSTS = "max-age=31536000"


@dataclass(frozen=True)
class Limits:
    """What one app accepts."""

    max_body: int  #: bytes
    body_seconds: float = BODY_SECONDS
    trusted_proxies: tuple[str, ...] = ()  #: addresses or networks whose X-Forwarded-* headers are believed
    https: bool = False  #: the app's public address is https: HSTS on every response


class BodyRefused(Exception):
    """Raised into the app when its request body went past the limit or the time; the answer has gone out."""


def harden(app, limits: Limits, headers: dict[str, str]):
    """``app`` behind the shared middleware: trusted proxy headers, security headers, body limits."""
    app = SecurityHeaders(BodyLimit(app, limits.max_body, limits.body_seconds), headers, hsts=limits.https)
    if limits.trusted_proxies:
        app = ProxyHeadersMiddleware(app, trusted_hosts=list(limits.trusted_proxies))
    return app


class SecurityHeaders:
    """Adds ``headers`` (those the app did not set itself) to every response; HSTS over https."""

    def __init__(self, app, headers: dict[str, str], *, hsts: bool = False) -> None:
        self.app, self.hsts = app, hsts
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self.headers + ([(b"strict-transport-security", HSTS.encode())]
                                if self.hsts or scope.get("scheme") == "https" else [])

        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((n, v) for n, v in extra if n not in present)]}
            await send(message)
        await self.app(scope, receive, send_secured)


class BodyLimit:
    """Counts a request's body as it arrives; past ``max_body`` bytes or ``seconds``, answers 413 / 408 itself."""

    def __init__(self, app, max_body: int, seconds: float = BODY_SECONDS) -> None:
        self.app, self.max_body, self.seconds = app, max_body, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            log.info("request_refused", outcome="too_large", count=int(length))
            return await _answer(send, 413, f"The request is too large (at most {self.max_body} bytes).")
        state = {"read": 0, "complete": False, "refused": None, "aborted": False, "started": False}
        deadline = asyncio.get_running_loop().time() + self.seconds

        async def refuse(status: int, reason: str) -> BodyRefused:
            state["refused"] = reason
            if not state["started"]:
                state["started"] = True
                text = (f"The request is too large (at most {self.max_body} bytes)." if status == 413
                        else "The request took too long to arrive.")
                await _answer(send, status, text)
            return BodyRefused(reason)

        async def counted_receive():
            if state["complete"]:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise await refuse(408, "too_slow") from None
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.max_body:
                    raise await refuse(413, "too_large")
                state["complete"] = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                state["aborted"] = True
            return message

        async def send_once(message) -> None:
            if state["refused"]:  # our 413 / 408 went out; whatever the app says after is dropped
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                if not state["complete"]:  # answered before its body was read: the rest is not worth waiting for
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted_receive, send_once)
        except Exception as exc:
            if state["refused"]:
                log.info("request_refused", outcome=state["refused"], count=state["read"])
            elif state["aborted"]:
                log.info("request_aborted", count=state["read"], error_type=type(exc).__name__)
            else:
                raise


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1").strip()
    return None


async def _answer(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class HeadDeadline(HttpToolsProtocol):
    """uvicorn's httptools connection, closed when a request's head does not arrive within HEAD_SECONDS
    (uvicorn itself waits for ever on a connection that sends nothing, or its headers a byte at a time)."""

    head_seconds: float = HEAD_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("connection_closed", outcome="head_too_slow")
            self.transport.close()


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
    """Start uvicorn on ``host:port`` (0: any free port) in a daemon thread; return once it listens.

    uvicorn's own proxy-header handling is off (it would believe any X-Forwarded-For from
    127.0.0.1): :func:`harden` applies the configured trusted proxies instead."""
    logs.capture_everything()  # uvicorn's loggers into ours: its own handlers would print tracebacks
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", proxy_headers=False,
        http=HeadDeadline, timeout_keep_alive=KEEP_ALIVE_SECONDS, log_config=None))
    thread = threading.Thread(target=lambda: run_loop(server.serve()), name=f"vitalsync-web-{port}", daemon=True)
    thread.start()
    end = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            server.should_exit = True
            raise RuntimeError(f"the web server did not start on {host}:{port}")
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


class GuardErrors:
    """Pure ASGI middleware inside Starlette's own error middleware (which re-raises after answering, so
    uvicorn would log the exception with its traceback: a database error's text names the statement's
    values)::

        Starlette(routes=..., middleware=[Middleware(GuardErrors, source="webhooks")])

    Costs one wrapped ``send`` per request, nothing else until something fails."""

    def __init__(self, app, source: str = "web") -> None:
        self.app, self.source = app, source

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except (BodyRefused, ClientDisconnect):
            raise  # a body refused or cut short: BodyLimit, outside, answered it or logs it as one short line
        except Exception as exc:  # noqa: BLE001 - logged by type only; the text may hold patient data
            request_id = uuid.uuid4().hex[:16]
            log.error("request_failed", source=self.source, request_id=request_id, error_type=type(exc).__name__)
            if started:  # the answer is under way: the server closes the connection
                return
            body = f"Something went wrong on our side (request {request_id}).\n".encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()), (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body})
