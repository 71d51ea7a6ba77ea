"""Signed Twilio status callbacks ingested per second by the webhook receiver, over real HTTP.

The receiver (``webhook_app`` under uvicorn, as ``vitalsync run`` serves it) runs in its own process
on a database holding ``count`` sent messages. The callbacks ("delivered", one per message, each
signed with twilio's own ``RequestValidator``) are signed before the clock starts and posted by
``clients`` concurrent keep-alive connections. Afterwards the database is counted: every message
must be ``received`` with exactly one provider history row (none lost, none twice).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

TOKEN = "bench-twilio-auth-token"
PUBLIC = "https://clinic.example.org"
PATH = "/webhooks/twilio/sms/status"


def prepare(database_url: str, count: int) -> None:
    from sqlalchemy import insert

    from vitalsync.app.schema import migrate
    from vitalsync.core.clock import SystemClock
    from vitalsync.core.db import make_engine, session
    from vitalsync.queue.tables import Message
    engine = make_engine(database_url)
    migrate(engine)
    now = SystemClock().now()
    rows = [{"key": f"bench|{i}", "kind": "appointment_reminder", "channel": "sms", "address": "+15551230000",
             "patient_key": f"p{i}", "appointment_key": f"a{i}", "send_at": now, "status": "sent", "status_at": now,
             "created_at": now, "sent_at": now, "provider_ref": sid(i)} for i in range(count)]
    with session(engine) as db:
        db.execute(insert(Message), rows)
        db.commit()
    engine.dispose()


def sid(i: int) -> str:
    return f"SM{i:032x}"


def serve(database_url: str, port_file: str) -> None:
    """The receiver in this process, as `vitalsync run` serves it; writes its port, runs until stdin closes."""
    from vitalsync.core.clock import SystemClock
    from vitalsync.core.config import Config
    from vitalsync.core import log
    from vitalsync.core.db import make_engine
    from vitalsync.status.webhooks import serve as serve_app
    from vitalsync.status.webhooks import webhook_app
    log.setup("info", "json", stream=sys.stdout)  # as `vitalsync run` logs: one JSON line per callback
    app = webhook_app(make_engine(database_url), Config(), SystemClock(), twilio_auth_token=TOKEN,
                      sendgrid_public_key=None, public_url=PUBLIC)
    served = serve_app(app)
    Path(port_file).write_text(str(served.port))
    sys.stdin.read()
    served.stop()


def signed_bodies(count: int) -> list[tuple[bytes, str]]:
    from twilio.request_validator import RequestValidator
    validator = RequestValidator(TOKEN)
    bodies = []
    for i in range(count):
        params = {"MessageSid": sid(i), "SmsSid": sid(i), "AccountSid": "AC" + "0" * 32, "From": "+15005550006",
                  "To": "+15551230000", "MessageStatus": "delivered", "SmsStatus": "delivered", "ApiVersion": "2010-04-01"}
        bodies.append((urlencode(params).encode(), validator.compute_signature(PUBLIC + PATH, params)))
    return bodies


async def post_all(port: int, bodies: list[tuple[bytes, str]], clients: int) -> list[int]:
    """Post every body over ``clients`` keep-alive connections; the HTTP status of each.

    A minimal HTTP/1.1 client on asyncio streams: httpx's async client managed ~300 requests a
    second here against a do-nothing uvicorn app (this one: ~5,000), and would have measured itself.
    """
    statuses: list[int] = []
    queue = list(reversed(bodies))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            body, signature = queue.pop()
            writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                         b"X-Twilio-Signature: %s\r\nContent-Length: %d\r\n\r\n%s"
                         % (PATH.encode(), signature.encode(), len(body), body))
            head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            length = next((int(line.split(b":")[1]) for line in head if line.lower().startswith(b"content-length:")), 0)
            if length:
                await reader.readexactly(length)
            statuses.append(int(head[0].split()[1]))
        writer.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return statuses


def ingest(database_url: str, count: int, clients: int) -> dict:
    from sqlalchemy import func, select

    from vitalsync.core.db import make_engine, session
    from vitalsync.queue.tables import Message, MessageEvent
    prepare(database_url, count)
    bodies = signed_bodies(count)
    port_file = Path(tempfile.mkdtemp(prefix="vitalsync-bench-")) / "port"
    # its log lines (one per callback, as in production) go nowhere: an unread pipe would stall it
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", database_url, str(port_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None:
                raise SystemExit("the webhook receiver did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        started = time.perf_counter()
        statuses = asyncio.run(post_all(port, bodies, clients))
        seconds = time.perf_counter() - started
    finally:
        server.stdin.close()
        server.wait(30)
    engine = make_engine(database_url)
    with session(engine) as db:
        received = db.scalar(select(func.count()).select_from(Message).where(Message.status == "received"))
        events = db.scalar(select(func.count()).select_from(MessageEvent).where(MessageEvent.source == "provider"))
    engine.dispose()
    return {"callbacks": count, "answered_200": statuses.count(200), "seconds": seconds, "per_s": count / seconds,
            "messages_received": received, "history_rows": events, "clients": clients,
            "lost": count - received, "recorded_twice": events - received}


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve(sys.argv[2], sys.argv[3])
