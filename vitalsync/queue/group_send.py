"""Group sends: staff send a manual kind to the appointments of one day (``vitalsync send``, the
console's Send to a group page). ``preview`` reads and writes nothing; ``start`` queues the
messages, records the group send and the decisions, all in one transaction.

The messages are ordinary queue rows: dispatch sends them like any other (its re-check, opt-outs,
send window, channel fallback), and their idempotency keys make a repeated send a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vitalsync.core.config import Config
from vitalsync.core.db import session
from vitalsync.core.errors import PersonMustAct, RetryLater
from vitalsync.core.vocab import Channel
from vitalsync.mirror.tables import Appointment, Location, OptOut, Patient, Provider
from vitalsync.queue.outbox import decide, enqueue
from vitalsync.queue.tables import GroupSend, Message, MessageTarget
from vitalsync.rules.group import GroupPlan, Sent, plan_group
from vitalsync.rules.kinds import MessageKind, Trigger
from vitalsync.rules.plan import PlannedMessage
from vitalsync.rules.render import build_context, render
from vitalsync.rules.schedule import base_window
from vitalsync.rules.snapshot import Snapshot

log = structlog.get_logger("vitalsync.group_send")
CHUNK = 900  #: keys per IN (...): SQLite allows 999 parameters a statement


@dataclass(frozen=True)
class GroupFilter:
    """Which appointments a group send goes to: one day, optionally narrowed by place, provider and type."""

    kind: str
    day: date  #: the appointments' day in their location's time zone
    locations: tuple[str, ...] = ()  #: empty: every location
    provider: str = ""
    appointment_type: str = ""

    def described(self) -> str:
        """For the audit log and the CLI: keys and dates only."""
        parts = [f"kind={self.kind}", f"date={self.day.isoformat()}"]
        parts += [f"location={','.join(self.locations)}"] if self.locations else []
        parts += [f"provider={self.provider}"] if self.provider else []
        parts += [f"type={self.appointment_type}"] if self.appointment_type else []
        return " ".join(parts)


@dataclass(frozen=True)
class Example:
    """One message as the patient would get it (shown to staff before they confirm)."""

    channel: str
    language: str
    body: str
    subject: str | None = None
    family: int = 1  #: appointments it lists


@dataclass
class Preview:
    where: GroupFilter
    plan: GroupPlan
    examples: list[Example] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  #: why appointments are skipped, with counts


def manual_kinds(kinds: dict[str, MessageKind]) -> list[str]:
    return sorted(name for name, kind in kinds.items() if kind.trigger is Trigger.MANUAL)


def manual_kind(kinds: dict[str, MessageKind], name: str) -> MessageKind:
    """The enabled manual kind ``name``; a PersonMustAct naming the ones there are otherwise."""
    available = ", ".join(manual_kinds(kinds)) or "none is enabled"
    if name not in kinds:
        raise PersonMustAct(f"unknown or disabled message kind {name!r} (manual kinds: {available})")
    if kinds[name].trigger is not Trigger.MANUAL:
        raise PersonMustAct(f"{name!r} is planned automatically ({kinds[name].trigger.value}); a group send needs a "
                            f"manual kind ({available})")
    return kinds[name]


def preview(engine: Engine, kinds: dict[str, MessageKind], config: Config, where: GroupFilter, now: datetime,
            examples: int = 3) -> Preview:
    """What ``start`` would queue now, with a few messages rendered; writes nothing."""
    kind = manual_kind(kinds, where.kind)
    with session(engine) as db:
        plan, rows = _plan(db, kind, config, where, now)
        shown = [_example(kind, config, planned, rows) for planned in _varied(plan.messages, examples)]
    reasons: dict[str, int] = {}
    for note in plan.notes:
        if note.decision == "skipped":
            reasons[note.reason] = reasons.get(note.reason, 0) + 1
    return Preview(where, plan, shown, reasons)


def start(engine: Engine, kinds: dict[str, MessageKind], config: Config, where: GroupFilter, now: datetime, *,
          started_by: str, user_id: int | None = None) -> tuple[GroupSend, GroupPlan]:
    """Queue the group send's messages and record it; ``started_by`` is "console" (with ``user_id``), "cli" or "demo"."""
    kind = manual_kind(kinds, where.kind)
    with session(engine) as db:
        plan, _rows = _plan(db, kind, config, where, now)
        group = GroupSend(at=now, started_by=started_by, user_id=user_id, kind=kind.name, day=where.day,
                          locations=" ".join(where.locations), provider=where.provider,
                          appointment_type=where.appointment_type, matched=plan.matched, queued=len(plan.messages),
                          skipped=plan.skipped, already=plan.already)
        try:
            db.add(group)
            db.flush()
            _write(db, group, plan, now)
            db.commit()
        except IntegrityError:  # the same messages queued by a send started at the same moment
            db.rollback()
            raise RetryLater("another group send to these appointments was queued at the same moment; "
                             "start it again to see what is left") from None
        db.refresh(group)
    log.info("group_send_started", kind=kind.name, matched=plan.matched, queued=len(plan.messages), user_id=user_id)
    return group, plan


def history(engine: Engine, limit: int = 20) -> list[GroupSend]:
    with session(engine) as db:
        return list(db.exec(select(GroupSend).order_by(col(GroupSend.id).desc()).limit(limit)))


def who(group: GroupSend) -> str:
    return f"console user {group.user_id}" if group.started_by == "console" else group.started_by


