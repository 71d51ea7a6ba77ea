"""The console's own tables: staff accounts, their sessions, the audit log, handled marks, alert choices.

None of them holds patient details: the audit log and the handled marks name patients, messages
and replies by their keys and ids only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from vitalsync.mirror.tables import when
from vitalsync.queue.tables import Message

ROLES = ("admin", "front_desk", "provider")

#: The console's log and queue pages list one status in send order, a page at a time: with this
#: index that is a range read instead of sorting every message of the status (50,000 in the bench).
Index("ix_message_status_send_at", Message.__table__.c.status, Message.__table__.c.send_at)


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)  #: the login name
    role: str  #: admin (users and settings), front_desk (everything else), provider (own patients only)
    password_hash: str  #: argon2id, with its parameters
    provider_key: str | None = None  #: for a provider: the PMS provider they are
    locations: str = ""  #: space-separated PMS location keys this user may see; empty: every location
    email: str = ""  #: where staff alerts go (none without it)
    daily_summary: bool = False  #: a summary email every morning ([console] summary_at)
    active: bool = True
    failed_logins: int = 0  #: wrong passwords in a row
    locked_until: datetime | None = when(nullable=True)
    created_at: datetime = when()
    last_login_at: datetime | None = when(nullable=True)

    @property
    def location_keys(self) -> list[str]:
        return self.locations.split()


class StaffSession(SQLModel, table=True):
    """A login. The cookie holds a random token; only its SHA-256 is stored, so a stolen database
    opens no session."""

    __tablename__ = "staff_session"

    token_hash: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    csrf: str  #: the token every form of this session must carry
    created_at: datetime = when()
    expires_at: datetime = when()


class AuditEntry(SQLModel, table=True):
    """Who viewed or changed what, and when: ids and keys only, never patient details."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = when(index=True)
    user_id: int | None = Field(default=None, index=True)  #: None for a failed login of an unknown name
    action: str  #: view_patient, export_log, cancel_queue, move_queue, mark_handled, login, ...
    target: str = ""  #: e.g. "patient:P123", "reply:55", "user:4"
    detail: str = ""  #: counts and filters, never names or message text
    address: str = ""  #: where from: the client's IP address, or "cli:<system user>" for the command line


class HandledMark(SQLModel, table=True):
    """A 'needs attention' item a person has dealt with: which, who and when."""

    __tablename__ = "handled_mark"

    item: str = Field(primary_key=True)  #: "reply:ID" or "message:ID"
    user_id: int = Field(foreign_key="staff_user.id")
    at: datetime = when()


ALERT_EVENTS = ("declined", "unreachable", "unrecognised")
ANY_KIND = "*"


class AlertChoice(SQLModel, table=True):
    """One user's 'email me when' choice: an event for one message kind, or for any kind ('*')."""

    __tablename__ = "alert_choice"

    user_id: int = Field(foreign_key="staff_user.id", primary_key=True)
    event: str = Field(primary_key=True)  #: one of ALERT_EVENTS
    kind: str = Field(primary_key=True)  #: a message kind, or ANY_KIND


class AlertSent(SQLModel, table=True):
    """An alert or summary emailed to a user, so each goes once: item is "event:ID", "reply:ID" or
    "summary:YYYY-MM-DD"."""

    __tablename__ = "alert_sent"

    user_id: int = Field(foreign_key="staff_user.id", primary_key=True)
    item: str = Field(primary_key=True)
    at: datetime = when()
