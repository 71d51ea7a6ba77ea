"""Email from patients: Inbound Parse replies (to our Reply-To) and SendGrid's unsubscribe events.

A reply is found by the token in the address it was sent to (``reply+TOKEN@reply_domain``) and read
from its first own line with the same rules as a text (:func:`~vitalsync.status.record.record_reply`);
a reply without a known token is taken as one to the latest email to its sender that asked for an
answer, as a text is. ``unsubscribe``, ``group_unsubscribe`` and ``spamreport`` opt the address out
of email; ``group_resubscribe`` lifts that opt-out. Inbound Parse signs nothing: the secret is in
its URL (a path segment, or basic-auth credentials), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from base64 import b64decode
from datetime import datetime

from sqlmodel import Session, delete, select

from vitalsync.core.vocab import Channel
from vitalsync.mirror.tables import OptOut
from vitalsync.queue.tables import Message
from vitalsync.status.email_reply import read_inbound
from vitalsync.status.inbox import Arrival, Processed
from vitalsync.status.record import record_reply

OPT_OUT_EVENTS = {"unsubscribe", "group_unsubscribe", "spamreport"}
OPT_IN_EVENTS = {"group_resubscribe"}
MESSAGE_ID = re.compile(r"(?im)^message-id:\s*(<[^>\r\n]+>)")


def authorised(secret: str | None, path_secret: str | None, authorization: str) -> bool:
    """The post carries the inbound secret, in its path or as the basic-auth password."""
    if not secret:
        return False
    offered = path_secret or ""
    if not offered and authorization.lower().startswith("basic "):
        try:
            offered = b64decode(authorization[6:].strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    return bool(offered) and hmac.compare_digest(offered.encode(), secret.encode())


def inbound_arrival(fields: dict[str, str]) -> Arrival:
    """The post as an inbox event: keyed by its Message-ID (SendGrid resends the same mail on a retry)."""
    found = MESSAGE_ID.search(fields.get("headers", "") or fields.get("email", "")[:20_000])
    identity = found.group(1) if found else json.dumps(fields, sort_keys=True)
    event_id = hashlib.sha256(identity.encode()).hexdigest()
    return Arrival("sendgrid", "email_reply", event_id, json.dumps(fields, ensure_ascii=False))


def process_email_reply(db: Session, context, arrival: Arrival, received_at: datetime, now: datetime) -> Processed:
    reply = read_inbound(json.loads(arrival.payload))
    message = None
    if reply.token:
        message = db.exec(select(Message).where(Message.reply_token == reply.token)).first()
    recorded = record_reply(db, context.config, Channel.EMAIL.value, reply.sender, reply.line, received_at,
                            message=message)
    return Processed("reply_recorded", {"source": "sendgrid_inbound", "intent": str(recorded.intent),
                                        "matched": recorded.message_id is not None,
                                        "needs_staff": recorded.needs_staff}, recorded)


def process_email_engagement(db: Session, context, arrival: Arrival, received_at: datetime, now: datetime) -> Processed:
    """An unsubscribe or spam report (email opt-out), or a resubscribe (lifted)."""
    item = json.loads(arrival.payload)
    address, event = str(item.get("email", "")).strip().lower(), str(item.get("event", ""))
    if not address:
        return Processed("email_event_ignored", {"source": "sendgrid"})
    if event in OPT_IN_EVENTS:
        db.exec(delete(OptOut).where(OptOut.channel == Channel.EMAIL.value, OptOut.address == address,
                                     OptOut.source == "provider"))
        return Processed("opt_out_lifted", {"source": "sendgrid", "channel": "email"})
    reference = str(item.get("sg_message_id", "")).split(".", 1)[0]  # the email it came from, if any
    message = db.exec(select(Message).where(Message.provider_ref == reference)).first() if reference else None
    db.add(OptOut(channel=Channel.EMAIL.value, address=address, source="provider", at=received_at,
                  patient_key=message.patient_key if message else None))
    return Processed("opt_out_recorded", {"source": "sendgrid", "channel": "email"})
