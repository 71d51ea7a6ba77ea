"""The console's ASGI app: sessions, CSRF, roles and the audit log around every page.

    app = console_app(engine, config, clock, secret)   # serve with uvicorn (vitalsync.status.webhooks.serve)

Anonymous requests are sent to the login page. Every POST must carry its form's CSRF token (the
session's; on the login form an HMAC of a cookie nonce), else 403. Every value a request carries
goes through :mod:`vitalsync.console.values` (a value a page cannot use is a 400 with a message).
Pages are server-rendered, no JavaScript. The shared web layer (:mod:`vitalsync.core.web`) wraps
the app: body limits, security headers on every response (framing and caching forbidden; HSTS
over https) and the trusted proxies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vitalsync.console import accounts, values
from vitalsync.console.access import may_open, scope_of
from vitalsync.console.render import environment
from vitalsync.console.tables import AuditEntry, StaffSession, StaffUser
from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import session
from vitalsync.core.web import GuardErrors, Limits, harden

log = structlog.get_logger("vitalsync.console")
SESSION_COOKIE, LOGIN_COOKIE = "vs_session", "vs_login"
HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"}


@dataclass
class Console:
    """What every page needs: the database, the config, the clock, the templates."""

    engine: Engine
    config: Config
    clock: Clock
    secret: bytes

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.config.schedule.timezone)
        self.templates = environment(self.zone)
        self.limiter = RateLimiter(self.config.console.login_attempts_per_minute)
        #: argon2 takes ~64 MB a check: a burst of logins waits here (costing nothing) instead of all at once
        self.password_checks = asyncio.Semaphore(self.config.console.password_checks_at_once)

    def audit(self, user: StaffUser | None, action: str, target: str = "", detail: str = "", address: str = "") -> None:
        with session(self.engine) as db:
            db.add(AuditEntry(at=self.clock.now(), user_id=user.id if user else None, action=action, target=target,
                              detail=detail, address=address))
            db.commit()


@dataclass
class Page:
    """One request as a page handler sees it."""

    console: Console
    request: Request
    user: StaffUser
    sess: StaffSession
    form_items: list[tuple[str, str]]  #: the posted fields in order, repeated names included

    @property
    def form(self) -> dict[str, str]:
        return dict(self.form_items)

    @property
    def query(self):
        return self.request.query_params

    @property
    def scope(self):
        return scope_of(self.user)

    @property
    def now(self) -> datetime:
        return self.console.clock.now()

    def render(self, template: str, status: int = 200, **values) -> HTMLResponse:
        html = self.console.templates.get_template(template).render(
            user=self.user, csrf=self.sess.csrf, may_open=lambda page: may_open(self.user, page), path=self.request.url.path,
            **values)
        return HTMLResponse(html, status_code=status)

    @property
    def address(self) -> str:
        return client_address(self.request)

    def audit(self, action: str, target: str = "", detail: str = "") -> None:
        self.console.audit(self.user, action, target, detail, self.address)


class RateLimiter:
    """At most ``per_minute`` login attempts per client address in any sliding minute (in memory)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute, self._seen, self._lock = per_minute, defaultdict(deque), threading.Lock()

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            seen = self._seen[address]
            while seen and seen[0] < now - 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return False
            seen.append(now)
            return True


def client_address(request: Request) -> str:
    """The client's IP address: the peer's, or a trusted proxy's X-Forwarded-For (see core.web.harden)."""
    return request.client.host if request.client else ""


def guarded(page: str | None):
    """Wrap a page handler ``fn(page: Page) -> Response``: a session, the role's access, on POST the CSRF
    token, and every value checked (:mod:`~vitalsync.console.values`: a BadValue anywhere is a 400)."""
    def wrap(fn):
        async def endpoint(request: Request) -> Response:
            form = await _form(request)
            return await run_in_threadpool(_run, request, form, page, fn)
        endpoint.__name__ = fn.__name__
        return endpoint
    return wrap


def _run(request: Request, form_items: list, page: str | None, fn) -> Response:
    try:
        return _page(request, form_items, page, fn)
    except values.BadValue as exc:
        return Response(str(exc), status_code=400, media_type="text/plain")


