"""Needs attention: replies a person must read (unrecognised, reschedule requests, declines,
changed answers, opt-outs with an upcoming appointment) and patients who could not be reached for an upcoming
appointment. Each item can be marked handled; the mark keeps who and when. Only an item that is
on the user's list can be marked: one of another location, or one that does not exist (yet), cannot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import col, select

from vitalsync.console.access import Scope
from vitalsync.console.queries import Filter
from vitalsync.console.tables import HandledMark, StaffUser
from vitalsync.core.db import session
from vitalsync.core.vocab import AppointmentStatus, MessageStatus, ReplyIntent
from vitalsync.mirror.tables import Appointment
from vitalsync.queue.tables import Message, MessageTarget
from vitalsync.status.replies import parse_reply
from vitalsync.status.tables import Reply

LABELS = {ReplyIntent.UNKNOWN: "unrecognised reply", ReplyIntent.RESCHEDULE: "reschedule request",
          ReplyIntent.OPT_OUT: "opt-out, appointment upcoming"}
LIMIT = 500  #: the newest items; a longer list is not read by anyone


class NotAnItem(LookupError):
    """No such attention item for this user: unknown, not needing attention, or outside their scope."""


def _queries(now: datetime, scope: Scope):
    """The two lists' queries (replies a person must read; messages that did not reach), within ``scope``."""
    in_scope = Filter(locations=list(scope.locations), provider=scope.provider).apply(select(Message.id))
    replies = select(Reply).where(Reply.needs_staff)
    if scope.restricted:
        replies = replies.where(col(Reply.message_id).in_(in_scope))
    upcoming = (select(MessageTarget.message_id).join(Appointment, Appointment.key == MessageTarget.appointment_key)
                .where(Appointment.start > now, Appointment.status == AppointmentStatus.SCHEDULED))
    unreached = select(Message).where(col(Message.status).in_([MessageStatus.NOT_RECEIVED, MessageStatus.FAILED]),
                                      col(Message.id).in_(upcoming))
    if scope.restricted:
        unreached = unreached.where(col(Message.id).in_(in_scope))
    return replies, unreached


def attention(engine: Engine, now: datetime, scope: Scope, *, handled: bool = False) -> list[dict]:
    """Open items, newest first (``handled``: the handled ones instead, with who and when)."""
    replies, unreached = _queries(now, scope)
    replies = replies.order_by(col(Reply.at).desc()).limit(LIMIT)
    unreached = unreached.order_by(col(Message.status_at).desc()).limit(LIMIT)
    with session(engine) as db:
        items = [{"item": f"reply:{r.id}", "at": r.at, "what": label(r), "patient": r.patient_key,
                  "channel": r.channel, "text": r.body, "message": r.message_id} for r in db.exec(replies)]
        items += [{"item": f"message:{m.id}", "at": m.status_at, "what": "could not be reached", "patient": m.patient_key,
                   "channel": m.channel, "text": f"{m.kind}: {m.status} {m.reason}".strip(), "message": m.id}
                  for m in db.exec(unreached)]
        marks = {mark.item: (mark, name) for mark, name in db.exec(
            select(HandledMark, StaffUser.name).join(StaffUser, StaffUser.id == HandledMark.user_id)
            .where(col(HandledMark.item).in_([i["item"] for i in items])))} if items else {}
    for item in items:
        mark = marks.get(item["item"])
        item["handled_by"], item["handled_at"] = (mark[1], mark[0].at) if mark else (None, None)
    items = [i for i in items if bool(i["handled_by"]) == handled]
    return sorted(items, key=lambda i: i["at"], reverse=True)


def label(reply: Reply) -> str:
    """What a reply on the list is, in the front desk's words."""
    if reply.intent not in (ReplyIntent.CONFIRM, ReplyIntent.DECLINE):
        return LABELS.get(reply.intent, reply.intent)
    if reply.message_id is None:
        return "answer without a message"
    parsed = parse_reply(reply.body)
    if reply.changed and parsed.numbered:  # the text says which members, as the patient wrote it
        return "changed answer"
    if reply.changed:
        return f"changed answer: now {'confirmed' if parsed.intent is ReplyIntent.CONFIRM else 'declined'}"
    return "declined"  # of everyone, or of a member ("C1 N2"): only a decline needs a person


def mark_handled(engine: Engine, item: str, user: StaffUser, now: datetime, scope: Scope) -> bool:
    """Mark an item handled (once: the first person's mark stays); False when already marked.

    ValueError when ``item`` is not of the form reply:ID / message:ID; NotAnItem when it is not on
    this user's list (open or handled) now: unknown, out of their scope, or no longer needing anyone."""
    kind, _, ident = item.partition(":")
    if kind not in ("reply", "message") or not (ident.isascii() and ident.isdigit()) or len(ident) > 18:
        raise ValueError(f"not an attention item: {item!r}")
    replies, unreached = _queries(now, scope)
    exists = (replies.where(Reply.id == int(ident)) if kind == "reply"
              else unreached.where(Message.id == int(ident)))
    with session(engine) as db:
        if db.exec(exists.limit(1)).first() is None:
            raise NotAnItem(item)
        if db.get(HandledMark, item):
            return False
        db.add(HandledMark(item=item, user_id=user.id, at=now))
        if kind == "reply" and (reply := db.get(Reply, int(ident))):
            reply.handled_at, reply.handled_by = now, user.name
            db.add(reply)
        db.commit()
    return True
