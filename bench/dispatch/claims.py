"""Queue claim-and-complete on PostgreSQL: vitalsync's outbox against procrastinate on the same server.

vitalsync's side is the queue half of dispatch, as ``Dispatcher`` runs it: claim a batch with a lease
(``FOR UPDATE SKIP LOCKED``), then, on one connection for the batch, per message load it, record the attempt in flight (committed
before a provider would be called) and record the outcome with its history row (committed). The
send itself, the mirror re-check and the rendering are left out, as procrastinate's job is a no-op.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone


ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh database for one step, named after this process (runs side by side do not collide), then dropped."""
    import psycopg
    name = f"{name}_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill(engine, count: int, now: datetime) -> None:
    from sqlalchemy import insert

    from vitalsync.core.db import session
    from vitalsync.queue.tables import Message
    rows = [{"key": f"bench|{i}", "kind": "appointment_reminder", "channel": "sms", "address": "+15551230000",
             "patient_key": f"p{i}", "appointment_key": f"a{i}", "send_at": now - timedelta(minutes=1),
             "status": "not_sent", "status_at": now, "created_at": now} for i in range(count)]
    with session(engine) as db:
        db.execute(insert(Message), rows)
        db.commit()


def vitalsync_drain(database_url: str, count: int, batch: int) -> dict:
    from sqlalchemy import func, select
    from sqlmodel import Session

    from vitalsync.app.schema import migrate
    from vitalsync.core.clock import SystemClock
    from vitalsync.core.config import Config
    from vitalsync.core.db import make_engine, session
    from vitalsync.core.vocab import MessageStatus
    from vitalsync.dispatch.claim import claim
    from vitalsync.dispatch.run import DispatchReport, Dispatcher
    from vitalsync.queue.tables import Message

    engine = make_engine(database_url)
    migrate(engine)
    clock = SystemClock()
    fill(engine, count, clock.now())
    dispatcher = Dispatcher(engine, {}, {}, Config(), clock, owner="bench")
    report = DispatchReport()
    lease = timedelta(minutes=5)
    started = time.perf_counter()
    while ids := claim(engine, clock.now(), dispatcher.owner, batch, lease, lease_now=dispatcher._lease_now()):
        with engine.connect() as connection:  # as Dispatcher.dispatch_once: one connection per batch
            for message_id in ids:
                with Session(connection, expire_on_commit=False) as db:
                    message = db.get(Message, message_id)
                    if not dispatcher._mark_in_flight(db, message):
                        raise SystemExit("lost a lease during the benchmark")
                    dispatcher._finish(db, message, MessageStatus.SENT, "", report,
                                       provider_ref=f"SM{message_id:032d}", sent_at=clock.now())
    seconds = time.perf_counter() - started
    with session(engine) as db:
        done = db.scalar(select(func.count()).select_from(Message).where(Message.status == MessageStatus.SENT))
    engine.dispose()
    return {"jobs": count, "completed": done, "seconds": seconds, "per_s": done / seconds,
            "at": datetime.now(timezone.utc).isoformat()}
