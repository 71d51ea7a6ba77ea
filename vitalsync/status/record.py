"""Provider events into the lifecycle: deliveries move messages on, replies become answers."""

from __future__ import annotations

from dataclasses import dataclass
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
from vitalsync.status.deliveries import kept, kept_detail
from vitalsync.status.replies import ParsedReply, parse_reply
from vitalsync.status.tables import Reply
from vitalsync.status.writeback import enqueue_answers

log = structlog.get_logger("vitalsync.status")
REPLY_WINDOW = timedelta(days=7)  #: a reply counts for a message sent at most this long before
AWAITING = (MessageStatus.SENT, MessageStatus.RECEIVED, MessageStatus.NOT_RECEIVED)
ANSWERED = (MessageStatus.CONFIRMED, MessageStatus.DECLINED)


def record_delivery(db: Session, reference: str, delivered: bool, at: datetime, *, source: str, detail: str = "",
                    kinds: dict[str, MessageKind] | None = None) -> bool:
    """Apply a delivery report; False when the message is unknown or the report is stale.

    With ``kinds``, a permanent failure is followed on the kind's next channel (:mod:`vitalsync.status.fallback`)."""
    message = db.exec(select(Message).where(Message.provider_ref == reference)).first()
    if message is None:
        log.warning("delivery_for_unknown_message", source=source)
        return False
    status = MessageStatus.RECEIVED if delivered else MessageStatus.NOT_RECEIVED
    if transition(db, message, status, at=at, source=source, detail=detail):
        if not delivered:
            after_failures(db, kinds, [(message.id, detail)], at)
        return True
    if kept(MessageStatus(message.status), status):
        db.add(MessageEvent(message_id=message.id, at=at, status=message.status, source=source,
                            detail=kept_detail(status, detail)))
    return False


def awaiting_reply(db: Session, channel: str, address: str, at: datetime) -> Message | None:
    """The latest message to ``address`` that asked for a reply: the one a reply answers."""
    channels = [channel] if channel != Channel.SMS else [Channel.SMS.value, Channel.VOICE.value]
    query = (select(Message).where(Message.address == address, Message.asks_reply, Message.channel.in_(channels),
                                   Message.status.in_(AWAITING + ANSWERED),
                                   Message.sent_at >= at - REPLY_WINDOW)
             .order_by(Message.sent_at.desc()))
    return db.exec(query).first()


def record_reply(db: Session, config: Config, channel: str, address: str, body: str, at: datetime, *,
                 source: str = "reply", message: Message | None = None) -> Reply:
    """Store a patient's reply and act on it; the returned Reply carries any automatic answer.

    ``message``: the message the reply names (an email to its Reply-To token); else the latest one
    to ``address`` on the channel that asked for a reply."""
    parsed = parse_reply(body)
    message = message or awaiting_reply(db, channel, address, at)
    reply = Reply(at=at, channel=channel, address=address, body=body, intent=parsed.intent,
                  message_id=message.id if message else None, patient_key=message.patient_key if message else None)
    intent = parsed.intent
    if intent in (ReplyIntent.CONFIRM, ReplyIntent.DECLINE):
        answers = _answers(db, message, parsed) if message is not None else None
        if answers is None:  # no message to answer, or a member it did not list: a person sorts it out
            reply.needs_staff = True
            if message is not None:
                intent = reply.intent = ReplyIntent.UNKNOWN
        else:
            recorded = record_answer(db, message, answers, at, source=source, by_member=parsed.numbered)
            reply.changed = bool(recorded.changed)
            reply.needs_staff = recorded.needs_staff
    elif intent is ReplyIntent.OPT_OUT:
        # by text: texts and calls to the number (the carriers' rule); by email: emails to the address
        for opted in (Channel.EMAIL,) if channel == Channel.EMAIL else (Channel.SMS, Channel.VOICE):
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
    return reply  # the caller logs reply_recorded once it has committed


