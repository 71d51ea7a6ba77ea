"""Provider events into the lifecycle: deliveries move messages on, replies become answers."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlmodel import Session, delete, select

from vitalsync.core.config import Config
from vitalsync.core.vocab import AppointmentStatus, Channel, MessageStatus, ReplyIntent
from vitalsync.mirror.tables import Appointment, OptOut
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.status.replies import parse_reply
from vitalsync.status.tables import Reply

log = structlog.get_logger("vitalsync.status")
REPLY_WINDOW = timedelta(days=7)  #: a reply counts for a message sent at most this long before
AWAITING = (MessageStatus.SENT, MessageStatus.RECEIVED, MessageStatus.NOT_RECEIVED)


def record_delivery(db: Session, reference: str, delivered: bool, at: datetime, *, source: str, detail: str = "") -> bool:
    """Apply a delivery report; False when the message is unknown or the report is stale."""
    message = db.exec(select(Message).where(Message.provider_ref == reference)).first()
    if message is None:
        log.warning("delivery_for_unknown_message", source=source)
        return False
    status = MessageStatus.RECEIVED if delivered else MessageStatus.NOT_RECEIVED
    return transition(db, message, status, at=at, source=source, detail=detail)


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
    if intent in (ReplyIntent.CONFIRM, ReplyIntent.DECLINE):
        if message is None or message.status in (MessageStatus.CONFIRMED, MessageStatus.DECLINED):
            reply.needs_staff = message is None
        else:
            status = MessageStatus.CONFIRMED if intent is ReplyIntent.CONFIRM else MessageStatus.DECLINED
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
    db.add(reply)
    log.info("reply_recorded", intent=intent.value, matched=message is not None, needs_staff=reply.needs_staff)
    return reply


def _has_upcoming(db: Session, message: Message | None, at: datetime) -> bool:
    if message is None:
        return False
    keys = db.exec(select(MessageTarget.appointment_key).where(MessageTarget.message_id == message.id)).all()
    return db.exec(select(Appointment.key).where(Appointment.key.in_(keys), Appointment.start > at,
                                                 Appointment.status == AppointmentStatus.SCHEDULED)).first() is not None
