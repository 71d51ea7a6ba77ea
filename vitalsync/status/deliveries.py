"""Delivery callbacks written in groups: one transaction for all the callbacks waiting, not one each.

Status callbacks are most of what the receiver gets (two or three per message sent, in bursts as a
batch of reminders is delivered). Written one transaction each, every callback pays for its own
connection check-out, BEGIN, lookups and COMMIT, and the receiver topped out near a hundred a
second here. Here a writer thread takes every delivery that is waiting, looks their messages
up in one query (locked on PostgreSQL, in id order so concurrent writers never deadlock), stores
them in the inbox (:mod:`vitalsync.status.inbox`: one statement; a replay stored before is left
out), applies each by :func:`~vitalsync.queue.outbox.transition`'s rule in arrival order and
commits once; on PostgreSQL a few writers overlap, so one group is built while another commits.
Each request still gets its answer only after its delivery is committed, so nothing
acknowledged is lost. A report whose message is not known yet (it overtook the send's answer) is
stored pending and matched later by the inbox step. If a group fails, each of its deliveries is
written again alone, so one bad callback fails only its own request (500, and the provider retries
it) — or, when the database itself is fine, is stored alone for the inbox step and acknowledged.
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
from vitalsync.status.inbox import Arrival, database_unavailable, store_group, store_only

log = structlog.get_logger("vitalsync.status")
MAX_GROUP = 500  #: deliveries per transaction
ANSWERED = (MessageStatus.CONFIRMED, MessageStatus.DECLINED)  #: an answer proves the message was received


@dataclass(frozen=True)
class Delivery:
    reference: str  #: the provider's message id
    delivered: bool
    detail: str = ""
    arrival: Arrival | None = None  #: the event as it came, stored in the inbox with the group; None: not stored


def kept(current: MessageStatus, reported: MessageStatus) -> bool:
    """Whether a report that does not move a message at ``current`` still goes into its history.

    It does when it says something the history does not: an 'undelivered' after 'delivered' (a
    received message never goes back to not received), a 'delivered' for a failed or cancelled one.
    A repeat of the status, or 'delivered' after the patient answered, is no news."""
    return reported != current and not (reported is MessageStatus.RECEIVED and current in ANSWERED)


def kept_detail(reported: MessageStatus, detail: str) -> str:
    return f"provider reported {reported.value}" + (f" ({detail})" if detail else "") + "; status kept"


def record_deliveries(db: Session, deliveries: Sequence[Delivery], at: datetime,
                      kinds: dict[str, MessageKind] | None = None) -> list[bool]:
    """Apply delivery reports in order, as :func:`~vitalsync.queue.outbox.transition` would one by one.

    Written with plain bulk statements, cheaper at hundreds of callbacks a second than an ORM object
    per message (bench/dispatch); so a session passed in must not hold these messages loaded. Reports
    carrying their ``arrival`` are stored in the inbox first; one stored before (a replay) is not
    applied again. Each result says whether that report's message is known. With ``kinds``, a
    permanent failure is followed on the kind's next channel (:mod:`vitalsync.status.fallback`).
    """
    connection = db.connection()
    postgres = connection.dialect.name == "postgresql"
    current: dict[str, list] = {}
    for message_id, reference, status in connection.execute(*_lookup(postgres, {d.reference for d in deliveries})):
        current.setdefault(reference, [message_id, MessageStatus(status)])
    fresh = _store(connection, deliveries, current, at)
    known, final, events, failures = [], {}, [], []
    for delivery, new in zip(deliveries, fresh):
        entry = current.get(delivery.reference)
        known.append(entry is not None)
        if entry is None or not new:
            continue
        status = MessageStatus.RECEIVED if delivery.delivered else MessageStatus.NOT_RECEIVED
        if not moves(entry[1], status):
            if kept(entry[1], status):
                events.append((entry[0], entry[1].value, kept_detail(status, delivery.detail)))
            continue
        entry[1] = status
        reason = delivery.detail or final.get(entry[0], ("", "", ""))[2]  # transition keeps the reason on ""
        final[entry[0]] = (entry[0], status.value, reason)
        events.append((entry[0], status.value, delivery.detail))
        if status == MessageStatus.NOT_RECEIVED:
            failures.append((entry[0], delivery.detail))
    if events:  # one row per message, its last state: the history rows keep every step, in order
        (_write_postgres if postgres else _write)(connection, list(final.values()), events, at)
        after_failures(db, kinds, failures, at)
    return known


def _store(connection, deliveries: Sequence[Delivery], current: dict, at: datetime) -> list[bool]:
    """Store the reports' arrivals in the inbox; for each report, False when it is a replay (stored before,
    or earlier in this group). Reports of unknown messages are stored pending, for the inbox step."""
    arrivals = {}
    for delivery in deliveries:
        if delivery.arrival is not None:
            arrivals.setdefault(_key(delivery.arrival), delivery.arrival)
    if not arrivals:
        return [True] * len(deliveries)
    new = store_group(connection, list(arrivals.values()), [a.reference in current for a in arrivals.values()], at)
    fresh, seen = [], set()
    for delivery in deliveries:
        if delivery.arrival is None:
            fresh.append(True)
            continue
        key = _key(delivery.arrival)
        fresh.append(key in new and key not in seen)
        seen.add(key)
    return fresh


def _key(arrival: Arrival) -> tuple[str, str, str]:
    return arrival.provider, arrival.kind, arrival.event_id


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
    if final:
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
                _answer(group, [self._store_alone(group[0][0], exc)])
                return
            if database_unavailable(exc):  # one by one would each wait for it again: every request gets a 5xx
                log.warning("delivery_group_failed", count=len(group), error_type=type(exc).__name__)
                _answer(group, [exc] * len(group))
                return
            log.warning("delivery_group_failed", count=len(group), error_type=type(exc).__name__)
            for item in group:
                self._write([item])
            return
        _answer(group, known)
        log.info("deliveries_recorded", count=len(group), matched=sum(known))

    def _store_alone(self, delivery: Delivery, exc: Exception):
        """A report that failed alone: stored pending for the inbox step when the database works (False:
        not matched now), else ``exc`` for its request (a 5xx: the provider sends it again)."""
        if delivery.arrival is None or database_unavailable(exc):
            return exc
        try:
            with self.lock or nullcontext(), session(self.engine) as db:
                store_only(db, delivery.arrival, self.clock.now())
                db.commit()
        except Exception as again:  # noqa: BLE001 - handed to its request
            return again
        log.warning("delivery_stored_unprocessed", error_type=type(exc).__name__)
        return False


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