@dataclass(frozen=True)
class Recorded:
    """What one answer changed: the members it answered for the first time, and those whose earlier
    answer it changed (a message without targets counts as one member, ``None``)."""

    new: tuple[MessageTarget | None, ...] = ()
    changed: tuple[MessageTarget | None, ...] = ()
    declined: bool = False  #: the answer declined for at least one of them

    @property
    def needs_staff(self) -> bool:
        """A decline (a slot is free) or a changed mind (staff may have acted on the first answer)."""
        return bool(self.changed) or self.declined


def record_answer(db: Session, message: Message, answers: dict[int, MessageStatus], at: datetime, *,
                  source: str, by_member: bool = False) -> Recorded:
    """Record the patient's ``answers`` to ``message``: member number (1 = its first target) -> answer.

    The one place a confirm or decline is recorded, whatever it came by (SMS, email, a keypress).
    Each member's answer is kept on its target; a repeated answer records nothing. The message's
    status follows once every member has an answer: ``confirmed`` if anyone is coming, else
    ``declined``. A changed answer moves the message between those two: both are the patient's
    answer, of one rank, so the lifecycle still never goes back to an earlier status, and the
    history keeps every answer in order (a changed mind is a second row, "changed from ...").
    ``by_member``: the patient answered member by member ("C1 N2"), which the history says.
    """
    targets = _targets(db, message)
    by_member = by_member and bool(targets)
    whole = MessageStatus(message.status) if message.status in ANSWERED else None
    new, changed, notes, declined = [], [], [], False
    for number, answer in sorted(answers.items()):
        target = targets[number - 1] if targets else None
        before = (target.answer if target else None) or whole  # targets stored before members' own answers
        if before == answer:
            continue
        (changed if before else new).append(target)
        declined |= answer == MessageStatus.DECLINED
        if before:
            notes.append(f"member {number} changed from {before}" if by_member or len(targets) > 1
                         else f"changed from {before}")
        if target is not None:
            target.answer, target.answered_at = answer.value, at
            db.add(target)
    if not new and not changed:
        return Recorded()
    if by_member:
        said = "patient replied for " + "; ".join(
            f"member {n} (patient {targets[n - 1].patient_key}) {answers[n].value}" for n in sorted(answers))
    else:
        said = f"patient replied {'confirm' if MessageStatus.CONFIRMED in answers.values() else 'decline'}"
    detail = "; ".join([said, *notes])
    final = [t.answer or whole for t in targets] if targets else list(answers.values())
    status = None if None in final else (
        MessageStatus.CONFIRMED if MessageStatus.CONFIRMED in final else MessageStatus.DECLINED)
    if status is None or not transition(db, message, status, at=at, source=source, detail=detail):
        db.add(MessageEvent(message_id=message.id, at=at, status=message.status, source=source, detail=detail))
    return Recorded(tuple(new), tuple(changed), declined)


def _answers(db: Session, message: Message, parsed: ParsedReply) -> dict[int, MessageStatus] | None:
    """Member number -> answer; None when the reply names a member the message did not list.

    Member ``n`` is the n-th appointment the message listed; a whole-message answer ("C", "No,
    can't make it") answers for every member."""
    count = max(1, len(_targets(db, message)))
    if not parsed.numbered:
        answer = MessageStatus.CONFIRMED if parsed.intent is ReplyIntent.CONFIRM else MessageStatus.DECLINED
        return dict.fromkeys(range(1, count + 1), answer)
    answers = {n: MessageStatus.CONFIRMED for n in parsed.choices} | {n: MessageStatus.DECLINED for n in parsed.declined}
    return answers if max(answers) <= count else None


def _targets(db: Session, message: Message) -> list[MessageTarget]:
    return list(db.exec(select(MessageTarget).where(MessageTarget.message_id == message.id)
                        .order_by(MessageTarget.position)))


def _has_upcoming(db: Session, message: Message | None, at: datetime) -> bool:
    if message is None:
        return False
    keys = db.exec(select(MessageTarget.appointment_key).where(MessageTarget.message_id == message.id)).all()
    return db.exec(select(Appointment.key).where(Appointment.key.in_(keys), Appointment.start > at,
                                                 Appointment.status == AppointmentStatus.SCHEDULED)).first() is not None
