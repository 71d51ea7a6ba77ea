"""``plan_once``: read a snapshot, run the rules, write the plan into the outbox."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine
from sqlmodel import Session, col, or_, select

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import session
from vitalsync.core.vocab import DecisionKind, MessageStatus
from vitalsync.mirror.tables import Appointment, Location, OptOut, Patient, Pickup, Recall
from vitalsync.queue.outbox import decide, enqueue, transition
from vitalsync.queue.tables import Decision, Message, MessageTarget
from vitalsync.rules.kinds import MessageKind, Trigger
from vitalsync.rules.pacing import Booked, Limits
from vitalsync.rules.plan import Plan, plan
from vitalsync.rules.schedule import base_window
from vitalsync.rules.snapshot import Pending, Snapshot

log = structlog.get_logger("vitalsync.plan")
PAST = timedelta(days=3)  #: after-appointment messages look this far back
KEPT = timedelta(days=21)  #: messages sent this long ago still count as existing for idempotency
WEEK = timedelta(days=7)  #: messages sent this long ago still count toward the frequency cap


@dataclass
class PlanReport:
    queued: int = 0
    cancelled: int = 0
    decisions: int = 0
    deferred: int = 0  #: queued messages the frequency cap moved to a later day (or skipped)


def plan_once(engine: Engine, kinds: dict[str, MessageKind], config: Config, clock: Clock) -> PlanReport:
    """Plan every enabled kind against the mirror and write the result. Planning twice is a no-op."""
    now = clock.now()
    with session(engine) as db:
        snap = load_snapshot(db, kinds, config, now, now + timedelta(days=config.daemon.plan_ahead_days))
        result = plan(list(kinds.values()), snap)
        report = apply_plan(db, result, now)
        db.commit()
    log.info("plan_done", queued=report.queued, cancelled=report.cancelled, decisions=report.decisions,
             deferred=report.deferred)
    return report


def load_snapshot(db: Session, kinds: dict[str, MessageKind], config: Config, now, horizon) -> Snapshot:
    locations = {row.key: row for row in db.exec(select(Location))}
    windows = {key: base_window(config, key, row.timezone) for key, row in locations.items()}
    windows[""] = base_window(config)
    lead = max((-offset for kind in kinds.values() for offset in kind.offsets), default=timedelta(0))
    appointments = {row.key: row for row in db.exec(select(Appointment).where(
        Appointment.start >= now - PAST, Appointment.start <= horizon + max(lead, timedelta(0))))}
    patients = {row.key: row for row in db.exec(select(Patient))}
    phones = Counter(p.mobile for p in patients.values() if p.active and p.mobile)
    phones.update(p.landline for p in patients.values() if p.active and p.landline and not p.mobile)
    phones.update(p.email for p in patients.values() if p.active and p.email)
    pickups = {row.key: row for row in db.exec(select(Pickup))}
    recent = now - KEPT
    messages = db.exec(select(Message).where(or_(Message.send_at >= recent, Message.status == MessageStatus.NOT_SENT))).all()
    targets: dict[int, list[MessageTarget]] = {}
    for target in db.exec(select(MessageTarget).where(col(MessageTarget.message_id).in_([m.id for m in messages]))) if messages else ():
        targets.setdefault(target.message_id, []).append(target)
    limits = Limits.from_config(config.schedule)
    return Snapshot(
        now=now, horizon=horizon, default_tz=ZoneInfo(config.schedule.timezone), windows=windows, patients=patients,
        locations=locations, appointments=appointments, recalls=list(db.exec(select(Recall))),
        pickups=pickups, opt_outs={(o.patient_key or o.address, o.channel) for o in db.exec(select(OptOut))},
        answered=_answers(messages, targets), existing_keys={m.key for m in messages}, address_count=dict(phones),
        pending=[_pending(m, targets.get(m.id, []), kinds, appointments, horizon) for m in messages
                 if m.status == MessageStatus.NOT_SENT],
        decided=set(db.exec(select(Decision.key).where(Decision.at >= recent))),
        limits=limits, booked=_booked(messages, kinds, limits, now, horizon - now, patients, appointments, pickups, windows))


def _booked(messages: list[Message], kinds: dict[str, MessageKind], limits: Limits, now, ahead: timedelta, patients,
            appointments, pickups, windows) -> list[Booked]:
    """Messages that hold a place at their address: sent in the last week, or queued.

    A queued message of a capped kind that is not due yet and not being sent is movable: planning
    may defer it when a message of a higher priority takes its day."""
    booked = []
    for m in messages:
        if m.sent_at is not None and m.sent_at >= now - WEEK:
            booked.append(Booked(m.id, m.kind, m.channel, m.address, m.sent_at))
        elif m.status == MessageStatus.NOT_SENT:
            leased = m.in_flight or (m.lease_until is not None and m.lease_until > now)
            movable = m.send_at > now and not leased and limits.capped(m.kind, m.channel) and m.kind in kinds
            if not movable:
                booked.append(Booked(m.id, m.kind, m.channel, m.address, m.send_at))
                continue
            appointment = appointments.get(m.appointment_key or "")
            pickup = pickups.get(m.subject_key or "") if appointment is None else None
            location = appointment.location_key if appointment else pickup.location_key if pickup else ""
            window = windows.get(location) or windows[""]
            patient = patients.get(m.patient_key)
            tz = ZoneInfo(patient.timezone) if patient and patient.timezone else window.tz
            # no appointment: the kind's late_grace after the time it was planned for, which was at most
            # ``ahead`` after it was planned (so deferring it again and again cannot push it further)
            until = m.deadline or m.created_at + ahead + kinds[m.kind].late_grace
            booked.append(Booked(m.id, m.kind, m.channel, m.address, m.send_at, True, m.deadline, until, window, tz))
    return booked


def _answers(messages: list[Message], targets: dict[int, list[MessageTarget]]) -> dict[str, str]:
    """Appointment key -> the patient's latest answer for it ("confirmed" / "declined").

    A member's own answer in a family message ("C1 N2") counts for that member's appointment even
    while the message as a whole still waits for the others: that is what stops their next reminder.
    A target without its own answer (rows written before members' answers were recorded) takes the
    whole message's status. Dispatch's last look (``dispatch.recheck.answered``) reads answers the same way.
    """
    answers = []
    for message in messages:
        whole = message.status if message.status in (MessageStatus.CONFIRMED, MessageStatus.DECLINED) else None
        for target in targets.get(message.id, ()):
            if target.answer:
                answers.append((target.answered_at or message.status_at, target.appointment_key, target.answer))
            elif whole:
                answers.append((message.status_at, target.appointment_key, str(whole)))
    return {key: answer for _, key, answer in sorted(answers, key=lambda a: a[0])}


def _pending(message: Message, targets, kinds, appointments, horizon) -> Pending:
    keys = tuple(t.appointment_key for t in sorted(targets, key=lambda t: t.position))
    evaluated = (message.kind in kinds and message.send_at <= horizon and all(k in appointments for k in keys)
                 and not _group_sent(kinds[message.kind]))
    return Pending(id=message.id, key=message.key, kind=message.kind, appointment_keys=keys,
                   versions=tuple(t.appointment_version for t in sorted(targets, key=lambda t: t.position)),
                   subject_key=message.subject_key, evaluated=evaluated)


def _group_sent(kind: MessageKind) -> bool:
    """A manual kind's messages come from group sends (``queue/group_send.py``), never from planning:
    planning wants none of them, so it must leave them alone rather than cancel them as unwanted.
    Dispatch's re-check still drops one whose appointment was cancelled or moved."""
    return kind.trigger is Trigger.MANUAL


def apply_plan(db: Session, result: Plan, now) -> PlanReport:
    report = PlanReport()
    ids: dict[str, int] = {}
    for planned in result.messages:
        ids[planned.key] = enqueue(db, planned, now, source="planner").id
        report.queued += 1
    for cancel in result.cancels:
        message = db.get(Message, cancel.message_id)
        if message and transition(db, message, MessageStatus.CANCELLED, at=now, source="planner", detail=cancel.reason):
            report.cancelled += 1
            decide(db, key=f"{message.key}|{cancel.decision}", at=now, kind=message.kind, decision=cancel.decision,
                   reason=cancel.reason, appointment_key=message.appointment_key, patient_key=message.patient_key,
                   subject_key=message.subject_key, message_id=message.id, channel=message.channel)
    for move in result.moves:
        message = db.get(Message, move.message_id)
        if message is None or message.status != MessageStatus.NOT_SENT:
            continue
        if move.send_at is None:
            if transition(db, message, MessageStatus.SKIPPED, at=now, source="planner", detail=move.reason):
                decide(db, key=f"{message.key}|skipped|cap", at=now, kind=message.kind, decision=DecisionKind.SKIPPED,
                       reason=move.reason, appointment_key=message.appointment_key, patient_key=message.patient_key,
                       subject_key=message.subject_key, message_id=message.id, channel=message.channel)
                report.deferred += 1
            continue
        message.send_at = move.send_at
        db.add(message)
        decide(db, key=f"{message.key}|deferred|{move.send_at.isoformat()}", at=now, kind=message.kind,
               decision=DecisionKind.DEFERRED, reason=f"{move.reason}; send at {move.send_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
               appointment_key=message.appointment_key, patient_key=message.patient_key,
               subject_key=message.subject_key, message_id=message.id, channel=message.channel)
        report.deferred += 1
    for note in result.notes:
        decide(db, key=note.key, at=now, kind=note.kind, decision=note.decision, reason=note.reason,
               appointment_key=note.appointment_key, patient_key=note.patient_key, subject_key=note.subject_key,
               channel=note.channel, message_id=ids.get(note.message_key or ""))
        report.decisions += 1
    return report
