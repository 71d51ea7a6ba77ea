"""The outbox's tables: messages, their status history, their targets, and every planning decision."""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from vitalsync.core.db import UTCDateTime
from vitalsync.core.vocab import MessageStatus
from vitalsync.mirror.tables import when


def new_reply_token() -> str:
    """96 random bits naming one message in its Reply-To address: nothing about the patient."""
    return secrets.token_hex(12)


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  #: idempotency key: kind, subject, offset, subject time
    kind: str = Field(index=True)
    channel: str
    address: str  #: E.164 number or email address, as planned
    patient_key: str = Field(index=True)  #: the recipient (in a family, the guarantor or first member)
    appointment_key: str | None = Field(default=None, index=True)
    subject_key: str | None = None  #: the recall or pick-up order, for those kinds
    language: str = "en"
    asks_reply: bool = False
    send_at: datetime = Field(sa_column=Column(UTCDateTime(), index=True, nullable=False))
    deadline: datetime | None = when(nullable=True)  #: no send after this (the appointment's start)
    status: str = Field(default=MessageStatus.NOT_SENT.value, index=True)  #: a MessageStatus
    status_at: datetime = when()
    reason: str = ""
    attempts: int = 0
    in_flight: bool = False  #: a send was started and its outcome is not known yet
    lease_owner: str | None = None
    lease_until: datetime | None = when(nullable=True)
    provider_ref: str | None = Field(default=None, index=True)  #: the provider's message id
    created_at: datetime = when()
    sent_at: datetime | None = when(nullable=True)
    #: names this message in the Reply-To of its email (reply+TOKEN@reply_domain), so a reply finds it
    reply_token: str | None = Field(default_factory=new_reply_token, unique=True, index=True)


class MessageTarget(SQLModel, table=True):
    """The appointments a message is about: one, or each family member's in a family message."""

    message_id: int = Field(foreign_key="message.id", primary_key=True)
    position: int = Field(primary_key=True)
    appointment_key: str = Field(index=True)
    patient_key: str
    appointment_version: int
    #: this member's own answer in a family message ("confirmed" / "declined"), None until they answer
    answer: str | None = None
    answered_at: datetime | None = when(nullable=True)


class MessageEvent(SQLModel, table=True):
    """One status transition: the message's history, in order."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    at: datetime = when()
    status: str  #: a MessageStatus
    source: str  #: planner, dispatch, provider, reply, staff, sync
    detail: str = ""


class Decision(SQLModel, table=True):
    """The decision trace: why each message was or was not planned, moved or cancelled."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)  #: makes recording idempotent: the same decision is stored once
    at: datetime = when()
    kind: str
    decision: str
    reason: str
    appointment_key: str | None = Field(default=None, index=True)
    patient_key: str | None = Field(default=None, index=True)
    subject_key: str | None = None
    message_id: int | None = Field(default=None, index=True)
    channel: str | None = None


class GroupSend(SQLModel, table=True):
    """A group send staff started (a manual kind to the appointments of one day): who, when, what, how many.

    Its messages name it in their first history row and their 'queued' decision ("group send 3")."""

    __tablename__ = "group_send"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = when(index=True)
    started_by: str  #: "console" (then user_id is the staff user's id), "cli" or "demo"
    user_id: int | None = None
    kind: str
    day: date  #: the appointments' day, in each location's time zone
    locations: str = ""  #: space-separated location keys; empty: every location
    provider: str = ""  #: a provider key; empty: any
    appointment_type: str = ""  #: empty: any
    matched: int = 0  #: appointments the filter found
    queued: int = 0  #: messages queued
    skipped: int = 0  #: appointments no message can reach (no usable contact, opted out, too late), each in the trace
    already: int = 0  #: appointments an earlier group send of this kind already messaged
