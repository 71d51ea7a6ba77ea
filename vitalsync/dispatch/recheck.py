"""The last look before a send: is this message still right, against the latest mirror?"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from vitalsync.core.vocab import AppointmentStatus, MessageStatus
from vitalsync.mirror.tables import Appointment, Location, OptOut, Patient, Pickup, Provider, Recall
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.rules.kinds import MessageKind, Trigger


@dataclass
class Facts:
    """The mirror rows one message is about, read fresh."""

    patient: Patient | None
    members: list[tuple[Appointment, Location, Provider | None, Patient]] = field(default_factory=list)
    targets: list[MessageTarget] = field(default_factory=list)
    recall: Recall | None = None
    pickup: Pickup | None = None
    pickup_location: Location | None = None


def gather(db: Session, message: Message, kind: MessageKind | None) -> Facts:
    facts = Facts(patient=db.get(Patient, message.patient_key))
    facts.targets = list(db.exec(select(MessageTarget).where(MessageTarget.message_id == message.id)
                                 .order_by(MessageTarget.position)))
    for target in facts.targets:
        appointment = db.get(Appointment, target.appointment_key)
        if appointment is None:
            continue
        facts.members.append((appointment, db.get(Location, appointment.location_key),
                              db.get(Provider, appointment.provider_key) if appointment.provider_key else None,
                              db.get(Patient, target.patient_key)))
    trigger = kind.trigger if kind else None
    if message.subject_key and trigger is Trigger.RECALL_DUE:
        facts.recall = db.get(Recall, message.subject_key)
    if message.subject_key and trigger is Trigger.PICKUP_READY:
        facts.pickup = db.get(Pickup, message.subject_key)
        if facts.pickup:
            facts.pickup_location = db.get(Location, facts.pickup.location_key)
    return facts


def answers(db: Session, appointment_keys: list[str]) -> dict[str, str]:
    """Appointment key -> the latest answer for it: a member's own (family "C1"), else its message's."""
    stops = [MessageStatus.CONFIRMED, MessageStatus.DECLINED]
    rows = db.exec(select(MessageTarget.appointment_key, func.coalesce(MessageTarget.answer, Message.status))
                   .select_from(Message).join(MessageTarget, MessageTarget.message_id == Message.id)
                   .where(MessageTarget.appointment_key.in_(appointment_keys),
                          MessageTarget.answer.in_(stops) | (MessageTarget.answer.is_(None) & Message.status.in_(stops)))
                   .order_by(func.coalesce(MessageTarget.answered_at, Message.status_at))).all()
    return {key: str(answer) for key, answer in rows}


def opted_out(db: Session, patient_key: str, address: str, channel: str) -> bool:
    query = select(OptOut.id).where(OptOut.channel == channel,
                                    (OptOut.address == address) | (OptOut.patient_key == patient_key))
    return db.exec(query).first() is not None


def stale(db: Session, message: Message, kind: MessageKind | None, facts: Facts, now: datetime) -> tuple[str, str] | None:
    """(status, reason) when the message must not go out any more, else None."""
    if kind is None:
        return MessageStatus.CANCELLED, f"message kind '{message.kind}' is no longer enabled"
    if message.deadline is not None and message.deadline <= now:
        return MessageStatus.SKIPPED, "too late: the appointment has started"
    if facts.patient is None or not facts.patient.active:
        return MessageStatus.SKIPPED, "patient inactive or no longer in the PMS"
    for target in facts.targets:
        current = next((a for a, *_ in facts.members if a.key == target.appointment_key), None)
        if current is None or current.status in (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED):
            if kind.trigger is not Trigger.APPOINTMENT_CANCELLED:
                return MessageStatus.CANCELLED, "appointment cancelled since planning"
        elif current.version != target.appointment_version:
            return MessageStatus.CANCELLED, "appointment changed since planning; it is planned again"
    # Only when every member's answer stops it: a family message that some members answered still
    # goes out. Leaving them out is planning's job (it plans a message for the others at once); a
    # cancel here, moments before the send, would come too late for that and the others would get
    # no reminder at all.
    got = answers(db, [t.appointment_key for t in facts.targets]) if facts.targets else {}
    stops = [got.get(t.appointment_key) for t in facts.targets]
    if stops and all(answer in kind.stop_on for answer in stops):
        return MessageStatus.CANCELLED, f"patient already {stops[0]}"
    if facts.pickup is not None and facts.pickup.picked_up:
        return MessageStatus.CANCELLED, "order picked up"
    return None
