"""The shared web layer through a real uvicorn server on loopback: lock-out under concurrency, the
rate limit against forged headers, body limits as the bytes arrive, slow clients, security headers.
(Issue 12, points 5, 7 and 12.)"""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from tests.console.conftest import PASSWORD, SECRET, csrf_of
from vitalsync.console import accounts
from vitalsync.console.tables import AuditEntry
from vitalsync.console.web import console_app
from vitalsync.core import web
from vitalsync.core.db import session
from vitalsync.status.webhooks import webhook_app

MB = 1024 * 1024
READ = 256 * 1024  #: what one socket read can bring past the limit (uvloop reads up to 256 KiB at a time)


@pytest.fixture
def served(practice):
    """start(**console_settings) -> the console served by uvicorn on a free loopback port."""
    running = []

    def start(**settings):
        practice.config.console.secure_cookies = False  # plain http on loopback
        for key, value in settings.items():
            setattr(practice.config.console, key, value)
        running.append(web.serve(console_app(practice.engine, practice.config, practice.clock, SECRET)))
        return running[-1].url
    yield start
    for server in running:
        server.stop()


def login_form(base: str) -> tuple[str, str]:
    """The login form's cookie nonce and CSRF token."""
    page = httpx.get(f"{base}/login")
    return page.cookies["vs_login"], csrf_of(page.text)


def attempt(base: str, form: tuple[str, str], name: str, password: str, headers: dict | None = None) -> httpx.Response:
    nonce, token = form
    return httpx.post(f"{base}/login", data={"csrf": token, "name": name, "password": password},
                      headers={"Cookie": f"vs_login={nonce}", **(headers or {})}, timeout=60)


def audit(practice, action: str) -> list[AuditEntry]:
    with session(practice.engine) as db:
        return list(db.exec(select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.id))))


# -- point 5: lock-out and rate limit ------------------------------------------------------------

def test_twenty_concurrent_wrong_passwords_lock_the_account_after_the_allowed_number(served, practice, monkeypatch):
    checks, active, peak, lock = [0], [0], [0], threading.Lock()
    real_verify = accounts._verify

    def counted_verify(hashed, password):
        with lock:
            checks[0] += 1
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return real_verify(hashed, password)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(accounts, "_verify", counted_verify)
    base = served(login_attempts_per_minute=10_000, password_checks_at_once=2)
    allowed = practice.config.console.lockout_failures
    form = login_form(base)
    for round_ in range(10):
        checks[0] = 0
        barrier, codes = threading.Barrier(20), []

        def guess():
            barrier.wait()
            codes.append(attempt(base, form, "fran", "wrong password!").status_code)
        threads = [threading.Thread(target=guess) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes) == [401] * (allowed - 1) + [403] * (21 - allowed), f"round {round_}: {sorted(codes)}"
        assert checks[0] == allowed, f"round {round_}: {checks[0]} passwords checked"
        assert attempt(base, form, "fran", PASSWORD).status_code == 403  # locked, even the right password
        practice.clock.advance(timedelta(minutes=practice.config.console.lockout_minutes + 1))
    assert peak[0] <= 2, f"{peak[0]} password checks ran at once"
    assert attempt(base, form, "fran", PASSWORD).status_code == 303  # the lock ends


