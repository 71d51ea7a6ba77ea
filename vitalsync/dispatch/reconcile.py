"""``reconcile_once``: settle messages flagged ``needs_reconciliation`` by asking the provider.

A send that timed out, or a process that died mid-send, leaves a message whose outcome is unknown.
For each one the message is rendered again exactly as dispatch rendered it, and the channel's sender
is asked (``find(outgoing, since, exclude=...)``) whether the provider holds that message for that
recipient, other than the ones other messages already own:

- SMS (Twilio's message list by recipient and DateSent): a message with exactly that body;
- email (SendGrid's Email Activity API): a message to that address carrying our message id in its
  custom args;
- voice (Twilio's call list by recipient, caller and StartTime): a call from our number to that
  recipient; calls carry no text, so an unowned one is taken to be this message's.

Then:

- found: the message is ``sent``, with the provider's reference;
- not found (the sender can look, the lookup answered, nothing unclaimed to that recipient is
  there, and the flag is older than ``SETTLE``): back to ``not_sent`` with its lease and
  in-flight mark cleared, so dispatch sends it once more. This is the only way a resend happens;
- the sender cannot look (no ``find``) or the lookup failed (SendGrid answers 403 on accounts without
  the Email Activity add-on): left alone, flagged for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from sqlmodel import select

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.db import session
from vitalsync.core.vocab import MessageStatus
from vitalsync.dispatch.claim import release
from vitalsync.dispatch.recheck import gather
from vitalsync.dispatch.run import Dispatcher
from vitalsync.dispatch.sender import Sender
from vitalsync.queue.outbox import transition
from vitalsync.queue.tables import Message, MessageEvent
from vitalsync.rules.kinds import MessageKind

log = structlog.get_logger("vitalsync.reconcile")
LOOK_BACK = timedelta(days=1)  #: how far before the flag the provider is searched
#: a message the provider accepted may show in its list only once sent; until then absence proves nothing
SETTLE = timedelta(minutes=10)
NOT_FOUND = "not at the provider; sent again"


@dataclass
class ReconcileReport:
    sent: int = 0  #: found at the provider
    requeued: int = 0  #: provably not there: dispatch sends it once
    left: int = 0  #: no way to look, or the lookup failed


def reconcile_once(engine: Engine, senders: dict[str, Sender], kinds: dict[str, MessageKind], config: Config,
                   clock: Clock) -> ReconcileReport:
    report = ReconcileReport()
    renderer = Dispatcher(engine, kinds, senders, config, clock, owner="reconciler")
    with session(engine) as db:
        flagged = list(db.exec(select(Message.id).where(Message.status == MessageStatus.NEEDS_RECONCILIATION)
                               .order_by(Message.id)))
    for message_id in flagged:
        outcome = _settle(engine, renderer, senders, kinds, clock, message_id)
        setattr(report, outcome, getattr(report, outcome) + 1)
    if flagged:
        log.info("reconcile_done", **report.__dict__)
    return report


def _settle(engine: Engine, renderer: Dispatcher, senders: dict[str, Sender], kinds: dict[str, MessageKind],
            clock: Clock, message_id: int) -> str:
    with session(engine) as db:
        message = db.get(Message, message_id)
        find = getattr(senders.get(message.channel), "find", None)
        if not callable(find):
            return "left"
        try:
            outgoing = renderer._outgoing(message, kinds.get(message.kind), gather(db, message, kinds.get(message.kind)))
            owned = set(db.exec(select(Message.provider_ref).where(
                Message.address == message.address, Message.id != message.id, Message.provider_ref.is_not(None))))
        except Exception:  # noqa: BLE001 - the body cannot be rebuilt: nothing can be proven
            log.exception("reconcile_render_failed", message_id=message_id)
            return "left"
        since = message.status_at - LOOK_BACK
        channel, address = message.channel, message.address
        settled = clock.now() - message.status_at >= SETTLE
    try:  # no transaction is held while the provider answers
        reference = find(outgoing, since, exclude=owned)
    except Exception as exc:  # noqa: BLE001 - a lookup that failed proves nothing: never resend on it
        log.warning("reconcile_lookup_failed", message_id=message_id, channel=channel, error_type=type(exc).__name__)
        return "left"
    if reference is None and not settled:
        return "left"
    with session(engine) as db:
        query = select(Message).where(Message.id == message_id)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        message = db.exec(query).one()
        if (message.status != MessageStatus.NEEDS_RECONCILIATION or message.channel != channel
                or message.address != address):
            return "left"  # someone else settled it meanwhile
        now = clock.now()
        message.in_flight = False
        release(message)
        if reference is not None:
            message.provider_ref, message.sent_at = reference, message.sent_at or message.status_at
            transition(db, message, MessageStatus.SENT, at=now, source="reconciler", detail="found at the provider")
            outcome = "sent"
        else:  # transition() never moves a flagged message back to not_sent: only this proof may
            message.status, message.status_at, message.reason = MessageStatus.NOT_SENT, now, NOT_FOUND
            db.add(MessageEvent(message_id=message.id, at=now, status=MessageStatus.NOT_SENT, source="reconciler",
                                detail=NOT_FOUND))
            outcome = "requeued"
        db.add(message)
        db.commit()
    return outcome
