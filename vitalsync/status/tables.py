"""Patients' replies: what they wrote, what it meant, and whether a person has handled it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from vitalsync.mirror.tables import when


class Reply(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = when()
    channel: str
    address: str = Field(index=True)
    body: str  #: kept for the front desk; never logged
    intent: str  #: a ReplyIntent
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    patient_key: str | None = Field(default=None, index=True)
    needs_staff: bool = Field(default=False, index=True)
    #: the reply changed an earlier answer (confirmed -> declined or back): a changed mind staff must see
    changed: bool = False
    answer: str = ""  #: the automatic answer sent back, if any
    handled_at: datetime | None = when(nullable=True)
    handled_by: str | None = None


class PmsWrite(SQLModel, table=True):
    """A patient's answer on its way to the PMS (``[connector] write_back``): the write-back outbox.

    Added in the transaction that records the answer, so an answer is never lost while the PMS is
    away; written by the daemon's write-back step. ``key`` (appointment, n-th write, answer) keeps
    two recordings of one answer from racing in twice. ``last_error`` holds the connector's message
    (no patient data: an appointment number and the PMS's HTTP status).
    """

    __tablename__ = "pms_write"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    appointment_key: str = Field(index=True)
    answer: str  #: confirmed / declined
    status: str = Field(default="pending", index=True)  #: a WriteStatus
    created_at: datetime = when()
    attempts: int = 0
    next_attempt_at: datetime = when()
    done_at: datetime | None = when(nullable=True)
    last_error: str = ""


class InboxEvent(SQLModel, table=True):
    """A provider's event as it arrived, signature checked, stored before it is acknowledged.

    Written first and processed after: at once in the same request when it can be, else by the
    daemon's inbox step (:mod:`vitalsync.status.inbox`). ``(provider, kind, event_id)`` is unique, so a
    replayed or retried event is stored once and acted on once, in any process.
    """

    __tablename__ = "inbox_event"
    __table_args__ = (
        UniqueConstraint("provider", "kind", "event_id", name="uq_inbox_event_provider_kind_event_id"),
        # only the pending few: an index over every row would cost each delivery report one more insert
        Index("ix_inbox_event_pending", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str  #: twilio, sendgrid
    kind: str  #: sms_inbound, sms_status, voice_status, voice_gather, email_event, …
    event_id: str  #: the provider's id of this event (MessageSid; CallSid and digits; sg_event_id; …)
    reference: str = ""  #: the provider's id of our message it is about, "" if none (matched through message's index)
    payload: str  #: the verified payload as received; patient data: never logged
    received_at: datetime = when()
    processed_at: datetime | None = when(nullable=True)  #: None: still to be processed
    attempts: int = 0  #: processing attempts that failed
    outcome: str = ""  #: recorded; unmatched (no message had its reference in time); failed (gave up)