def test_a_forged_forwarded_for_header_changes_nothing(served, practice):
    base = served(login_attempts_per_minute=5)
    form = login_form(base)
    codes = [attempt(base, form, "nobody", "wrong password!", {"X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert {entry.address for entry in audit(practice, "login_refused")} == {"127.0.0.1"}


def test_a_trusted_proxy_gives_the_clients_address_and_https(served, practice):
    base = served(trusted_proxies=["127.0.0.1"])
    response = attempt(base, login_form(base), "fran", PASSWORD,
                       {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert response.status_code == 303
    assert response.headers["strict-transport-security"].startswith("max-age=")
    [login] = audit(practice, "login")
    assert login.address == "203.0.113.7"


def test_https_is_not_claimed_by_an_untrusted_header(served):
    base = served()
    response = httpx.get(f"{base}/login", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers


# -- point 7: bodies and slow clients --------------------------------------------------------------

def chunks(total: int, size: int = 64 * 1024):
    for start in range(0, total, size):
        yield b"a" * min(size, total - start)


def test_a_large_chunked_post_to_the_login_is_refused_as_it_arrives(served, practice):
    base = served()
    limit = practice.config.console.max_body_bytes
    with capture_logs() as logs:
        try:
            response = httpx.post(f"{base}/login", content=chunks(20 * MB), timeout=30,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert response.status_code == 413
        except httpx.HTTPError:  # the server answered and closed while the body was still going out
            pass
    [refused] = [line for line in logs if line["event"] == "request_refused"]
    assert refused["outcome"] == "too_large" and limit < refused["count"] <= limit + READ


def test_a_declared_length_over_the_limit_is_refused_before_reading(served):
    base = served()
    response = httpx.post(f"{base}/login", content=b"x" * (128 * 1024), timeout=30)
    assert response.status_code == 413 and response.headers["connection"] == "close"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.fixture
def webhooks(practice):
    server = web.serve(webhook_app(practice.engine, practice.config, practice.clock, twilio_auth_token="t" * 32,
                                   sendgrid_public_key="not a key", public_url="http://127.0.0.1"))
    yield server.url
    server.stop()


@pytest.mark.parametrize("path", ["/webhooks/twilio/sms/inbound", "/webhooks/sendgrid/events"])
def test_a_large_chunked_post_to_a_webhook_is_refused_as_it_arrives(webhooks, practice, path):
    limit = practice.config.webhooks.max_body_bytes
    with capture_logs() as logs:
        try:
            assert httpx.post(f"{webhooks}{path}", content=chunks(8 * MB), timeout=30).status_code == 413
        except httpx.HTTPError:
            pass
    [refused] = [line for line in logs if line["event"] == "request_refused"]
    assert limit < refused["count"] <= limit + READ


def raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_a_body_cut_short_is_one_log_line_not_a_traceback(webhooks, capfd):
    with capture_logs() as logs:
        with raw(webhooks) as conn:
            conn.sendall(b"POST /webhooks/twilio/sms/inbound HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: x\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 50000\r\n\r\n" + b"a" * 1000)
            time.sleep(0.3)
        time.sleep(0.5)
    assert [line["event"] for line in logs] == ["request_aborted"]
    assert "Traceback" not in capfd.readouterr().err


def test_a_connection_that_sends_its_head_slowly_or_nothing_is_closed(webhooks, monkeypatch):
    monkeypatch.setattr(web.HeadDeadline, "head_seconds", 0.5)
    with raw(webhooks) as silent, raw(webhooks) as slow:
        slow.sendall(b"POST /webhooks/twilio/sms/inbound HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert silent.recv(100) == b"" and slow.recv(100) == b""
        assert time.monotonic() - started < 5


def test_a_body_that_trickles_in_gets_408():
    async def echo(request):
        return Response(str(len(await request.body())))
    app = web.harden(Starlette(routes=[Route("/", echo, methods=["POST"])]), web.Limits(max_body=1000, body_seconds=0.5), {})
    server = web.serve(app)
    try:
        with raw(server.url) as conn:
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
            answer = conn.recv(1000)
        assert answer.startswith(b"HTTP/1.1 408")
        assert httpx.post(server.url, content=b"a" * 100).text == "100"
    finally:
        server.stop()


# -- point 12: headers on every response ------------------------------------------------------------

@pytest.mark.parametrize("method, path, status", [("GET", "/login", 200), ("GET", "/no-such-page", 404),
                                                    ("DELETE", "/login", 405), ("GET", "/static/console.css", 200)])
def test_every_response_carries_the_security_headers(served, method, path, status):
    response = httpx.request(method, served() + path)
    assert response.status_code == status
    for name in ("x-frame-options", "x-content-type-options", "content-security-policy", "referrer-policy"):
        assert name in response.headers, (path, name)
    assert "strict-transport-security" not in response.headers  # plain http, no https public address


def test_hsts_when_the_console_is_public_over_https(served):
    response = httpx.get(served(public_url="https://console.clinic.example") + "/no-such-page")
    assert response.status_code == 404 and re.match(r"max-age=\d+", response.headers["strict-transport-security"])
