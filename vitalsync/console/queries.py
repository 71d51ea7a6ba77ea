"""What the front desk reads: the message log, the report per kind, the why of an appointment, the queue.

Each view returns plain dicts: the JSON the CLI prints (documented in the README) and what the
console's pages render. The CLI and the console share these queries; neither has its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, update
from sqlmodel import col, or_, select

from vitalsync.console.skips import planning_skips
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.mirror.tables import Appointment, SyncRun
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Decision, Message, MessageEvent, MessageTarget

LOG_COLUMNS = ["id", "kind", "channel", "address", "language", "status", "patient", "appointments", "send_at", "reason"]
REACHED = (MessageStatus.RECEIVED, MessageStatus.CONFIRMED, MessageStatus.DECLINED)


@dataclass
class Filter:
    kind: str | None = None
    status: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    patient: str | None = None
    appointment: str | None = None
    #: who may see what: only messages about appointments at these locations / with this provider
    locations: list[str] = field(default_factory=list)
    provider: str | None = None

    def apply(self, query):
        if self.kind:
            query = query.where(Message.kind == self.kind)
        if self.status:
            query = query.where(Message.status == self.status)
        if self.channel:
            query = query.where(Message.channel == self.channel)
        if self.since:
            query = query.where(Message.send_at >= self.since)
        if self.until:
            query = query.where(Message.send_at < self.until)
        if self.patient:
            query = query.where(or_(Message.patient_key == self.patient, col(Message.id).in_(
                select(MessageTarget.message_id).where(MessageTarget.patient_key == self.patient))))
        if self.appointment:
            query = query.where(col(Message.id).in_(
                select(MessageTarget.message_id).where(MessageTarget.appointment_key == self.appointment)))
        if self.locations or self.provider:
            scoped = select(MessageTarget.message_id).join(Appointment, Appointment.key == MessageTarget.appointment_key)
            if self.locations:
                scoped = scoped.where(col(Appointment.location_key).in_(self.locations))
            if self.provider:
                scoped = scoped.where(Appointment.provider_key == self.provider)
            query = query.where(col(Message.id).in_(scoped))
        return query


def count(engine: Engine, where: Filter) -> int:
    with session(engine) as db:
        return db.exec(where.apply(select(func.count()).select_from(Message))).one()


def message_log(engine: Engine, where: Filter, *, history: bool = True, limit: int | None = None, offset: int = 0,
                newest_first: bool = False) -> list[dict]:
    """Messages in send order (the console: newest first, a page at a time), each with its
    appointments and, with ``history``, its status history; three queries whatever the count."""
    with session(engine) as db:
        order = (col(Message.send_at).desc(), col(Message.id).desc()) if newest_first else (Message.send_at, Message.id)
        query = where.apply(select(Message)).order_by(*order)
        if limit:
            query = query.limit(limit).offset(offset)
        messages = db.exec(query).all()
        ids = [m.id for m in messages]
        events, targets, answers = defaultdict(list), defaultdict(list), defaultdict(dict)
        for chunk in range(0, len(ids), 900):
            part = ids[chunk:chunk + 900]
            if history:
                for event in db.exec(select(MessageEvent).where(col(MessageEvent.message_id).in_(part)).order_by(MessageEvent.id)):
                    events[event.message_id].append(event)
            for target in db.exec(select(MessageTarget).where(col(MessageTarget.message_id).in_(part))):
                targets[target.message_id].append(target.appointment_key)
                if target.answer:
                    answers[target.message_id][target.appointment_key] = target.answer
    return [_row(m, targets[m.id], answers[m.id], events[m.id] if history else None) for m in messages]


def _row(message: Message, appointments: list[str], answers: dict[str, str], events) -> dict:
    row = {
        "id": message.id, "kind": message.kind, "channel": message.channel,
        "address": message.address,  #: the number or email it goes to, as planned (or as dispatch last changed it)
        "language": message.language, "status": message.status,
        "patient": message.patient_key, "appointments": appointments,
        "answers": answers,  #: appointment -> confirmed / declined, as each member answered
        "send_at": _iso(message.send_at),
        "sent_at": _iso(message.sent_at), "status_at": _iso(message.status_at), "attempts": message.attempts,
        "reason": message.reason,
    }
    if events is not None:
        row["history"] = [{"at": _iso(e.at), "status": e.status, "source": e.source, "detail": e.detail} for e in events]
    return row


def report(engine: Engine, where: Filter) -> list[dict]:
    """Per message kind: how many were sent, reached, answered, with rates over those sent.

    ``skipped`` counts the messages skipped at dispatch and the subjects planning skipped without
    any message (``skipped_in_planning``, see :mod:`vitalsync.console.skips`)."""
    with session(engine) as db:
        rows = db.exec(where.apply(select(Message.kind, Message.status, func.count()).select_from(Message))
                       .group_by(Message.kind, Message.status)).all()
    counts: dict[str, Counter] = defaultdict(Counter)
    for kind, status, number in rows:
        counts[kind][status] += number
    unreached = planning_skips(engine, where)
    result = []
    for kind in sorted(set(counts) | set(unreached)):
        c = counts[kind]
        sent = sum(c[s] for s in (MessageStatus.SENT, MessageStatus.RECEIVED, MessageStatus.NOT_RECEIVED,
                                  MessageStatus.CONFIRMED, MessageStatus.DECLINED, MessageStatus.NEEDS_RECONCILIATION))
        received = sum(c[s] for s in REACHED)
        result.append({
            "kind": kind, "planned": sum(c.values()), "sent": sent, "received": received,
            "not_received": c[MessageStatus.NOT_RECEIVED], "confirmed": c[MessageStatus.CONFIRMED],
            "declined": c[MessageStatus.DECLINED], "pending": c[MessageStatus.NOT_SENT],
            "cancelled": c[MessageStatus.CANCELLED], "skipped": c[MessageStatus.SKIPPED] + unreached[kind],
            "skipped_in_planning": unreached[kind], "failed": c[MessageStatus.FAILED],
            "received_rate": _rate(received, sent), "confirm_rate": _rate(c[MessageStatus.CONFIRMED], sent),
            "decline_rate": _rate(c[MessageStatus.DECLINED], sent),
        })
    return result


def why(engine: Engine, appointment: str) -> dict:
    with session(engine) as db:
        decisions = db.exec(select(Decision).where(Decision.appointment_key == appointment).order_by(Decision.at, Decision.id)).all()
    return {
        "appointment": appointment,
        "decisions": [{"at": _iso(d.at), "kind": d.kind, "decision": d.decision, "reason": d.reason,
                       "channel": d.channel, "message": d.message_id} for d in decisions],
        "messages": message_log(engine, Filter(appointment=appointment)),
    }


def pending(engine: Engine, where: Filter) -> list[dict]:
    where.status = MessageStatus.NOT_SENT.value
    return message_log(engine, where, history=False)


def cancel_pending(engine: Engine, where: Filter, at: datetime, who: str) -> int:
    where.status = MessageStatus.NOT_SENT.value
    with session(engine) as db:
        messages = db.exec(where.apply(select(Message))).all()
        done = sum(transition(db, m, MessageStatus.CANCELLED, at=at, source="staff", detail=f"cancelled by {who}") for m in messages)
        db.commit()
    return done


def move_pending(engine: Engine, where: Filter, to: datetime) -> int:
    where.status = MessageStatus.NOT_SENT.value
    with session(engine) as db:
        ids = db.exec(where.apply(select(Message.id))).all()
        if ids:
            db.execute(update(Message).where(col(Message.id).in_(ids)).values(send_at=to))
        db.commit()
    return len(ids)


def sync_runs(engine: Engine, limit: int = 10) -> list[dict]:
    with session(engine) as db:
        runs = db.exec(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)).all()
    return [{"id": r.id, "mode": r.mode, "outcome": r.outcome, "started_at": _iso(r.started_at), "rows_read": r.rows_read,
             "changed": r.changed, "removed": r.removed, "rejected": r.rejected, "seconds": r.seconds, "detail": r.detail}
            for r in runs]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
