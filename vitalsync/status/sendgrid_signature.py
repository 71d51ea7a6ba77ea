"""SendGrid's Event Webhook at the edge: the ECDSA signature check, and its event names in our vocabulary.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256 / SHA-256 and shows the public key as
base64 DER (SubjectPublicKeyInfo). Events carry our custom args as top-level keys, and
``sg_message_id`` is the send's X-Message-Id followed by ``.filter…`` per recipient.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from vitalsync.core.vocab import MessageStatus

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
CUSTOM_ARG = "vitalsync_message"  #: set by the SendGrid sender; carries our message id

#: SendGrid event → our outcome; None means "noted, the status does not move".
SENDGRID_EVENTS: dict[str, MessageStatus | None] = {
    "processed": None,  # accepted into SendGrid's queue: no news for the patient
    "deferred": None,  # a temporary refusal; SendGrid keeps trying for up to 72 hours
    "delivered": MessageStatus.RECEIVED,
    "open": MessageStatus.RECEIVED,  # an open proves delivery even when 'delivered' is lost or late
    "click": MessageStatus.RECEIVED,
    "bounce": MessageStatus.NOT_RECEIVED,  # also type 'blocked'
    "dropped": MessageStatus.NOT_RECEIVED,  # suppressed: bounced before, unsubscribed, spam-reported, invalid
    "spamreport": None,
    "unsubscribe": None,
    "group_unsubscribe": None,
    "group_resubscribe": None,
}


@dataclass(frozen=True)
class SendGridEvent:
    event_id: str  #: sg_event_id, the dedupe key
    event: str
    reference: str  #: the X-Message-Id the sender returned
    status: MessageStatus | None
    at: datetime
    message_id: int | None  #: from our custom arg, when present
    detail: str = ""  #: never the SMTP text, which may quote the address
    payload: str = ""  #: the event's own JSON object, as stored in the inbox


def verify_sendgrid(public_key_b64: str, payload: bytes, signature_b64: str, timestamp: str, *,
                    now: datetime | None = None, tolerance: timedelta = timedelta(minutes=5)) -> bool:
    """True when SendGrid signed ``timestamp + payload``; False for anything else, garbage included.

    SendGrid sets no replay window; pass ``now`` to refuse timestamps further than ``tolerance`` from it.
    """
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64, validate=True))
        signature = base64.b64decode(signature_b64, validate=True)
        if not isinstance(key, ec.EllipticCurvePublicKey) or not timestamp.isdigit():
            return False
        if now is not None and abs(now.timestamp() - int(timestamp)) > tolerance.total_seconds():
            return False
        key.verify(signature, timestamp.encode("ascii") + payload, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, binascii.Error, UnicodeError):
        return False


def parse_events(payload: bytes) -> list[SendGridEvent]:
    """The events of one (verified) batch; malformed entries and unknown event names are left out."""
    try:
        batch = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return []
    events = []
    for item in batch if isinstance(batch, list) else []:
        try:
            name, event_id = str(item["event"]), str(item["sg_event_id"])
            reference = str(item["sg_message_id"]).split(".", 1)[0]
            at = datetime.fromtimestamp(int(item["timestamp"]), timezone.utc)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            continue
        if name not in SENDGRID_EVENTS or not reference:
            continue
        raw_id = str(item.get(CUSTOM_ARG, ""))
        detail = name
        if name == "bounce":
            detail = f"bounce {item.get('type', '')} {item.get('status', '')}".strip()
        elif name == "dropped":
            detail = f"dropped: {item.get('reason', '')}"
        events.append(SendGridEvent(event_id, name, reference, SENDGRID_EVENTS[name], at,
                                    int(raw_id) if raw_id.isdigit() else None, detail,
                                    json.dumps(item, separators=(",", ":"), ensure_ascii=False)))
    return events
