"""Staff alerts: each user chooses which events email them (a decline, an unreachable patient, an
unrecognised reply), per message kind, and may get a daily summary. ``alerts_once`` is the step
the daemon runs; an email sender (SendGrid, or the fake) sends.

Alert emails carry patient keys and a link to the console, never names, numbers or reply text:
email is not where patient details belong. Each alert goes once per user (``alert_sent``); only
events of the last day are considered, so enabling alerts never mails the whole history.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine
from sqlmodel import col, select

from vitalsync.console.access import scope_of
from vitalsync.console.queries import Filter
from vitalsync.console.tables import ANY_KIND, AlertChoice, AlertSent, HandledMark, StaffUser
from vitalsync.console.today import day_bounds
from vitalsync.core.config import Config
from vitalsync.core.db import session
from vitalsync.core.errors import SendError
from vitalsync.core.times import shown
from vitalsync.core.vocab import MessageStatus, ReplyIntent
from vitalsync.dispatch.sender import Outgoing, Sender
from vitalsync.mirror.tables import Appointment
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.status.tables import Reply

log = structlog.get_logger("vitalsync.alerts")
WINDOW = timedelta(days=1)
TEXT = {"declined": "a patient declined", "unreachable": "a patient could not be reached",
        "unrecognised": "a reply needs a person", "changed": "a patient changed their answer"}
#: events a user gets through another's choice: who wants to hear of declines wants to hear of a changed
#: mind either way (a slot given away after a decline, or freed after a confirm)
CHOSEN_AS = {"changed": "declined"}


@dataclass
class AlertReport:
    alerts: int = 0
    summaries: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Event:
    item: str  #: "event:ID" or "reply:ID"
    event: str  #: declined, unreachable, unrecognised, changed
    kind: str | None
    message_id: int | None
    patient: str | None
    at: datetime


def recent_events(db, since: datetime) -> list[Event]:
    """Since ``since``: declines and unreachable messages from the history, and the replies a person must
    read. A reply that changed an answer is one "changed" event (not also the decline it recorded); a
    family member's decline that left the message undecided is a "declined" event of its reply."""
    history = [Event(f"event:{e.id}", "declined" if e.status == MessageStatus.DECLINED else "unreachable", m.kind, m.id,
                     m.patient_key, e.at)
               for e, m in db.exec(select(MessageEvent, Message).join(Message, Message.id == MessageEvent.message_id)
                                   .where(MessageEvent.at >= since, col(MessageEvent.status).in_(
                                       [MessageStatus.DECLINED, MessageStatus.NOT_RECEIVED, MessageStatus.FAILED])))]
    declines = {(e.message_id, e.at) for e in history if e.event == "declined"}  # each recorded with its reply's time
    events, covered = [], set()
    for reply, kind in db.exec(select(Reply, Message.kind).join(Message, Message.id == Reply.message_id, isouter=True)
                               .where(Reply.at >= since, Reply.needs_staff)):
        answered = reply.intent in (ReplyIntent.CONFIRM, ReplyIntent.DECLINE) and reply.message_id is not None
        if reply.intent in (ReplyIntent.UNKNOWN, ReplyIntent.RESCHEDULE):
            event = "unrecognised"
        elif answered and reply.changed:
            covered.add((reply.message_id, reply.at))
            event = "changed"
        elif answered and (reply.message_id, reply.at) not in declines:
            event = "declined"  # a family member's: only a decline of someone needs a person
        else:
            continue
        events.append(Event(f"reply:{reply.id}", event, kind, reply.message_id, reply.patient_key, reply.at))
    events += [e for e in history if e.event != "declined" or (e.message_id, e.at) not in covered]
    return sorted(events, key=lambda e: e.at)


