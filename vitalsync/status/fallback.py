"""After a permanent failure on one channel, the kind's next channel: once.

An email that bounced or was dropped, or a text Twilio reports undeliverable *to that number* (an
unreachable handset, an unknown or landline number, an invalid one), will never reach the patient
on that channel; trying again there is pointless, trying the next channel the kind lists is what
the front desk would have done by hand.

The failed message keeps its status: it was not received, and a message never moves back in the
lifecycle. A new message follows it on the next usable channel, due at once (dispatch defers it
into the send window and re-checks it as any other), keyed ``<failed key>|after:<failed channel>``.
That key is what makes "once" hold: a repeated bounce, a late one after a 'delivered', or two
callbacks racing find it there and add nothing. The follower may itself fail and be followed, only
ever by a later channel of the kind, so a chain ends after the kind's last channel. Both messages
get a history row naming the other; the follower's planning decision is in the trace.

Errors that say nothing about the number (carrier filtering, a full queue, an unknown error) are not
permanent here: the message stays not_received for a person to look at, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlmodel import Session, select

from vitalsync.core.vocab import Channel, DecisionKind, MessageStatus
from vitalsync.dispatch.recheck import opted_out
from vitalsync.mirror.tables import Patient
from vitalsync.queue.outbox import decide
from vitalsync.queue.tables import Message, MessageEvent, MessageTarget
from vitalsync.rules.kinds import MessageKind
from vitalsync.rules.plan import AFTER
from vitalsync.rules.recipients import usable

log = structlog.get_logger("vitalsync.status")

#: Twilio error codes that mean the number itself cannot take the message: unreachable handset
#: (30003), unknown destination (30005), landline or unreachable carrier (30006), invalid 'To'
#: number (21211), 'To' not a mobile number (21614).
PERMANENT_SMS_ERRORS = frozenset({30003, 30005, 30006, 21211, 21614})
_TWILIO_DETAIL = re.compile(r"twilio (?:undelivered|failed) (\d+)")


def permanent(detail: str) -> bool:
    """Whether a not-delivered report, by the detail the webhooks record, rules its channel out for good.

    SendGrid's ``bounce`` (the receiving server refused the address; a ``blocked`` bounce is not
    retried by SendGrid either) and ``dropped`` (suppressed: bounced before, unsubscribed, invalid);
    Twilio's undelivered / failed with one of :data:`PERMANENT_SMS_ERRORS`."""
    if detail.startswith(("bounce", "dropped")):
        return True
    match = _TWILIO_DETAIL.fullmatch(detail)
    return match is not None and int(match[1]) in PERMANENT_SMS_ERRORS


def after_failures(db: Session, kinds: dict[str, MessageKind] | None, failures: Iterable[tuple[int, str]],
                   at: datetime) -> int:
    """:func:`fall_back` for each (message id, detail) just recorded not received; how many were followed."""
    if kinds is None:
        return 0
    return sum(fall_back(db, kinds, message_id, detail, at) is not None
               for message_id, detail in failures if permanent(detail))


def fall_back(db: Session, kinds: dict[str, MessageKind], message_id: int, detail: str, at: datetime) -> Message | None:
    """The message that follows ``message_id`` on the kind's next usable channel, added to the session;
    None when it exists already or none may follow (a history row on the failed message says why)."""
    query = select(Message).where(Message.id == message_id)
    if db.get_bind().dialect.name == "postgresql":  # two callbacks for one message: the second waits, then sees the first's
        query = query.with_for_update()
    message = db.exec(query).first()
    kind = kinds.get(message.kind) if message else None
    if message is None or kind is None or message.status != MessageStatus.NOT_RECEIVED:
        return None
    key = f"{message.key}{AFTER}{message.channel}"
    if db.exec(select(Message.id).where(Message.key == key)).first() is not None:
        return None
    order = [Channel(c).value for c in kind.channels]
    later = order[order.index(message.channel) + 1:] if message.channel in order else []
    patient = db.get(Patient, message.patient_key)
    why_not = []
    if not later:
        why_not.append(f"{message.channel} is the kind's last channel")
    elif message.deadline is not None and message.deadline <= at:
        why_not.append("too late: the appointment has started")
    elif patient is None or not patient.active:
        why_not.append("patient inactive or no longer in the PMS")
    for channel in later if not why_not else ():
        address, problem = usable(Channel(channel), patient, lambda *k: opted_out(db, *k))
        if address:
            return _follow(db, message, key, channel, address, detail, at)
        why_not.append(f"{channel}: {problem}")
    db.add(MessageEvent(message_id=message.id, at=at, status=message.status, source="provider",
                        detail=f"{message.channel} failed for good ({detail}); no fallback: {'; '.join(why_not)}"))
    return None


def _follow(db: Session, message: Message, key: str, channel: str, address: str, detail: str, at: datetime) -> Message:
    follower = Message(key=key, kind=message.kind, channel=channel, address=address, patient_key=message.patient_key,
                       appointment_key=message.appointment_key, subject_key=message.subject_key,
                       language=message.language, asks_reply=message.asks_reply, send_at=at,
                       deadline=message.deadline, status=MessageStatus.NOT_SENT, status_at=at, created_at=at)
    db.add(follower)
    db.flush()
    targets = db.exec(select(MessageTarget).where(MessageTarget.message_id == message.id)).all()
    for target in targets:
        db.add(MessageTarget(message_id=follower.id, position=target.position, appointment_key=target.appointment_key,
                             patient_key=target.patient_key, appointment_version=target.appointment_version))
    why = f"{message.channel} failed for good ({detail})"
    db.add(MessageEvent(message_id=message.id, at=at, status=message.status, source="provider",
                        detail=f"{why}; falling back to {channel} as message {follower.id}"))
    db.add(MessageEvent(message_id=follower.id, at=at, status=MessageStatus.NOT_SENT, source="provider",
                        detail=f"follows message {message.id}: {why}"))
    for target in targets or (None,):
        appointment_key = target.appointment_key if target else message.appointment_key
        decide(db, key=f"{key}|queued|{appointment_key}", at=at, kind=message.kind, decision=DecisionKind.QUEUED,
               reason=f"{why}; falling back to {channel}", appointment_key=appointment_key,
               patient_key=target.patient_key if target else message.patient_key, subject_key=message.subject_key,
               message_id=follower.id, channel=channel)
    log.info("fallback_queued", kind=message.kind, channel=channel, message_id=follower.id)
    return follower
