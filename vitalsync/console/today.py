"""The Today page's data: one day's appointments by location and provider, each with its
confirmation state and its last message. Four queries for the whole day, whatever its size."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import col, select

from vitalsync.console.access import Scope
from vitalsync.core.db import session
from vitalsync.core.vocab import AppointmentStatus, MessageStatus
from vitalsync.mirror.tables import Appointment, Location, Patient, Provider
from vitalsync.queue.tables import Message, MessageTarget

CHUNK = 900  #: below SQLite's limit on bound parameters
UNREACHED = {MessageStatus.NOT_RECEIVED, MessageStatus.FAILED}
REACHED = {MessageStatus.SENT, MessageStatus.RECEIVED}


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone)


def today(engine: Engine, day: date, zone: ZoneInfo, scope: Scope) -> list[dict]:
    """Groups ``{"location", "provider", "appointments": [...]}`` in location, provider order."""
    start, end = day_bounds(day, zone)
    query = (select(Appointment, Patient.first_name, Patient.last_name)
             .join(Patient, Patient.key == Appointment.patient_key, isouter=True)
             .where(Appointment.start >= start, Appointment.start < end, Appointment.status != AppointmentStatus.DELETED)
             .order_by(Appointment.location_key, Appointment.provider_key, Appointment.start))
    if scope.locations:
        query = query.where(col(Appointment.location_key).in_(scope.locations))
    if scope.provider:
        query = query.where(Appointment.provider_key == scope.provider)
    with session(engine) as db:
        rows = db.exec(query).all()
        locations = {loc.key: loc.name for loc in db.exec(select(Location))}
        providers = {p.key: p.name for p in db.exec(select(Provider))}
        messages = _messages_by_appointment(db, [a.key for a, _, _ in rows])
    groups: dict[tuple, list] = defaultdict(list)
    for appointment, first, last in rows:
        mine = messages.get(appointment.key, [])
        latest = max(mine, key=lambda m: (m.status_at or m.send_at, m.id), default=None)
        groups[(appointment.location_key, appointment.provider_key)].append({
            "key": appointment.key, "start": appointment.start, "type": appointment.type,
            "status": appointment.status, "patient": appointment.patient_key,
            "patient_name": f"{first or ''} {last or ''}".strip() or appointment.patient_key,
            "state": confirmation_state(appointment.status, mine),
            "last": {"kind": latest.kind, "channel": latest.channel, "status": latest.status,
                     "at": latest.status_at or latest.send_at} if latest else None,
        })
    return [{"location": locations.get(loc, loc), "provider": providers.get(prov, prov or "(none)"), "appointments": appts}
            for (loc, prov), appts in groups.items()]


def _messages_by_appointment(db, keys: list[str]) -> dict[str, list[Message]]:
    found: dict[str, list[Message]] = defaultdict(list)
    for part in range(0, len(keys), CHUNK):
        query = (select(MessageTarget.appointment_key, Message)
                 .join(Message, Message.id == MessageTarget.message_id)
                 .where(col(MessageTarget.appointment_key).in_(keys[part:part + CHUNK])))
        for key, message in db.exec(query):
            found[key].append(message)
    return found


def confirmation_state(appointment_status: str, messages: list[Message]) -> str:
    """confirmed / declined (the patient's latest answer), else reached, unreachable, pending or none."""
    if appointment_status == AppointmentStatus.CANCELLED:
        return "cancelled"
    answers = [m for m in messages if m.status in (MessageStatus.CONFIRMED, MessageStatus.DECLINED)]
    if answers:
        return max(answers, key=lambda m: m.status_at).status
    statuses = {MessageStatus(m.status) for m in messages}
    if statuses & REACHED:
        return "reached"
    if statuses & UNREACHED:
        return "unreachable"
    if MessageStatus.NOT_SENT in statuses:
        return "pending"
    return "no message"
