"""The last look before a send: is this message still right, against the latest mirror?

Planning fixed a channel, an address and a language; a sync since then may have changed any of them
(a new mobile number, consent withdrawn in the PMS, a STOP, another language), or the subject itself
(a recall closed, an order picked up). :func:`stale` says when the message must not go at all;
:func:`route` says where it goes now, with a note for the history on each thing that changed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from vitalsync.core.vocab import AppointmentStatus, Channel, MessageStatus
from vitalsync.mirror.tables import Appointment, Location, OptOut, Patient, Pickup, Provider, Recall
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.rules.kinds import MessageKind, Trigger
from vitalsync.rules.plan import root_key
from vitalsync.rules.recipients import usable

ADDRESS = {"sms": "mobile number", "email": "email address", "voice": "phone number"}


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
    if message.subject_key and kind.trigger is Trigger.RECALL_DUE:
        return _recall_stale(db, message, facts.recall, now)
    if message.subject_key and kind.trigger is Trigger.PICKUP_READY:
        if facts.pickup is None:
            return MessageStatus.CANCELLED, "order no longer in the PMS"
        if facts.pickup.picked_up:
            return MessageStatus.CANCELLED, "order picked up"
    return None


def _recall_stale(db: Session, message: Message, recall: Recall | None, now: datetime) -> tuple[str, str] | None:
    """Whether the recall is still due as planned: open, at the same date, and the patient not booked since."""
    if recall is None or not recall.active:
        return MessageStatus.CANCELLED, "recall no longer due (closed or removed in the PMS)"
    # the planned due date is the last part of the message's key (rules.plan: kind|recall:KEY|offset|due)
    if root_key(message.key).rsplit("|", 1)[-1] != recall.due.isoformat():
        return MessageStatus.CANCELLED, "recall due date changed in the PMS; planned again for the new date"
    booked = db.exec(select(Appointment.key).where(Appointment.patient_key == recall.patient_key,
                                                   Appointment.status == AppointmentStatus.SCHEDULED,
                                                   Appointment.start > now)).first()
    if booked is not None:
        return MessageStatus.CANCELLED, "patient booked an appointment since planning"
    return None


@dataclass(frozen=True)
class Route:
    """Where a message goes now: its channel, address and language, and what changed since planning."""

    channel: str
    address: str
    language: str
    notes: tuple[str, ...] = ()  #: one history row each, without the addresses themselves


def route(db: Session, message: Message, kind: MessageKind, facts: Facts, senders: Collection[str], *,
          leaving: str | None = None) -> Route | str:
    """The message's route by the mirror as it is now, or why no channel can carry it.

    Its own channel at the patient's *current* address when that channel may still be used (an
    address, consent in the PMS, no opt-out, a sender); else the next of the kind's channels that
    may, in the kind's order and never back to an earlier one. ``leaving`` gives a reason the
    message's own channel is out (it was just tried), so only later channels are looked at.
    """
    patient = facts.patient
    order = [Channel(c).value for c in kind.channels]
    start = order.index(message.channel) if message.channel in order else 0
    problems = [f"{message.channel}: {leaving}"] if leaving else []
    for channel in order[start + (1 if leaving else 0):]:
        address, problem = usable(Channel(channel), patient, lambda *key: opted_out(db, *key))
        if address and channel not in senders:
            address, problem = None, "no sender configured"
        if not address:
            problems.append(f"{channel}: {problem}")
            continue
        notes = []
        if problems:
            notes.append(f"{'; '.join(problems)}; falling back to {channel}")
        elif address != message.address:
            notes.append(f"{channel}: the patient's {ADDRESS[channel]} changed in the PMS since planning; "
                         "sending to the current one")
        language = patient.language or message.language
        if language != message.language:
            notes.append(f"language changed in the PMS since planning ({message.language} → {language})")
        return Route(channel, address, language, tuple(notes))
    return "no usable contact now (" + "; ".join(problems) + ")"
