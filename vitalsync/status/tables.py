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
