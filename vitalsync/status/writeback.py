"""Write-back: patients' answers reach the PMS through their own durable outbox (``pms_write``).

An answer recorded from a reply (SMS, voice key, ...) adds a row in the same transaction
(:func:`enqueue_answers`), so the PMS being away loses nothing. The daemon's write-back step
(:func:`write_back_once`) writes the due rows in order through the connector's ``write_answer``:

- done: the PMS has it;
- ``RetryLater`` (the PMS or the network is away): tried again after a backoff that doubles up to an
  hour, for as long as it takes; the pass stops there and the rest wait as long, since they would
  fail the same way (one probe per backoff, not one per row);
- ``PersonMustAct`` (a refused key, an unknown appointment): held, shown on the console's Sync page
  and by ``vitalsync check``, until a person releases it (:func:`retry_held`);
- anything else: failed, shown the same way.

Only the latest answer per appointment matters: a new answer supersedes the appointment's rows not
yet written, and a repeat of the answer the PMS has (or will get) adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, func, update
from sqlmodel import Session, select

from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.core.vocab import MessageStatus, WriteStatus
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.status.tables import PmsWrite
from vitalsync.sync.connector import WritesBack

log = structlog.get_logger("vitalsync.writeback")
ANSWERS = (MessageStatus.CONFIRMED.value, MessageStatus.DECLINED.value)
FIRST_RETRY, LAST_RETRY = timedelta(seconds=30), timedelta(hours=1)
OPEN = (WriteStatus.PENDING.value, WriteStatus.HELD.value, WriteStatus.FAILED.value)


def enqueue_answers(db: Session, message: Message, at: datetime) -> int:
    """Queue a write of each answer recorded on ``message`` at ``at``; the number queued."""
    targets = db.exec(select(MessageTarget).where(MessageTarget.message_id == message.id)).all()
    return sum(enqueue(db, t.appointment_key, t.answer, at) for t in targets
               if t.answer in ANSWERS and t.answered_at == at)


def enqueue(db: Session, appointment_key: str, answer: str, at: datetime) -> bool:
    """Queue ``answer`` for the appointment unless it is what its latest write says already."""
    rows = db.exec(select(PmsWrite).where(PmsWrite.appointment_key == appointment_key)
                   .order_by(PmsWrite.id.desc())).all()
    latest = next((r for r in rows if r.status != WriteStatus.SUPERSEDED), None)
    if latest is not None and latest.answer == answer:
        return False
    for row in rows:
        if row.status in OPEN:
            row.status, row.last_error = WriteStatus.SUPERSEDED.value, "a later answer replaced it"
            db.add(row)
    db.add(PmsWrite(key=f"{appointment_key}:{len(rows) + 1}:{answer}", appointment_key=appointment_key,
                    answer=answer, created_at=at, next_attempt_at=at))
    return True


@dataclass
class WriteBackReport:
    written: int = 0
    retrying: int = 0
    held: int = 0
    failed: int = 0


def write_back_once(engine: Engine, connector: WritesBack, now: datetime, *, limit: int = 100) -> WriteBackReport:
    """Write the due answers, oldest first; each outcome is committed before the next write."""
    report = WriteBackReport()
    with session(engine) as db:
        due = db.exec(select(PmsWrite.id).where(PmsWrite.status == WriteStatus.PENDING,
                                                PmsWrite.next_attempt_at <= now)
                      .order_by(PmsWrite.id).limit(limit)).all()
    for row_id in due:
        with session(engine) as db:
            row = db.get(PmsWrite, row_id)
            if row is None or row.status != WriteStatus.PENDING:  # superseded meanwhile
                continue
            row.attempts += 1
            try:
                connector.write_answer(row.appointment_key, row.answer)
            except RetryLater as exc:
                row.next_attempt_at, row.last_error = now + backoff(row.attempts), str(exc)
                report.retrying += 1
            except PersonMustAct as exc:
                row.status, row.last_error = WriteStatus.HELD.value, str(exc)
                report.held += 1
            except Exception as exc:  # noqa: BLE001 - a bug or a surprise: a person looks, the rest go on
                row.status, row.last_error = WriteStatus.FAILED.value, f"{type(exc).__name__}: {exc}"[:500]
                report.failed += 1
            else:
                row.status, row.done_at, row.last_error = WriteStatus.DONE.value, now, ""
                report.written += 1
            db.add(row)
            db.commit()
            log.info("write_back", outcome=row.status, attempts=row.attempts)
            if report.retrying:  # the PMS is away: the rest wait with this one, one probe per backoff
                _wait_for(engine, [i for i in due if i > row_id], row.next_attempt_at)
                break
    return report


def _wait_for(engine: Engine, ids: list[int], until: datetime) -> None:
    if ids:
        with session(engine) as db:
            db.exec(update(PmsWrite).where(PmsWrite.id.in_(ids), PmsWrite.status == WriteStatus.PENDING)
                    .values(next_attempt_at=until))
            db.commit()


def backoff(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)


def retry_held(engine: Engine, now: datetime) -> int:
    """Release held and failed writes (a person fixed the cause): each is tried at the next pass."""
    with session(engine) as db:
        rows = db.exec(select(PmsWrite).where(PmsWrite.status.in_((WriteStatus.HELD, WriteStatus.FAILED)))).all()
        for row in rows:
            row.status, row.next_attempt_at = WriteStatus.PENDING.value, now
            db.add(row)
        db.commit()
    return len(rows)


def write_back_state(engine: Engine, limit: int = 20) -> dict:
    """Counts per status, the next pending try, and the latest rows a person must look at."""
    with session(engine) as db:
        counts = dict(db.exec(select(PmsWrite.status, func.count()).group_by(PmsWrite.status)).all())
        next_try = db.exec(select(func.min(PmsWrite.next_attempt_at))
                           .where(PmsWrite.status == WriteStatus.PENDING)).one()
        stuck = db.exec(select(PmsWrite).where(PmsWrite.status.in_((WriteStatus.HELD, WriteStatus.FAILED)))
                        .order_by(PmsWrite.id.desc()).limit(limit)).all()
        retrying = db.exec(select(PmsWrite).where(PmsWrite.status == WriteStatus.PENDING, PmsWrite.attempts > 0)
                           .order_by(PmsWrite.id.desc()).limit(1)).first()
    return {"counts": {status.value: counts.get(status.value, 0) for status in WriteStatus},
            "next_attempt_at": next_try, "last_retry_error": retrying.last_error if retrying else "",
            "stuck": [{"appointment": r.appointment_key, "answer": r.answer, "status": r.status,
                       "attempts": r.attempts, "at": r.created_at, "error": r.last_error} for r in stuck]}
