"""Planning: message kinds × a snapshot of the mirror × now → a plan. Pure: no I/O, no clock.

For each kind, every subject (appointment, recall, pick-up order) it applies to yields the messages
it *wants* right now, each with an idempotency key. Wanted keys that do not exist yet are queued;
pending messages whose key is no longer wanted are cancelled with the reason. So planning twice
changes nothing, a moved appointment's old reminders are cancelled and new ones planned, and a
confirmed appointment's remaining reminders stop.

A message that failed for good on its channel is followed by one on the kind's next channel
(:mod:`vitalsync.status.fallback`), keyed ``<its key>|after:<its channel>``: planning wants it exactly
while it wants the message it follows (:func:`root_key`).

A kind with ``catch_up`` sends a send time that had already passed when it was first planned (the
first sync after install finds a recall due in ten days whose two-weeks-before time is gone) at the
next allowed moment while its trigger still lies ahead; of several such offsets of one subject only
the latest goes. New messages are then placed per address (``rules.pacing``): spaced apart and
within the frequency cap, which may also defer messages queued earlier (``Plan.moves``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from vitalsync.core.vocab import DecisionKind
from vitalsync.rules.kinds import MessageKind
from vitalsync.rules.pacing import Item, place
from vitalsync.rules.recipients import Recipient, choose
from vitalsync.rules.snapshot import Snapshot, Target
from vitalsync.rules.timing import send_time


AFTER = "|after:"  #: a fallback message's key: the failed message's key, this, and the channel that failed


def root_key(key: str) -> str:
    """The key planning gave the first message of a chain of fallbacks (``key`` itself for a planned one)."""
    return key.split(AFTER, 1)[0]


@dataclass(frozen=True)
class PlannedMessage:
    key: str
    kind: str
    channel: str
    address: str
    patient_key: str
    language: str
    asks_reply: bool
    send_at: datetime
    deadline: datetime | None
    appointment_key: str | None = None
    subject_key: str | None = None
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Note:
    """One decision for the trace; ``key`` makes recording it idempotent."""

    key: str
    kind: str
    decision: DecisionKind
    reason: str
    patient_key: str | None = None
    appointment_key: str | None = None
    subject_key: str | None = None
    channel: str | None = None
    message_key: str | None = None


@dataclass(frozen=True)
class Cancel:
    message_id: int
    reason: str
    decision: DecisionKind


@dataclass(frozen=True)
class Move:
    """A queued message the frequency cap defers (``send_at``) or, with no day left, skips (None)."""

    message_id: int
    send_at: datetime | None
    reason: str


@dataclass
class Plan:
    messages: list[PlannedMessage] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    #: the new messages as placing sees them (window, zone), by key
    placing: dict[str, Item] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Want:
    """A message a kind wants for a subject, before recipients are grouped."""

    key: str
    kind: MessageKind
    offset: timedelta
    due: datetime
    deadline: datetime | None
    recipient: Recipient
    location_key: str
    appointment_key: str | None = None
    subject_key: str | None = None
    targets: tuple[Target, ...] = ()
    day: str = ""
    members: tuple[Want, ...] = ()  #: a family message's own wants, one per appointment
    catch_up_until: datetime | None = None  #: a passed send time still goes before this (the trigger)
    superseded_by: timedelta | None = None  #: a later passed offset of the subject catches up instead


def plan(kinds: list[MessageKind], snap: Snapshot) -> Plan:
    result = Plan()
    wanted: set[str] = set()
    for kind in kinds:
        wants = list(_wants(kind, snap, result))
        for want in _group_families(kind, wants, snap):
            for one in _family_or_members(want, snap, result):
                wanted.add(one.key)
                if one.key not in snap.existing_keys:
                    _queue(one, snap, result)
    for pending in snap.pending:
        if root_key(pending.key) not in wanted and pending.evaluated:
            decision, reason = snap.why_unwanted(pending)
            result.cancels.append(Cancel(pending.id, reason, decision))
    _pace(result, snap)
    result.notes = [note for note in _unique(result.notes) if note.key not in snap.decided]
    return result


def _wants(kind: MessageKind, snap: Snapshot, result: Plan):
    for subject in snap.subjects(kind):
        if reason := subject.blocked_by(kind):
            result.notes.append(_note(kind, subject, DecisionKind.SKIPPED, reason))
            continue
        recipient = choose(kind, subject.patient, subject.location_key, snap)
        if isinstance(recipient, str):
            result.notes.append(_note(kind, subject, DecisionKind.SKIPPED, recipient))
            continue
        passed = [offset for offset in kind.offsets if subject.moment + offset < snap.now]
        for offset in kind.offsets:
            if subject.moment + offset > snap.horizon:
                continue
            latest = kind.catch_up and passed and offset == max(passed)
            yield Want(
                catch_up_until=subject.moment if latest else None,
                superseded_by=max(passed) if kind.catch_up and offset in passed and not latest else None,
                key=f"{kind.name}|{subject.key_part}|{_offset_text(offset)}|{subject.moment_text}",
                kind=kind, offset=offset, due=subject.moment + offset, deadline=subject.deadline(offset),
                recipient=recipient, location_key=subject.location_key,
                appointment_key=subject.appointment_key, subject_key=subject.subject_key,
                targets=subject.targets, day=subject.day)


def _group_families(kind: MessageKind, wants: list[Want], snap: Snapshot):
    """One want per shared address (phone or email) and day when the kind groups families; others pass through."""
    if not kind.group_family:
        yield from wants
        return
    groups: dict[tuple, list[Want]] = defaultdict(list)
    for want in wants:
        shared = snap.shares_address(want.recipient.address)
        groups[(want.offset, want.recipient.address, want.day) if shared else (want.key,)].append(want)
    for members in groups.values():
        if len(members) == 1:
            yield members[0]
            continue
        members.sort(key=lambda w: (w.due, w.appointment_key))
        key = f"{kind.name}|family|{_offset_text(members[0].offset)}|" + "+".join(
            f"{m.appointment_key}@{m.due.isoformat()}" for m in members)
        yield replace(members[0], key=key, targets=tuple(t for m in members for t in m.targets), members=tuple(members))


def _family_or_members(want: Want, snap: Snapshot, result: Plan):
    """The family message, or, when it has no send time (the first member's appointment is too
    early for it), each member's own message, so the later members are still reminded."""
    if not want.members:
        yield want
        return
    if want.key not in snap.existing_keys and _when(want, snap)[0] is None:
        yield from want.members
        return
    lead = want.members[0]
    for member in want.members[1:]:
        result.notes.append(Note(
            key=f"{want.key}|{member.appointment_key}", kind=want.kind.name, decision=DecisionKind.SUPPRESSED,
            reason=f"grouped into one family message with appointment {lead.appointment_key}",
            patient_key=member.recipient.patient_key, appointment_key=member.appointment_key,
            channel=lead.recipient.channel, message_key=want.key))
    yield want


