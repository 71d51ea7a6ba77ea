"""The outbox's writes: status transitions with history, cancellations, and the decision trace."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import String, bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from vitalsync.core.vocab import FINAL, STATUS_RANK, MessageStatus
from vitalsync.queue.tables import Decision, Message, MessageEvent, MessageTarget
from vitalsync.rules.plan import PlannedMessage


def transition(db: Session, message: Message, status: MessageStatus, *, at: datetime, source: str,
               detail: str = "", also: dict | None = None) -> bool:
    """Move ``message`` to ``status`` and record it; False (nothing recorded) if that would go back.

    Final statuses stay final, and a late event never moves a message backwards: a 'delivered'
    that arrives after 'confirmed' leaves it confirmed, and a received message never goes back to
    not received (a late 'undelivered' or bounce). ``also`` are more of the message's columns
    to write with the move (the dispatcher's outcome: lease released, provider reference).
    """
    if not moves(MessageStatus(message.status), status):
        return False
    status = MessageStatus(status)
    values = {"status": status.value, "status_at": at, **({"reason": detail} if detail else {}), **(also or {})}
    event = {"event_at": at, "event_status": status.value, "source": source, "detail": detail}
    connection = db.connection()
    if connection.dialect.name == "postgresql":  # the row and its history row in one statement
        connection.execute(_move(tuple(values)), {"id_": message.id, **values, **event})
        _stored(message, values)
        return True
    store(db, message, **values)
    connection.execute(_NEW_EVENT, {"message_id": message.id, "at": at, "status": status.value,
                                    "source": source, "detail": detail})
    return True


def store(db: Session, message: Message, **values) -> None:
    """Write ``values`` to the message's row now, as one statement, and tell the session they are stored.

    Plain Core statements built once, on the session's connection: the ORM's unit of work (change
    tracking, a flush, fetching the new history row's id) and building a statement per call cost
    several times the statements themselves on the dispatch path (``bench/dispatch``'s queue step)."""
    db.connection().execute(_update(tuple(values)), {"id_": message.id, **values})
    _stored(message, values)


def _stored(message: Message, values: dict) -> None:
    for name, value in values.items():
        set_committed_value(message, name, value)


_NEW_EVENT = insert(MessageEvent.__table__)


@cache
def _update(names: tuple[str, ...]):
    """``UPDATE message SET <names> WHERE id = :id_``, one statement object per set of columns (its
    cache key is then computed once)."""
    table = Message.__table__
    return update(table).where(table.c.id == bindparam("id_")).values({name: bindparam(name) for name in names})


@cache
def _move(names: tuple[str, ...]):
    """PostgreSQL: ``_update(names)`` and the history row of the move as one statement (a
    data-modifying CTE), one round trip instead of two."""
    table, events = Message.__table__, MessageEvent.__table__
    moved = (update(table).where(table.c.id == bindparam("id_")).values({name: bindparam(name) for name in names})
             .returning(table.c.id).cte("moved"))
    row = select(moved.c.id, bindparam("event_at", type_=events.c.at.type), bindparam("event_status", type_=String()),
                 bindparam("source", type_=String()), bindparam("detail", type_=String()))
    return insert(events).from_select(["message_id", "at", "status", "source", "detail"], row)


def moves(current: MessageStatus, status: MessageStatus) -> bool:
    """Whether a message at ``current`` may move to ``status``: the rule :func:`transition` applies."""
    if current == status or current in FINAL:
        return False
    if current == MessageStatus.RECEIVED and status == MessageStatus.NOT_RECEIVED:
        return False  # a late 'undelivered' after 'delivered': received stays received (the report goes to the history)
    if STATUS_RANK[status] < STATUS_RANK[current] and current != MessageStatus.NEEDS_RECONCILIATION:
        return False
    return not (current == MessageStatus.NEEDS_RECONCILIATION and status == MessageStatus.NOT_SENT)


def decide(db: Session, *, key: str, at: datetime, kind: str, decision: str, reason: str, **where) -> None:
    db.add(Decision(key=key, at=at, kind=kind, decision=decision, reason=reason, **where))


def enqueue(db: Session, planned: PlannedMessage, now: datetime, *, source: str, detail: str = "") -> Message:
    """Put one planned message in the outbox with its targets and its first history row."""
    message = Message(
        key=planned.key, kind=planned.kind, channel=planned.channel, address=planned.address,
        patient_key=planned.patient_key, appointment_key=planned.appointment_key,
        subject_key=planned.subject_key, language=planned.language, asks_reply=planned.asks_reply,
        send_at=planned.send_at, deadline=planned.deadline, status=MessageStatus.NOT_SENT,
        status_at=now, created_at=now)
    db.add(message)
    db.flush()
    for position, target in enumerate(planned.targets):
        db.add(MessageTarget(message_id=message.id, position=position, appointment_key=target.appointment_key,
                             patient_key=target.patient_key, appointment_version=target.appointment_version))
    db.add(MessageEvent(message_id=message.id, at=now, status=MessageStatus.NOT_SENT, source=source, detail=detail))
    return message