@dataclass
class _Rows:
    """The mirror rows a group send is about, by key."""

    appointments: dict[str, Appointment]
    patients: dict[str, Patient]
    locations: dict[str, Location]
    providers: dict[str, Provider]


def _plan(db: Session, kind: MessageKind, config: Config, where: GroupFilter, now: datetime) -> tuple[GroupPlan, _Rows]:
    locations = {row.key: row for row in db.exec(select(Location))}
    providers = {p.key: p for p in db.exec(select(Provider))}
    _known(where, locations, providers)
    windows = {key: base_window(config, key, row.timezone) for key, row in locations.items()}
    windows[""] = base_window(config)
    appointments = [a for a in _candidates(db, where) if kind.filters.matches(a)
                    and a.start.astimezone((windows.get(a.location_key) or windows[""]).tz).date() == where.day]
    patient_keys = sorted({a.patient_key for a in appointments})
    patients = {p.key: p for p in _chunked(db, select(Patient), Patient.key, patient_keys)}
    addresses = sorted({a for p in patients.values() for a in (p.mobile, p.landline, p.email) if a})
    # by patient and by address, as dispatch's last look checks them: a STOP from a shared phone stops the family
    opt_outs = {(key, o.channel) for o in (*_chunked(db, select(OptOut), OptOut.patient_key, patient_keys),
                                           *_chunked(db, select(OptOut), OptOut.address, addresses))
                for key in (o.patient_key, o.address) if key}
    keys = [a.key for a in appointments]
    sent = [Sent(*row) for row in _chunked(
        db, select(Message.key, MessageTarget.appointment_key, MessageTarget.appointment_version)
        .join(MessageTarget, MessageTarget.message_id == Message.id).where(Message.kind == kind.name),
        MessageTarget.appointment_key, keys)]
    snap = Snapshot(now=now, horizon=now, default_tz=ZoneInfo(config.schedule.timezone), windows=windows,
                    patients=patients, locations=locations, appointments={a.key: a for a in appointments},
                    opt_outs=opt_outs)
    plan = plan_group(kind, appointments, snap, sent)
    return plan, _Rows(snap.appointments, patients, locations, providers)


def _known(where: GroupFilter, locations: dict, providers: dict) -> None:
    """A typo in a key would find no appointment and look like a quiet day: say so instead."""
    for key in where.locations:
        if key not in locations:
            raise PersonMustAct(f"unknown location {key!r} (locations: {', '.join(sorted(locations)) or 'none synced yet'})")
    if where.provider and where.provider not in providers:
        raise PersonMustAct(f"unknown provider {where.provider!r} (providers: {', '.join(sorted(providers)) or 'none synced yet'})")


def _candidates(db: Session, where: GroupFilter) -> list[Appointment]:
    """Appointments starting within a day either side of the day in UTC: every time zone's local day is inside."""
    low = datetime.combine(where.day, time(0), timezone.utc) - timedelta(days=1)
    query = select(Appointment).where(Appointment.start >= low, Appointment.start < low + timedelta(days=3))
    if where.locations:
        query = query.where(col(Appointment.location_key).in_(where.locations))
    if where.provider:
        query = query.where(Appointment.provider_key == where.provider)
    if where.appointment_type:
        query = query.where(Appointment.type == where.appointment_type)
    return list(db.exec(query))


def _chunked(db: Session, query, column, keys: list[str]) -> Iterable:
    for chunk in range(0, len(keys), CHUNK):
        yield from db.exec(query.where(col(column).in_(keys[chunk:chunk + CHUNK])))


def _write(db: Session, group: GroupSend, plan: GroupPlan, now: datetime) -> None:
    named = f"group send {group.id}"
    ids: dict[str, int] = {}
    for planned in plan.messages:
        ids[planned.key] = enqueue(db, planned, now, source="staff", detail=f"{named} started by {who(group)}").id
    for note in plan.notes:
        decide(db, key=f"{note.key}|group{group.id}", at=now, kind=note.kind, decision=note.decision,
               reason=f"{named}: {note.reason}", appointment_key=note.appointment_key, patient_key=note.patient_key,
               channel=note.channel, message_id=ids.get(note.message_key or ""))


def _varied(messages: list[PlannedMessage], number: int) -> list[PlannedMessage]:
    """``number`` messages, each channel, language and family message first: what staff should see before sending."""
    chosen, seen = [], set()
    for message in messages:
        trait = (message.channel, message.language, len(message.targets) > 1)
        if trait not in seen:
            chosen.append(message)
            seen.add(trait)
    chosen += [message for message in messages if message not in chosen]
    picked = chosen[:number]
    return [message for message in messages if message in picked]


def _example(kind: MessageKind, config: Config, planned: PlannedMessage, rows: _Rows) -> Example:
    """Rendered as dispatch will render it (``dispatch/run.py``), from the same rows."""
    members = []
    for target in planned.targets:
        appointment = rows.appointments[target.appointment_key]
        location = rows.locations.get(appointment.location_key) or Location(
            key=appointment.location_key, name="", timezone=config.schedule.timezone)
        members.append((appointment, location,
                        rows.providers.get(appointment.provider_key or ""), rows.patients[target.patient_key]))
    location = members[0][1]
    context = build_context(
        clinic_name=config.clinic.name, clinic_phone=config.clinic.phone, patient=rows.patients[planned.patient_key],
        language=planned.language, tz=ZoneInfo(location.timezone or config.schedule.timezone), appointments=members)
    rendered = render(kind, Channel(planned.channel), planned.language, context)
    return Example(planned.channel, planned.language, rendered.body, rendered.subject, len(members))
