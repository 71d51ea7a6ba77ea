"""The outbox's writes: status transitions with history, cancellations, and the decision trace."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from vitalsync.core.vocab import FINAL, STATUS_RANK, MessageStatus
from vitalsync.queue.tables import Decision, Message, MessageEvent


def transition(db: Session, message: Message, status: MessageStatus, *, at: datetime, source: str,
               detail: str = "") -> bool:
    """Move ``message`` to ``status`` and record it; False (nothing recorded) if that would go back.

    Final statuses stay final, and a late event never moves a message backwards: a 'delivered'
    that arrives after 'confirmed' leaves it confirmed.
    """
    if not moves(MessageStatus(message.status), status):
        return False
    message.status, message.status_at = status, at
    if detail:
        message.reason = detail
    db.add(message)
    db.add(MessageEvent(message_id=message.id, at=at, status=status, source=source, detail=detail))
    return True


def moves(current: MessageStatus, status: MessageStatus) -> bool:
    """Whether a message at ``current`` may move to ``status``: the rule :func:`transition` applies."""
    if current == status or current in FINAL:
        return False
    if STATUS_RANK[status] < STATUS_RANK[current] and current != MessageStatus.NEEDS_RECONCILIATION:
        return False
    return not (current == MessageStatus.NEEDS_RECONCILIATION and status == MessageStatus.NOT_SENT)


def decide(db: Session, *, key: str, at: datetime, kind: str, decision: str, reason: str, **where) -> None:
    db.add(Decision(key=key, at=at, kind=kind, decision=decision, reason=reason, **where))