def alerts_once(engine: Engine, sender: Sender, config: Config, now: datetime) -> AlertReport:
    """Email each user the new events they chose, and the daily summary when it is due."""
    report = AlertReport()
    with session(engine) as db:
        users = db.exec(select(StaffUser).where(StaffUser.active, StaffUser.email != "")).all()
        choices: dict[int, set[tuple[str, str]]] = {}
        for choice in db.exec(select(AlertChoice)):
            choices.setdefault(choice.user_id, set()).add((choice.event, choice.kind))
        events = recent_events(db, now - WINDOW)
        sent = {(s.user_id, s.item) for s in db.exec(select(AlertSent).where(AlertSent.at >= now - WINDOW * 2))}
    for user in users:
        wanted = [e for e in events if (user.id, e.item) not in sent and _chosen(choices.get(user.id, set()), e)]
        visible = _visible(engine, user, {e.message_id for e in wanted if e.message_id})
        for event in wanted:
            if event.message_id not in visible and (event.message_id or scope_of(user).restricted):
                continue
            report.alerts += _send(engine, sender, user, event.item, now, _alert(config, event), report)
        if user.daily_summary and _summary_due(config, now) and (user.id, _summary_item(config, now)) not in sent:
            report.summaries += _send(engine, sender, user, _summary_item(config, now), now, summary(engine, config, now), report)
    return report


def _chosen(choices: set[tuple[str, str]], event: Event) -> bool:
    chosen_as = CHOSEN_AS.get(event.event, event.event)
    return (chosen_as, ANY_KIND) in choices or (chosen_as, event.kind) in choices


def _visible(engine: Engine, user: StaffUser, message_ids: set[int]) -> set[int]:
    scope = scope_of(user)
    if not scope.restricted or not message_ids:
        return message_ids
    where = Filter(locations=list(scope.locations), provider=scope.provider)
    with session(engine) as db:
        return set(db.exec(where.apply(select(Message.id)).where(col(Message.id).in_(message_ids))))


def _alert(config: Config, event: Event) -> tuple[str, str]:
    kind = (event.kind or "no message").replace("_", " ")
    link = f"\n\nOpen: {config.console.public_url.rstrip('/')}/patient/{event.patient}" if config.console.public_url and event.patient else ""
    return (f"vitalsync: {TEXT[event.event]} ({kind})",
            f"{TEXT[event.event].capitalize()}: patient {event.patient or 'unknown'}, {kind}, message {event.message_id or '-'}, "
            f"at {shown(event.at, _zone(config))}."
            f"{link}\n\nChange which events email you on the console's Alerts page.")


def _summary_due(config: Config, now: datetime) -> bool:
    local = now.astimezone(_zone(config))
    return local.time() >= config.console.summary_at


def _summary_item(config: Config, now: datetime) -> str:
    return f"summary:{now.astimezone(_zone(config)).date().isoformat()}"


def _zone(config: Config):
    from zoneinfo import ZoneInfo
    return ZoneInfo(config.schedule.timezone)


def summary(engine: Engine, config: Config, now: datetime) -> tuple[str, str]:
    """Yesterday's messages by outcome, today's appointments, and open items: counts only."""
    zone = _zone(config)
    today = now.astimezone(zone).date()
    start, end = day_bounds(today - timedelta(days=1), zone)
    with session(engine) as db:
        outcomes = Counter(db.exec(select(Message.status).where(Message.status_at >= start, Message.status_at < end)))
        day_start, day_end = day_bounds(today, zone)
        appointments = len(db.exec(select(Appointment.key).where(Appointment.start >= day_start, Appointment.start < day_end,
                                                                 Appointment.status == "scheduled")).all())
        handled = set(db.exec(select(HandledMark.item)))
        open_replies = sum(f"reply:{r}" not in handled for r in db.exec(select(Reply.id).where(Reply.needs_staff)))
    lines = [f"Yesterday ({today - timedelta(days=1)}):"] + [f"  {status.replace('_', ' ')}: {n}" for status, n in sorted(outcomes.items())]
    lines += [f"Today: {appointments} scheduled appointments.", f"Replies waiting for a person: {open_replies}."]
    if config.console.public_url:
        lines.append(f"Open: {config.console.public_url.rstrip('/')}/today")
    return f"vitalsync: daily summary for {today}", "\n".join(lines)


def _send(engine: Engine, sender: Sender, user: StaffUser, item: str, now: datetime, mail: tuple[str, str],
          report: AlertReport) -> int:
    subject, body = mail
    try:
        sender.send(Outgoing(message_id=0, key=f"alert:{user.id}:{item}", channel="email", to=user.email, body=body,
                             subject=subject))
    except SendError as exc:  # tried again at the next pass while the event is within the window
        report.failed += 1
        log.warning("alert_not_sent", user_id=user.id, error_type=type(exc).__name__)
        return 0
    with session(engine) as db:
        db.add(AlertSent(user_id=user.id, item=item, at=now))
        db.commit()
    return 1
