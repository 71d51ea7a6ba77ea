"""Planning skips: the subjects a kind wanted to message and could not reach at all.

A planning decision ``skipped`` that never became a message (no usable contact, opted out, inactive
in the PMS, its send time passed, no allowed send time before the appointment) leaves no row in the
message table, so counting messages alone would report "skipped 0" over 200 unreachable patients.
The report adds these, one per kind and subject (an appointment, a recall, a pick-up order), however
many planning passes or offsets recorded it, and only while no message of that kind reached the
subject (a two-day reminder skipped as too late, followed by the one-day reminder, is not a miss).

Left out on purpose: a skip because the patient already answered or already booked ("patient
already confirmed", "patient already has an appointment booked") is the message's goal met, not a
patient missed.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine, and_, exists, func
from sqlmodel import col, not_, select

from vitalsync.core.db import session
from vitalsync.core.vocab import DecisionKind
from vitalsync.mirror.tables import Appointment
from vitalsync.queue.tables import Decision, Message, MessageTarget

#: reasons of skips that are not misses: the patient already did what the message would ask
NOT_MISSED = "patient already %"


def planning_skips(engine: Engine, where) -> Counter:
    """Kind -> subjects skipped by planning without any message of that kind, under ``where``
    (a :class:`~vitalsync.console.queries.Filter`: its dates are read as the decision's time)."""
    subject = func.coalesce(Decision.appointment_key, Decision.subject_key, Decision.patient_key)
    sent_about_appointment = exists().where(
        MessageTarget.appointment_key == Decision.appointment_key,
        Message.id == MessageTarget.message_id, Message.kind == Decision.kind)
    sent_about_subject = exists().where(Message.subject_key == Decision.subject_key, Message.kind == Decision.kind)
    query = (select(Decision.kind, subject).distinct()
             .where(Decision.decision == DecisionKind.SKIPPED.value, col(Decision.message_id).is_(None),
                    not_(col(Decision.reason).like(NOT_MISSED)),
                    not_(and_(col(Decision.appointment_key).is_not(None), sent_about_appointment)),
                    not_(and_(col(Decision.subject_key).is_not(None), sent_about_subject))))
    if where.kind:
        query = query.where(Decision.kind == where.kind)
    if where.channel:  # a skip for want of any contact has no channel: it is not one channel's
        query = query.where(Decision.channel == where.channel)
    if where.since:
        query = query.where(Decision.at >= where.since)
    if where.until:
        query = query.where(Decision.at < where.until)
    if where.patient:
        query = query.where(Decision.patient_key == where.patient)
    if where.appointment:
        query = query.where(Decision.appointment_key == where.appointment)
    if where.locations or where.provider:  # a restricted user: only appointments in their scope
        scoped = select(Appointment.key)
        if where.locations:
            scoped = scoped.where(col(Appointment.location_key).in_(where.locations))
        if where.provider:
            scoped = scoped.where(Appointment.provider_key == where.provider)
        query = query.where(col(Decision.appointment_key).in_(scoped))
    if where.status and where.status != "skipped":
        return Counter()
    with session(engine) as db:
        return Counter(kind for kind, _ in db.exec(query))
