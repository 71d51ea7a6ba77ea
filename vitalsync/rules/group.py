"""Group sends: a manual kind × the appointments staff picked × now → the messages to queue. Pure.

Planning (``rules/plan.py``) never plans a manual kind; staff start it for a day's appointments
("the office is closed tomorrow"), and this decides, per appointment, what planning decides for
its own kinds: the recipient and channel (the kind's fallback order, consent, opt-outs), the send
time (offsets count from the moment the send is started; the send window and quiet hours apply),
family grouping by address when the kind asks, and an idempotency key of the same shape as
planning's, so the same group send started twice queues nothing the second time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from vitalsync.core.vocab import DecisionKind
from vitalsync.mirror.tables import Appointment
from vitalsync.rules.kinds import MessageKind, Trigger
from vitalsync.rules.plan import Note, PlannedMessage
from vitalsync.rules.recipients import Recipient, choose
from vitalsync.rules.snapshot import Snapshot, Target
from vitalsync.rules.timing import send_time


@dataclass(frozen=True)
class Sent:
    """An earlier message of the kind about an appointment: its key and the version it was planned for."""

    key: str
    appointment_key: str
    appointment_version: int


@dataclass
class GroupPlan:
    matched: int = 0  #: appointments the filter found
    messages: list[PlannedMessage] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)  #: a decision per appointment: queued, suppressed or skipped
    skipped: int = 0  #: appointments no message reaches, each with a 'skipped' note saying why
    already: int = 0  #: appointments an earlier send of this kind already messaged


@dataclass(frozen=True)
class _Want:
    appointment: Appointment
    recipient: Recipient
    offset: timedelta


def plan_group(kind: MessageKind, appointments: list[Appointment], snap: Snapshot, sent: list[Sent]) -> GroupPlan:
    """What a group send of ``kind`` to ``appointments`` queues at ``snap.now``.

    ``sent`` are the kind's earlier messages about these appointments: an appointment already
    messaged at its current version (alone or in a family message) is counted, not messaged again.
    """
    if kind.trigger is not Trigger.MANUAL:
        raise ValueError(f"{kind.name} is not a manual kind")
    result = GroupPlan(matched=len(appointments))
    wants: list[_Want] = []
    for appointment in sorted(appointments, key=lambda a: (a.start, a.key)):
        patient = snap.patients.get(appointment.patient_key)
        offsets = [o for o in kind.offsets if not _covered(appointment, o, sent)]
        if not offsets:
            result.already += 1
            continue
        if patient is None or not patient.active:
            _skip(result, kind, appointment, "patient inactive or not in the mirror")
            continue
        recipient = choose(kind, patient, appointment.location_key, snap)
        if isinstance(recipient, str):
            _skip(result, kind, appointment, recipient)
            continue
        wants += [_Want(appointment, recipient, offset) for offset in offsets]
    for members in _by_address(kind, wants, snap):
        _queue(kind, members, snap, result)
    return result


def _covered(appointment: Appointment, offset: timedelta, sent: list[Sent]) -> bool:
    marker = f"|{offset_text(offset)}|"
    return any(s.appointment_key == appointment.key and s.appointment_version == appointment.version
               and marker in s.key for s in sent)


def _by_address(kind: MessageKind, wants: list[_Want], snap: Snapshot):
    """One group per message: each want alone, or, when the kind groups families, every want to
    the same address for the same day and location together."""
    if not kind.group_family:
        yield from ([w] for w in wants)
        return
    groups: dict[tuple, list[_Want]] = defaultdict(list)
    for want in wants:
        # per location too: the message names one place ("our Main Street office is closed")
        groups[(want.offset, want.recipient.channel, want.recipient.address, _day(want.appointment, snap),
                want.appointment.location_key)].append(want)
    yield from groups.values()


def _queue(kind: MessageKind, members: list[_Want], snap: Snapshot, result: GroupPlan) -> None:
    lead = members[0]
    offset, recipient = lead.offset, lead.recipient
    if len(members) == 1:
        key = f"{kind.name}|{lead.appointment.key}|{offset_text(offset)}|{lead.appointment.start.isoformat()}"
    else:
        key = f"{kind.name}|family|{offset_text(offset)}|" + "+".join(
            f"{m.appointment.key}@{m.appointment.start.isoformat()}" for m in members)
    deadline = min(m.appointment.start for m in members)
    when, reason = send_time(snap.now + offset, deadline, snap.now, kind.late_grace,
                             snap.window(lead.appointment.location_key), recipient.tz)
    decision = DecisionKind.QUEUED if when else DecisionKind.SKIPPED
    for member in members:
        suppressed = member is not lead and when is not None
        result.notes.append(Note(
            key=f"{key}|{decision}|{member.appointment.key}", kind=kind.name,
            decision=DecisionKind.SUPPRESSED if suppressed else decision,
            reason=f"grouped into one family message with appointment {lead.appointment.key}" if suppressed else reason,
            patient_key=member.appointment.patient_key, appointment_key=member.appointment.key,
            channel=recipient.channel, message_key=key))
    if when is None:
        result.skipped += len(members)
        return
    result.messages.append(PlannedMessage(
        key=key, kind=kind.name, channel=recipient.channel, address=recipient.address,
        patient_key=recipient.patient_key, language=recipient.language, asks_reply=kind.asks_reply, send_at=when,
        deadline=deadline, appointment_key=lead.appointment.key,
        targets=tuple(Target(m.appointment.key, m.appointment.patient_key, m.appointment.version) for m in members)))


def _skip(result: GroupPlan, kind: MessageKind, appointment: Appointment, reason: str) -> None:
    result.skipped += 1
    result.notes.append(Note(key=f"{kind.name}|{appointment.key}|{appointment.start.isoformat()}|{reason}",
                             kind=kind.name, decision=DecisionKind.SKIPPED, reason=reason,
                             patient_key=appointment.patient_key, appointment_key=appointment.key))


def _day(appointment: Appointment, snap: Snapshot) -> str:
    return appointment.start.astimezone(snap.window(appointment.location_key).tz).date().isoformat()


def offset_text(offset: timedelta) -> str:
    """The offset as keys write it (planning's form): "+0m", "-2880m"."""
    minutes = int(offset.total_seconds() // 60)
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes)}m"
