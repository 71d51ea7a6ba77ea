"""Provider events into the lifecycle: deliveries move messages on, replies become answers."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlmodel import Session, delete, select

from vitalsync.core.config import Config
from vitalsync.core.connector_config import writes_back
from vitalsync.core.vocab import AppointmentStatus, Channel, MessageStatus, ReplyIntent
from vitalsync.mirror.tables import Appointment, OptOut
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Message, MessageEvent, MessageTarget
from vitalsync.rules.kinds import MessageKind
from vitalsync.status.fallback import after_failures
from vitalsync.status.replies import ParsedReply, parse_reply
from vitalsync.status.tables import Reply
from vitalsync.status.writeback import enqueue_answers

log = structlog.get_logger("vitalsync.status")
REPLY_WINDOW = timedelta(days=7)  #: a reply counts for a message sent at most this long before
AWAITING = (MessageStatus.SENT, MessageStatus.RECEIVED, MessageStatus.NOT_RECEIVED)


def record_delivery(db: Session, reference: str, delivered: bool, at: datetime, *, source: str, detail: str = "",
                    kinds: dict[str, MessageKind] | None = None) -> bool:
    """Apply a delivery report; False when the message is unknown or the report is stale.

    With ``kinds``, a permanent failure is followed on the kind's next channel (:mod:`vitalsync.status.fallback`)."""
    message = db.exec(select(Message).where(Message.provider_ref == reference)).first()
    if message is None:
        log.warning("delivery_for_unknown_message", source=source)
        return False
    status = MessageStatus.RECEIVED if delivered else MessageStatus.NOT_RECEIVED
    moved = transition(db, message, status, at=at, source=source, detail=detail)
    if moved and not delivered:
        after_failures(db, kinds, [(message.id, detail)], at)
    return moved


def awaiting_reply(db: Session, channel: str, address: str, at: datetime) -> Message | None:
    """The latest message to ``address`` that asked for a reply: the one a reply answers."""
    channels = [channel] if channel != Channel.SMS else [Channel.SMS.value, Channel.VOICE.value]
    query = (select(Message).where(Message.address == address, Message.asks_reply, Message.channel.in_(channels),
                                   Message.status.in_(AWAITING + (MessageStatus.CONFIRMED, MessageStatus.DECLINED)),
                                   Message.sent_at >= at - REPLY_WINDOW)
             .order_by(Message.sent_at.desc()))
    return db.exec(query).first()


def record_reply(db: Session, config: Config, channel: str, address: str, body: str, at: datetime, *,
                 source: str = "reply") -> Reply:
    """Store a patient's reply and act on it; the returned Reply carries any automatic answer."""
    parsed = parse_reply(body)
    message = awaiting_reply(db, channel, address, at)
    reply = Reply(at=at, channel=channel, address=address, body=body, intent=parsed.intent,
                  message_id=message.id if message else None, patient_key=message.patient_key if message else None)
    intent = parsed.intent
    if intent in (ReplyIntent.CONFIRM, ReplyIntent.DECLINE) and message is not None and parsed.numbered:
        reply.needs_staff = not _answer_members(db, message, parsed, at, source)
    elif intent in (ReplyIntent.CONFIRM, ReplyIntent.DECLINE):
        if message is None or message.status in (MessageStatus.CONFIRMED, MessageStatus.DECLINED):
            reply.needs_staff = message is None
        else:
            status = MessageStatus.CONFIRMED if intent is ReplyIntent.CONFIRM else MessageStatus.DECLINED
            for target in _targets(db, message):
                target.answer, target.answered_at = status.value, at
                db.add(target)
            transition(db, message, status, at=at, source=source, detail=f"patient replied {intent.value}")
            reply.needs_staff = intent is ReplyIntent.DECLINE
    elif intent is ReplyIntent.OPT_OUT:
        for opted in (Channel.SMS, Channel.VOICE):
            db.add(OptOut(channel=opted.value, address=address, source="reply", at=at, patient_key=reply.patient_key))
        # the carrier already confirms a STOP; a second text from us would be one too many
        reply.needs_staff = _has_upcoming(db, message, at)
    elif intent is ReplyIntent.OPT_IN:
        db.exec(delete(OptOut).where(OptOut.address == address, OptOut.source == "reply"))
        reply.answer = f"You will get messages from {config.clinic.name} again. Reply STOP to opt out."
    elif intent is ReplyIntent.HELP:
        reply.answer = config.replies.help_text.format(clinic=config.clinic.name, phone=config.clinic.phone)
    else:
        reply.needs_staff = True
        reply.answer = config.replies.unknown_answer
    if message is not None and writes_back(config.connector):  # in this transaction: never lost
        enqueue_answers(db, message, at)
    db.add(reply)
    log.info("reply_recorded", intent=intent.value, matched=message is not None, needs_staff=reply.needs_staff)
    return reply


def _targets(db: Session, message: Message) -> list[MessageTarget]:
    return list(db.exec(select(MessageTarget).where(MessageTarget.message_id == message.id)
                        .order_by(MessageTarget.position)))


def _answer_members(db: Session, message: Message, parsed: ParsedReply, at: datetime, source: str) -> bool:
    """Record a numbered answer member by member; False (nothing recorded) when staff must read it.

    Member ``n`` is the n-th appointment the message listed. A number the message did not list, or
    an answer that changes a member's earlier one, goes to staff: the first records nothing, the
    second is recorded (the patient's latest word) and flagged. Once every member has answered, the
    message is ``confirmed`` if anyone is coming, else ``declined``; until then it keeps its status
    and the history shows who answered what.
    """
    targets = _targets(db, message)
    answers = {n: MessageStatus.CONFIRMED for n in parsed.choices} | {n: MessageStatus.DECLINED for n in parsed.declined}
    if max(answers) > len(targets):
        return False
    changed = False
    for number, answer in sorted(answers.items()):
        target = targets[number - 1]
        changed |= target.answer is not None and target.answer != answer
        target.answer, target.answered_at = answer.value, at
        db.add(target)
    detail = "; ".join(f"member {n} (patient {targets[n - 1].patient_key}) {answers[n].value}" for n in sorted(answers))
    final = [t.answer for t in targets]
    if None in final:
        db.add(MessageEvent(message_id=message.id, at=at, status=message.status, source=source,
                            detail=f"patient replied for {detail}"))
    else:
        status = MessageStatus.CONFIRMED if MessageStatus.CONFIRMED in final else MessageStatus.DECLINED
        if not transition(db, message, status, at=at, source=source, detail=f"patient replied for {detail}"):
            db.add(MessageEvent(message_id=message.id, at=at, status=message.status, source=source,
                                detail=f"patient replied for {detail}"))
    return not changed and not parsed.declined


def _has_upcoming(db: Session, message: Message | None, at: datetime) -> bool:
    if message is None:
        return False
    keys = db.exec(select(MessageTarget.appointment_key).where(MessageTarget.message_id == message.id)).all()
    return db.exec(select(Appointment.key).where(Appointment.key.in_(keys), Appointment.start > at,
                                                 Appointment.status == AppointmentStatus.SCHEDULED)).first() is not None