def _page(request: Request, form_items: list, page: str | None, fn) -> Response:
    values.check_request([*request.query_params.multi_items(), *form_items,
                          *((k, str(v)) for k, v in request.path_params.items())])
    form = dict(form_items)
    console: Console = request.app.state.console
    found = accounts.session_user(console.engine, request.cookies.get(SESSION_COOKIE), console.clock.now(),
                                  console.config.console)
    if found is None:
        if request.method == "POST":
            return Response("Your session has ended; log in again.", status_code=403)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    user, sess = found
    if request.method == "POST" and not hmac.compare_digest(form.get("csrf", ""), sess.csrf):
        log.warning("csrf_refused", user_id=user.id)
        return Response("The form's security token is missing or stale; reload the page.", status_code=403)
    view = Page(console, request, user, sess, form_items)
    if page and not may_open(user, page):
        view.audit("refused", target=page)
        return view.render("denied.html", status=403)
    return fn(view)


async def _form(request: Request) -> list[tuple[str, str]]:
    if request.method != "POST":
        return []
    body = await request.body()
    return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def _login_token(console: Console, nonce: str) -> str:
    return hmac.new(console.secret, nonce.encode(), hashlib.sha256).hexdigest()


async def login(request: Request) -> Response:
    console: Console = request.app.state.console
    form_items = await _form(request)
    try:
        values.check_request([*request.query_params.multi_items(), *form_items])
    except values.BadValue as exc:
        return Response(str(exc), status_code=400, media_type="text/plain")
    if request.method != "POST":
        return await run_in_threadpool(_login, console, request, dict(form_items))
    async with console.password_checks:
        return await run_in_threadpool(_login, console, request, dict(form_items))


def _login(console: Console, request: Request, form: dict) -> Response:
    target = request.query_params.get("next", "/today")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:  # only our own pages
        target = "/today"
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    error, status = "", 200
    if request.method == "POST":
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie or not hmac.compare_digest(form.get("csrf", ""), _login_token(console, cookie)):
            return Response("The form's security token is missing or stale; reload the page.", status_code=403)
        if not console.limiter.allow(client_address(request) or "?"):
            error, status = "Too many attempts from this computer. Wait a minute and try again.", 429
        else:
            try:
                done = accounts.authenticate(console.engine, form.get("name", ""), form.get("password", ""),
                                             console.clock.now(), console.config.console, address=client_address(request))
            except accounts.LockedOut:
                error, status = ("Too many wrong passwords: this account is locked for "
                                 f"{console.config.console.lockout_minutes} minutes."), 403
            except accounts.LoginRefused:
                error, status = "Wrong name or password.", 401
            else:
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(SESSION_COOKIE, done.token, max_age=console.config.console.session_minutes * 60,
                                    httponly=True, secure=console.config.console.secure_cookies, samesite="strict")
                response.delete_cookie(LOGIN_COOKIE)
                return response
    html = console.templates.get_template("login.html").render(
        user=None, csrf=_login_token(console, nonce), error=error, next=target, path="/login", may_open=lambda p: False)
    response = HTMLResponse(html, status_code=status)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True,
                        secure=console.config.console.secure_cookies, samesite="strict")
    return response


@guarded(None)
def logout(page: Page) -> Response:
    accounts.end_session(page.console.engine, page.request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def console_app(engine: Engine, config: Config, clock: Clock, secret: str):
    """The console as an ASGI app, behind the shared web layer (body limit, headers, trusted proxies)."""
    from vitalsync.console import group_send, kinds_page, pages

    routes = [
        Route("/", lambda request: RedirectResponse("/today", status_code=303)),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        *pages.ROUTES,
        *kinds_page.ROUTES,
        *group_send.ROUTES,
        Mount("/static", StaticFiles(directory=str(files("vitalsync.console") / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(GuardErrors, source="console")])
    app.state.console = Console(engine, config, clock, secret.encode())
    settings = config.console
    return harden(app, Limits(max_body=settings.max_body_bytes, trusted_proxies=tuple(settings.trusted_proxies),
                              https=settings.public_url.startswith("https://")), HEADERS)