def _when(want: Want, snap: Snapshot):
    window = snap.window(want.location_key)
    if want.superseded_by is not None:
        return None, (f"its send time {want.due.astimezone(UTC):%Y-%m-%d %H:%M} UTC had passed when it was first planned; "
                      f"the {_offset_text(want.superseded_by)} message catches up instead")
    return send_time(want.due, want.deadline, snap.now, want.kind.late_grace, window, want.recipient.tz,
                     want.catch_up_until)


def _queue(want: Want, snap: Snapshot, result: Plan) -> None:
    recipient, kind = want.recipient, want.kind
    when, reason = _when(want, snap)
    # every appointment of a family message gets the decision in its own trace
    for target in want.targets or (None,):
        appointment_key = target.appointment_key if target else want.appointment_key
        base = dict(kind=kind.name, patient_key=target.patient_key if target else recipient.patient_key,
                    appointment_key=appointment_key, subject_key=want.subject_key, channel=recipient.channel,
                    message_key=want.key)
        decision = DecisionKind.SKIPPED if when is None else DecisionKind.QUEUED
        result.notes.append(Note(key=f"{want.key}|{decision}|{appointment_key}", decision=decision, reason=reason, **base))
    if when is None:
        return
    result.messages.append(PlannedMessage(
        key=want.key, kind=kind.name, channel=recipient.channel, address=recipient.address,
        patient_key=recipient.patient_key, language=recipient.language, asks_reply=kind.asks_reply,
        send_at=when, deadline=want.deadline, appointment_key=want.appointment_key,
        subject_key=want.subject_key, targets=want.targets))
    result.placing[want.key] = Item(want.key, kind.name, recipient.channel, recipient.address, when, want.deadline,
                                    want.deadline or when + kind.late_grace, snap.window(want.location_key), recipient.tz)


def _pace(result: Plan, snap: Snapshot) -> None:
    """Place the new messages per address (spacing, cap) and defer queued ones that lost their day."""
    if snap.limits is None:
        return
    cancelled = {cancel.message_id for cancel in result.cancels}
    booked = [b for b in snap.booked if b.id not in cancelled]
    movable = {f"#{b.id}": b for b in booked if b.movable}
    items = list(result.placing.values()) + [
        Item(key, b.kind, b.channel, b.address, b.at, b.deadline, b.until, b.window, b.tz, b.id)
        for key, b in movable.items()]
    placed = place(items, [b for b in booked if not b.movable], snap.limits)
    changed = {key: p for key, p in placed.items() if p.reason and key not in movable}
    result.messages = [replace(m, send_at=changed[m.key].at) if m.key in changed else m
                       for m in result.messages if placed[m.key].at is not None]
    notes = []
    for note in result.notes:
        p = changed.get(note.message_key or "") if note.decision == DecisionKind.QUEUED else None
        if p is None:
            notes.append(note)
            continue
        decision = DecisionKind.DEFERRED if p.at else DecisionKind.SKIPPED
        reason = f"{p.reason}; send at {p.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if p.at else p.reason
        notes.append(replace(note, key=f"{note.message_key}|{decision}|{note.appointment_key}",
                             decision=decision, reason=reason))
    result.notes = notes
    for key, b in movable.items():
        if placed[key].at != b.at:
            result.moves.append(Move(b.id, placed[key].at, placed[key].reason))


def _note(kind: MessageKind, subject, decision: DecisionKind, reason: str) -> Note:
    return Note(key=f"{kind.name}|{subject.key_part}|{subject.moment_text}|{reason}", kind=kind.name,
                decision=decision, reason=reason, patient_key=subject.patient.key if subject.patient else None,
                appointment_key=subject.appointment_key, subject_key=subject.subject_key)


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes)}m"


def _unique(notes: list[Note]) -> list[Note]:
    return list({note.key: note for note in notes}.values())
