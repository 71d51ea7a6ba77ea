"""``refresh_once``: one sync of the mirror from a connector, all or nothing."""

from __future__ import annotations

import time

import structlog
from sqlalchemy import Engine, func
from sqlmodel import select
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from vitalsync.core.clock import Clock
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct, RetryLater, SyncHeld
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.mirror.store import apply_batch
from vitalsync.mirror.tables import Appointment, SyncRun
from vitalsync.sync.connector import Batch, Connector
from vitalsync.sync.guard import RemovalGuard

log = structlog.get_logger("vitalsync.sync")

#: Backoff between attempts at a transient read; tests set it to zero.
RETRY_WAIT = wait_exponential(multiplier=2, max=60)


def last_cursor(engine: Engine) -> str | None:
    with session(engine) as db:
        run = db.exec(select(SyncRun).where(SyncRun.outcome == "ok").order_by(SyncRun.id.desc())).first()
        return run.cursor if run else None


def refresh_once(engine: Engine, connector: Connector, clock: Clock, *, full: bool = False,
                 guard: RemovalGuard = RemovalGuard()) -> SyncRun:
    """Read the connector and apply what it returned; the mirror stays as it was on any failure.

    A full read when ``full`` or when no sync succeeded yet, else an incremental one. The report
    is stored as a ``SyncRun`` and returned; a held or failed sync raises after storing it.
    """
    since = None if full else last_cursor(engine)
    now = clock.now()
    started = time.monotonic()
    run = SyncRun(mode="incremental" if since else "full", started_at=now)
    try:
        batch = _read(connector, since, now)
        run.cursor = batch.cursor
        with session(engine) as db:
            upcoming = _upcoming(db, now)
            changes = apply_batch(db, batch, now)
            run.rows_read, run.rejected = changes.rows, len(batch.rejected)
            run.changed, run.removed = changes.changed, changes.removed
            guard.check(upcoming, changes.removed)
            run.outcome = "ok"
            run.detail = "; ".join(batch.rejected[:20]) + (f"; and {len(batch.rejected) - 20} more" if len(batch.rejected) > 20 else "")
            db.add(_finish(run, clock, started))
            db.commit()
    except (SyncHeld, PersonMustAct, RetryLater) as exc:
        run.outcome = "held" if isinstance(exc, SyncHeld) else "failed"
        run.detail = str(exc)
        _store(engine, _finish(run, clock, started))
        log.warning("sync_stopped", mode=run.mode, outcome=run.outcome, removed=run.removed)
        raise
    log.info("sync_done", mode=run.mode, rows=run.rows_read, changed=run.changed, removed=run.removed,
             rejected=run.rejected, seconds=round(time.monotonic() - started, 3))
    return run


def _read(connector: Connector, since: str | None, now) -> Batch:
    reader = retry(retry=retry_if_exception_type(RetryLater), stop=stop_after_attempt(4),
                   wait=RETRY_WAIT, reraise=True)(connector.read)
    return reader(since, now)


def upcoming_query(now):
    """The count of scheduled appointments after ``now``: the guard's measure, read before every sync
    (the (start, status) index answers it alone)."""
    return select(func.count()).select_from(Appointment).where(
        Appointment.status == AppointmentStatus.SCHEDULED, Appointment.start > now)


def _upcoming(db, now) -> int:
    return db.exec(upcoming_query(now)).one()


def _finish(run: SyncRun, clock: Clock, started: float) -> SyncRun:
    run.finished_at = clock.now()
    run.seconds = round(time.monotonic() - started, 3)
    return run


def _store(engine: Engine, run: SyncRun) -> None:
    with session(engine) as db:
        db.add(run)
        db.commit()


def pushed_sink(engine: Engine, clock: Clock):
    """A sink for a push connector: each pushed batch is applied and committed before the ACK."""
    def apply(batch: Batch) -> None:
        if batch.complete:
            raise ValueError("a pushed batch is never complete")
        with session(engine) as db:
            changes = apply_batch(db, batch, clock.now())
            db.commit()
        log.info("push_applied", rows=changes.rows, changed=changes.changed, removed=changes.removed)
    return apply
