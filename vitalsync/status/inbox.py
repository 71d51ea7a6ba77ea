"""The inbox: a provider's event is stored before it is acknowledged, and acted on once.

    arrival = Arrival("twilio", "sms_inbound", form["MessageSid"], raw_body)
    taken = receive(db, arrival, process, received_at=now, now=now)   # then commit, then answer

Each webhook request stores its event in ``inbox_event`` and processes it in the same transaction;
if processing fails for a reason other than the database itself, the event is stored alone
(:func:`store_only`) and the request is still acknowledged: the daemon's inbox step
(:func:`process_pending`) processes it later. A request whose event could not be stored gets a 5xx,
so the provider sends it again. ``(provider, kind, event_id)`` is unique: a replay (or a provider's
retry of an event already stored) is a duplicate and changes nothing, in any process.

An event about a message whose provider id is not committed yet (a delivery report that overtook
the send's answer) stays pending, ``reference`` naming that id; the step matches it once a message
carries it, and after :data:`UNMATCHED_AFTER` marks it ``unmatched`` for a person (log line
``inbox_unmatched``). Delivery reports, most of the traffic, are stored by
:mod:`vitalsync.status.deliveries` in groups with :func:`store_group`.

Adding a kind of event (an email reply, say): a processor ``process(db, context, arrival,
received_at, now) -> Processed | None`` in :data:`vitalsync.status.webhooks.PROCESSORS` under
``(provider, kind)``, and a route that calls :func:`receive` with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, bindparam, delete, exists, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from vitalsync.core.clock import Clock
from vitalsync.core.db import UTCDateTime, session
from vitalsync.queue.tables import Message
from vitalsync.status.tables import InboxEvent

log = structlog.get_logger("vitalsync.inbox")
UNMATCHED_AFTER = timedelta(hours=1)  #: a report whose message is still unknown after this is flagged
KEEP = timedelta(days=30)  #: processed events are kept this long (providers retry for up to a day)
PURGE_EVERY = timedelta(hours=1)  #: forgetting old events reads the whole table: not at every step
MAX_ATTEMPTS = 10  #: processing failures before an event is flagged ``failed`` for a person
BATCH = 500  #: pending events taken per step
TABLE = InboxEvent.__table__
_purged: dict[str, datetime] = {}  #: per database, when this process last forgot old events
KEY = ["provider", "kind", "event_id"]


@dataclass(frozen=True)
class Arrival:
    """One event as a provider sent it (its signature already checked)."""

    provider: str
    kind: str
    event_id: str  #: unique per provider and kind: the dedupe key
    payload: str  #: the raw verified payload (form body, JSON object)
    reference: str = ""  #: the provider's id of our message it is about; "" when it is about none


@dataclass(frozen=True)
class Processed:
    """What processing an event did: a log line to write once committed, and what the answer needs."""

    event: str  #: the log line's event name, e.g. ``reply_recorded``
    fields: dict = field(default_factory=dict)  #: allow-listed log fields only
    value: object = None  #: for the request's answer (the Reply, the call's language …)


@dataclass(frozen=True)
class Taken:
    state: str  #: processed, pending (stored, to be processed later) or duplicate (stored before)
    processed: Processed | None = None


Processor = Callable[[Session, object, Arrival, datetime, datetime], "Processed | None"]


def _insert(connection):
    return (postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert)(TABLE)


def receive(db: Session, arrival: Arrival, process: Processor, context, *, received_at: datetime,
            now: datetime) -> Taken:
    """Store ``arrival`` (unless stored before) and process it, in the caller's transaction.

    A new event is inserted as processed and processed at once; if ``process`` returns None (its
    message is not known yet) the row is left pending. An event stored before and processed is a
    duplicate; one stored before and still pending is claimed (on PostgreSQL this waits for whoever
    holds it) and processed now."""
    connection = db.connection()
    values = _row(arrival, received_at, processed_at=now)
    inserted = connection.execute(_insert(connection).values(values).on_conflict_do_nothing(index_elements=KEY)
                                  .returning(TABLE.c.id)).first()
    if inserted is None:
        row = connection.execute(select(TABLE.c.id, TABLE.c.processed_at).where(*_same(arrival))).first()
        if row is None or row.processed_at is not None:
            return Taken("duplicate")
        claimed = connection.execute(update(TABLE).where(TABLE.c.id == row.id, TABLE.c.processed_at.is_(None))
                                     .values(processed_at=now, outcome="recorded"))
        if claimed.rowcount != 1:
            return Taken("duplicate")
        row_id = row.id
    else:
        row_id = inserted.id
    done = process(db, context, arrival, received_at, now)
    if done is None:
        connection.execute(update(TABLE).where(TABLE.c.id == row_id).values(processed_at=None, outcome=""))
        return Taken("pending")
    return Taken("processed", done)


def store_only(db: Session, arrival: Arrival, received_at: datetime) -> None:
    """Store ``arrival`` as pending (one failed attempt): processing it failed, the daemon tries again."""
    connection = db.connection()
    connection.execute(_insert(connection).values(_row(arrival, received_at, processed_at=None, attempts=1))
                       .on_conflict_do_nothing(index_elements=KEY))


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database itself failed (locked, gone, timed out): storing alone would fail too."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def store_group(connection, arrivals: Sequence[Arrival], done: Sequence[bool], at: datetime) -> set[tuple[str, str, str]]:
    """Insert a group's events (pending where ``done`` is False) in one statement; the keys of those that
    were new. Inserted in key order, so concurrent groups holding the same replays never deadlock."""
    rows = sorted(zip(arrivals, done), key=lambda pair: _key(pair[0]))
    if connection.dialect.name == "postgresql":  # arrays: one statement whatever the group's size
        columns = list(zip(*[(a.provider, a.kind, a.event_id, a.reference, a.payload, d) for a, d in rows]))
        names = ("providers", "kinds", "event_ids", "references", "payloads", "done")
        found = connection.execute(_PG_STORE, {"at": at, **dict(zip(names, map(list, columns)))})
    else:
        found = connection.execute(
            _insert(connection).on_conflict_do_nothing(index_elements=KEY).returning(
                TABLE.c.provider, TABLE.c.kind, TABLE.c.event_id),
            [_row(a, at, processed_at=at if d else None) for a, d in rows])
    return {tuple(row) for row in found}


def process_pending(engine: Engine, context, clock: Clock, processors: Mapping[tuple[str, str], Processor]) -> dict:
    """The daemon's inbox step: process what the webhooks stored but could not process, flag what waited
    too long, forget processed events after :data:`KEEP`. ``context`` carries ``config`` and ``kinds``
    (the Runtime). Returns counts (processed, failed, flagged)."""
    now = clock.now()
    counts = {"count": 0, "failed": 0, "flagged": 0}
    with session(engine) as db:
        ids = list(db.execute(select(TABLE.c.id).where(TABLE.c.processed_at.is_(None), (TABLE.c.reference == "") | exists(
            select(Message.id).where(Message.provider_ref == TABLE.c.reference))).order_by(TABLE.c.id).limit(BATCH)).scalars())
    for row_id in ids:
        done = _process_one(engine, context, row_id, processors, now)
        if done is not None:
            counts["count" if done else "failed"] += 1
    with session(engine) as db:
        flagged = db.execute(update(TABLE).where(TABLE.c.processed_at.is_(None), TABLE.c.reference != "",
                                                 TABLE.c.received_at < now - UNMATCHED_AFTER)
                             .values(processed_at=now, outcome="unmatched")).rowcount
        if now - _purged.get(str(engine.url), datetime.min.replace(tzinfo=now.tzinfo)) >= PURGE_EVERY:
            db.execute(delete(TABLE).where(TABLE.c.processed_at < now - KEEP))
            _purged[str(engine.url)] = now
        db.commit()
    if flagged:
        log.warning("inbox_unmatched", count=flagged)
    counts["flagged"] = flagged
    return counts


def _process_one(engine: Engine, context, row_id: int, processors, now: datetime) -> bool | None:
    """Claim one pending event and process it in one transaction; True once done, None when its
    message is still unknown, False when processing failed (counted; flagged after MAX_ATTEMPTS)."""
    try:
        with session(engine) as db:
            row = db.execute(select(TABLE).where(TABLE.c.id == row_id)).first()
            if row is None or row.processed_at is not None:
                return True
            claimed = db.execute(update(TABLE).where(TABLE.c.id == row_id, TABLE.c.processed_at.is_(None))
                                 .values(processed_at=now, outcome="recorded"))
            if claimed.rowcount != 1:  # a retried request took it meanwhile
                return True
            arrival = Arrival(row.provider, row.kind, row.event_id, row.payload, row.reference)
            process = processors.get((row.provider, row.kind))
            if process is None:
                raise LookupError(f"no processor for {row.provider} {row.kind}")
            done = process(db, context, arrival, row.received_at, now)
            if done is None:
                db.rollback()
                return None
            db.commit()
    except Exception as exc:  # noqa: BLE001 - one event's failure must not stop the others; type only (PHI)
        if database_unavailable(exc):  # not the event's fault: it is not counted towards giving up
            log.warning("inbox_processing_failed", inbox_id=row_id, error_type=type(exc).__name__)
            raise
        failed = _failed(engine, row_id, now)
        log.warning("inbox_processing_failed", inbox_id=row_id, error_type=type(exc).__name__, attempts=failed)
        return False
    log.info(done.event, inbox_id=row_id, **done.fields)
    return True


def _failed(engine: Engine, row_id: int, now: datetime) -> int | None:
    """Count a failed attempt; the event is flagged ``failed`` after MAX_ATTEMPTS (a person must look)."""
    try:
        with session(engine) as db:
            attempts = db.execute(update(TABLE).where(TABLE.c.id == row_id).values(attempts=TABLE.c.attempts + 1)
                                  .returning(TABLE.c.attempts)).scalar()
            if attempts is not None and attempts >= MAX_ATTEMPTS:
                db.execute(update(TABLE).where(TABLE.c.id == row_id).values(processed_at=now,
                                                                            outcome="failed"))
                log.error("inbox_event_failed", inbox_id=row_id, attempts=attempts)
            db.commit()
            return attempts
    except Exception:  # noqa: BLE001 - the database is away: the next step counts again
        return None


def _row(arrival: Arrival, received_at: datetime, *, processed_at: datetime | None, attempts: int = 0) -> dict:
    return {"provider": arrival.provider, "kind": arrival.kind, "event_id": arrival.event_id,
            "reference": arrival.reference, "payload": arrival.payload, "received_at": received_at,
            "processed_at": processed_at, "attempts": attempts, "outcome": "recorded" if processed_at else ""}


def _same(arrival: Arrival):
    return TABLE.c.provider == arrival.provider, TABLE.c.kind == arrival.kind, TABLE.c.event_id == arrival.event_id


def _key(arrival: Arrival) -> tuple[str, str, str]:
    return arrival.provider, arrival.kind, arrival.event_id


_PG_STORE = text(
    f"INSERT INTO {TABLE.name} (provider, kind, event_id, reference, payload, received_at, processed_at, attempts, outcome) "
    "SELECT v.provider, v.kind, v.event_id, v.reference, v.payload, :at, CASE WHEN v.done THEN :at END, 0, "
    "CASE WHEN v.done THEN 'recorded' ELSE '' END "
    "FROM unnest(CAST(:providers AS text[]), CAST(:kinds AS text[]), CAST(:event_ids AS text[]), "
    "CAST(:references AS text[]), CAST(:payloads AS text[]), CAST(:done AS boolean[])) "
    "WITH ORDINALITY AS v(provider, kind, event_id, reference, payload, done, n) ORDER BY v.n "
    "ON CONFLICT (provider, kind, event_id) DO NOTHING RETURNING provider, kind, event_id"
).bindparams(bindparam("at", type_=UTCDateTime()))
