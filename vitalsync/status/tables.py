"""Patients' replies: what they wrote, what it meant, and whether a person has handled it."""

from __future__ import annotations

from datetime import datetime

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
