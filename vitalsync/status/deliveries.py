"""Delivery callbacks written in groups: one transaction for all the callbacks waiting, not one each.

Status callbacks are most of what the receiver gets (two or three per message sent, in bursts as a
batch of reminders is delivered). Written one transaction each, every callback pays for its own
connection check-out, BEGIN, lookups and COMMIT, and the receiver topped out near a hundred a
second here. Here a writer thread takes every delivery that is waiting, looks their messages
up in one query (locked on PostgreSQL, in id order so concurrent writers never deadlock), applies each by :func:`~vitalsync.queue.outbox.transition`'s rule in arrival order and
commits once; on PostgreSQL a few writers overlap, so one group is built while another commits.
Each request still gets its answer only after its delivery is committed, so nothing
acknowledged is lost. If a group fails, each of its deliveries is written again alone, so one bad
callback fails only its own request (500, and the provider retries it).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Engine, bindparam, insert, select, text, update
from sqlmodel import Session

from vitalsync.core.clock import Clock
from vitalsync.core.db import UTCDateTime, session
from vitalsync.core.vocab import MessageStatus
from vitalsync.queue.outbox import moves
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.rules.kinds import MessageKind
from vitalsync.status.fallback import after_failures

log = structlog.get_logger("vitalsync.status")
MAX_GROUP = 500  #: deliveries per transaction


@dataclass(frozen=True)
class Delivery:
    reference: str  #: the provider's message id
    delivered: bool
    detail: str = ""


def record_deliveries(db: Session, deliveries: Sequence[Delivery], at: datetime,
                      kinds: dict[str, MessageKind] | None = None) -> list[bool]:
    """Apply delivery reports in order, as :func:`~vitalsync.queue.outbox.transition` would one by one.

    Written with plain bulk statements, cheaper at hundreds of callbacks a second than an ORM object
    per message (bench/dispatch); so a session passed in must not hold these messages loaded. Each
    result says whether that report's message is known. With ``kinds``, a permanent failure is
    followed on the kind's next channel (:mod:`vitalsync.status.fallback`).
    """
    connection = db.connection()
    postgres = connection.dialect.name == "postgresql"
    current: dict[str, list] = {}
    for message_id, reference, status in connection.execute(*_lookup(postgres, {d.reference for d in deliveries})):
        current.setdefault(reference, [message_id, MessageStatus(status)])
    known, final, events = [], {}, []
    for delivery in deliveries:
        entry = current.get(delivery.reference)
        known.append(entry is not None)
        status = MessageStatus.RECEIVED if delivery.delivered else MessageStatus.NOT_RECEIVED
        if entry is None or not moves(entry[1], status):
            continue
        entry[1] = status
        reason = delivery.detail or final.get(entry[0], ("", "", ""))[2]  # transition keeps the reason on ""
        final[entry[0]] = (entry[0], status.value, reason)
        events.append((entry[0], status.value, delivery.detail))
    if final:  # one row per message, its last state: the history rows keep every step, in order
        (_write_postgres if postgres else _write)(connection, list(final.values()), events, at)
        after_failures(db, kinds, [(i, detail) for i, status, detail in events if status == MessageStatus.NOT_RECEIVED], at)
    return known


def _lookup(postgres: bool, references: set[str]):
    """The messages of ``references``, in id order (locked on PostgreSQL: concurrent writers never deadlock)."""
    if postgres:  # one array parameter: an IN list would be compiled anew for each group's size
        return _PG_LOOKUP, {"refs": sorted(references)}
    table = Message.__table__
    return select(table.c.id, table.c.provider_ref, table.c.status).where(
        table.c.provider_ref.in_(sorted(references))).order_by(table.c.id), {}


def _write(connection, final: list[tuple], events: list[tuple], at: datetime) -> None:
    table = Message.__table__
    base = update(table).where(table.c.id == bindparam("id_"))
    keep = [{"id_": i, "status_": status} for i, status, reason in final if not reason]
    new = [{"id_": i, "status_": status, "reason_": reason} for i, status, reason in final if reason]
    if keep:
        connection.execute(base.values(status=bindparam("status_"), status_at=at), keep)
    if new:
        connection.execute(base.values(status=bindparam("status_"), status_at=at, reason=bindparam("reason_")), new)
    connection.execute(insert(MessageEvent.__table__), [
        {"message_id": i, "at": at, "status": status, "source": "provider", "detail": detail}
        for i, status, detail in events])


def _write_postgres(connection, final: list[tuple], events: list[tuple], at: datetime) -> None:
    """The same writes as :func:`_write`, a statement each with the group's values as arrays: psycopg
    binds a list in C, where a row at a time costs Python work per value (~a fifth of a callback)."""
    ids, statuses, reasons = map(list, zip(*final))
    connection.execute(_PG_UPDATE, {"ids": ids, "statuses": statuses, "reasons": reasons, "at": at})
    ids, statuses, details = map(list, zip(*events))
    connection.execute(_PG_HISTORY, {"ids": ids, "statuses": statuses, "details": details, "at": at})


_MESSAGE, _EVENT = Message.__table__.name, MessageEvent.__table__.name
_PG_LOOKUP = text(f"SELECT id, provider_ref, status FROM {_MESSAGE} WHERE provider_ref = ANY(:refs) "
                  "ORDER BY id FOR UPDATE")
_PG_UPDATE = text(
    f"UPDATE {_MESSAGE} AS m SET status = v.status, status_at = :at, "
    "reason = CASE WHEN v.reason = '' THEN m.reason ELSE v.reason END "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS text[]), CAST(:reasons AS text[])) AS v(id, status, reason) "
    "WHERE m.id = v.id").bindparams(bindparam("at", type_=UTCDateTime()))
_PG_HISTORY = text(
    f"INSERT INTO {_EVENT} (message_id, at, status, source, detail) "
    "SELECT v.id, :at, v.status, 'provider', v.detail "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS text[]), CAST(:details AS text[])) "
    "WITH ORDINALITY AS v(id, status, detail, n) ORDER BY v.n").bindparams(bindparam("at", type_=UTCDateTime()))


class DeliveryWriter:
    """Groups deliveries into transactions on up to ``writers`` threads.

    A writer thread stays a few seconds after its last group (callbacks come in bursts: starting a
    thread per burst cost ~4% of a callback), and hands a group's answers to the event loop in one
    call, not one cross-thread wake-up per request."""

    IDLE_SECONDS = 5.0  #: a writer with nothing to do for this long ends

    def __init__(self, engine: Engine, clock: Clock, lock: threading.Lock | None = None, writers: int = 1,
                 kinds: dict[str, MessageKind] | None = None) -> None:
        self.engine, self.clock, self.lock = engine, clock, lock  #: lock: SQLite's one writer at a time
        self.kinds = kinds  #: for falling back after a permanent failure
        self.writers = writers  #: threads writing groups at once: while one waits for its commit, the next group goes
        self._waiting: deque[tuple[Delivery, asyncio.AbstractEventLoop, asyncio.Future]] = deque()
        self._ready = threading.Condition()
        self._running = self._idle = 0

    async def record(self, delivery: Delivery) -> bool:
        """Wait until ``delivery`` is committed; True if its message is known."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._ready:
            self._waiting.append((delivery, loop, future))
            if self._idle:
                self._ready.notify()
            elif self._running < self.writers:
                self._running += 1
                threading.Thread(target=self._run, name="vitalsync-deliveries", daemon=True).start()
        return await future

    def _run(self) -> None:
        while True:
            with self._ready:
                if not self._waiting:
                    self._idle += 1
                    self._ready.wait(self.IDLE_SECONDS)
                    self._idle -= 1
                    if not self._waiting:
                        self._running -= 1
                        return
                group = [self._waiting.popleft() for _ in range(min(MAX_GROUP, len(self._waiting)))]
            self._write(group)

    def _write(self, group: list[tuple[Delivery, asyncio.AbstractEventLoop, asyncio.Future]]) -> None:
        try:
            with self.lock or nullcontext(), session(self.engine) as db:
                known = record_deliveries(db, [delivery for delivery, _, _ in group], self.clock.now(), self.kinds)
                db.commit()
        except Exception as exc:  # noqa: BLE001 - handed to the request(s) it belongs to
            if len(group) == 1:
                _answer(group, [exc])
                return
            log.warning("delivery_group_failed", count=len(group), error_type=type(exc).__name__)
            for item in group:
                self._write([item])
            return
        _answer(group, known)
        log.info("deliveries_recorded", count=len(group), matched=sum(known))


def _answer(group, outcomes: list) -> None:
    """Each request's result (or exception), set on its own event loop: one call per loop."""
    by_loop: dict = {}
    for (_, loop, future), outcome in zip(group, outcomes):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, answers)
        except RuntimeError:  # that loop has closed: its requests are gone with it
            pass


def _settle(answers) -> None:
    for future, outcome in answers:
        if future.done():  # the request was cancelled (client gone); its delivery is committed all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
