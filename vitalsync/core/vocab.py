"""The internal vocabulary: every status is one of these enums, whatever a vendor calls it."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"  #: text message to a mobile number
    EMAIL = "email"  #: email
    VOICE = "voice"  #: automated phone call


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"  #: booked and upcoming (the only status reminders go to by default)
    COMPLETED = "completed"  #: the patient was seen
    CANCELLED = "cancelled"  #: cancelled or broken in the PMS
    NO_SHOW = "no_show"  #: the patient did not come
    DELETED = "deleted"  #: removed from the PMS


class MessageStatus(StrEnum):
    NOT_SENT = "not_sent"  #: queued, waiting for its time
    SENT = "sent"  #: handed to the provider
    RECEIVED = "received"  #: delivered (SMS delivered, email delivered, call answered)
    NOT_RECEIVED = "not_received"  #: undelivered, bounced, no answer
    CONFIRMED = "confirmed"  #: the patient confirmed
    DECLINED = "declined"  #: the patient declined
    CANCELLED = "cancelled"  #: superseded (appointment cancelled or moved, already confirmed)
    SKIPPED = "skipped"  #: not sent by policy: no usable contact, opted out, too late
    FAILED = "failed"  #: the provider refused it for good
    NEEDS_RECONCILIATION = "needs_reconciliation"  #: outcome unknown after a crash or timeout


#: How far along the lifecycle a status is; a message never moves to a lower rank.
STATUS_RANK = {
    MessageStatus.NOT_SENT: 0,
    MessageStatus.NEEDS_RECONCILIATION: 1,
    MessageStatus.SENT: 1,
    MessageStatus.RECEIVED: 2,
    MessageStatus.NOT_RECEIVED: 2,
    MessageStatus.CONFIRMED: 3,
    MessageStatus.DECLINED: 3,
    MessageStatus.CANCELLED: 4,
    MessageStatus.SKIPPED: 4,
    MessageStatus.FAILED: 4,
}

#: Statuses from which nothing moves on (except a reply that arrives after delivery).
FINAL = frozenset({MessageStatus.CANCELLED, MessageStatus.SKIPPED, MessageStatus.FAILED})


class DecisionKind(StrEnum):
    QUEUED = "queued"  #: a message was planned
    SKIPPED = "skipped"  #: no message, by policy (reason says which)
    SUPPRESSED = "suppressed"  #: folded into another message (family grouping) or stopped by a reply
    MOVED = "moved"  #: the appointment moved; the old message is cancelled, a new one planned
    CANCELLED = "cancelled"  #: a pending message was cancelled (reason says why)
    SENT = "sent"  #: dispatch handed the message over
    DEFERRED = "deferred"  #: dispatch moved the send time into the allowed window


class ReplyIntent(StrEnum):
    CONFIRM = "confirm"
    DECLINE = "decline"
    RESCHEDULE = "reschedule"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    UNKNOWN = "unknown"  #: a person must read it


class WriteStatus(StrEnum):
    """A write-back's state (``pms_write``): an answer on its way to the PMS."""

    PENDING = "pending"  #: waiting for its turn (or for the PMS to come back)
    DONE = "done"  #: the PMS has it
    HELD = "held"  #: the PMS refused it (bad key, unknown appointment): a person must look
    FAILED = "failed"  #: an unexpected error; a person must look
    SUPERSEDED = "superseded"  #: a later answer for the appointment replaced it before it was written
