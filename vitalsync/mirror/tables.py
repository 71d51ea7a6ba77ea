"""The mirror's tables: what vitalsync knows of the practice, as the last sync saw it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from vitalsync.core.db import UTCDateTime
from vitalsync.core.vocab import AppointmentStatus


def when(*, index: bool = False, nullable: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


class Location(SQLModel, table=True):
    key: str = Field(primary_key=True)
    name: str
    timezone: str
    phone: str = ""


class Provider(SQLModel, table=True):
    key: str = Field(primary_key=True)
    name: str
    location_key: str | None = None


class Patient(SQLModel, table=True):
    key: str = Field(primary_key=True)
    first_name: str
    last_name: str
    mobile: str | None = Field(default=None, index=True)
    landline: str | None = None
    email: str | None = None
    sms_ok: bool = True
    email_ok: bool = True
    voice_ok: bool = True
    language: str = "en"
    timezone: str | None = None
    guarantor_key: str | None = Field(default=None, index=True)
    active: bool = True
    updated_at: datetime = when()


class Appointment(SQLModel, table=True):
    #: times of day and "scheduled and upcoming" both read this one: covering for the second, so the
    #: sync's count of upcoming appointments never visits the rows (status alone narrows too little)
    __table_args__ = (Index("ix_appointment_start_status", "start", "status"),)

    key: str = Field(primary_key=True)
    patient_key: str = Field(index=True)
    location_key: str
    provider_key: str | None = None
    type: str = ""
    status: str = AppointmentStatus.SCHEDULED.value  #: an AppointmentStatus
    start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    version: int = 1  #: bumped whenever the start, end or status changes
    previous_start: datetime | None = when(nullable=True)  #: the start before the last move
    first_seen_at: datetime = when()
    changed_at: datetime = when()  #: when a sync last saw the time or status change


class Recall(SQLModel, table=True):
    key: str = Field(primary_key=True)
    patient_key: str = Field(index=True)
    due: date
    type: str = ""
    active: bool = True


class Pickup(SQLModel, table=True):
    key: str = Field(primary_key=True)
    patient_key: str = Field(index=True)
    location_key: str
    ready_at: datetime = when()
    picked_up: bool = False


class OptOut(SQLModel, table=True):
    """A patient's 'no' for a channel: from the PMS, or from a STOP reply to an address."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True)
    patient_key: str | None = Field(default=None, index=True)
    address: str | None = Field(default=None, index=True)
    source: str  #: "pms" or "reply"
    at: datetime = when()


class SyncRun(SQLModel, table=True):
    """One sync's report: what was read and changed, or why it stopped."""

    id: int | None = Field(default=None, primary_key=True)
    mode: str  #: "full" or "incremental"
    outcome: str = "running"  #: running, ok, held, failed
    started_at: datetime = when()
    finished_at: datetime | None = when(nullable=True)
    cursor: str | None = None
    rows_read: int = 0
    changed: int = 0
    removed: int = 0
    rejected: int = 0
    seconds: float = 0.0
    detail: str = ""
