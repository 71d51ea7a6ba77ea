"""Who may do what: roles give pages, locations and a provider key narrow the rows.

admin: the users page and everything else; front_desk: every page but users (group sends too); provider: today,
the log and the patient page, only for their own patients. Everyone sets their own alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import col, select

from vitalsync.console.tables import StaffUser
from vitalsync.core.db import session
from vitalsync.mirror.tables import Appointment

FRONT_DESK = frozenset({"today", "log", "report", "attention", "queue", "send", "patient", "sync", "alerts", "kinds"})
PAGES = {"admin": FRONT_DESK | {"users"}, "front_desk": FRONT_DESK,
         "provider": frozenset({"today", "log", "patient", "alerts"})}


@dataclass(frozen=True)
class Scope:
    """The rows a user may see: appointments at these locations (empty: all) with this provider (None: any)."""

    locations: tuple[str, ...] = ()
    provider: str | None = None

    @property
    def restricted(self) -> bool:
        return bool(self.locations or self.provider)


def may_open(user: StaffUser, page: str) -> bool:
    return page in PAGES.get(user.role, ())


def scope_of(user: StaffUser) -> Scope:
    return Scope(tuple(user.location_keys), user.provider_key if user.role == "provider" else None)


def may_see_patient(engine: Engine, scope: Scope, patient_key: str) -> bool:
    """Unrestricted users see every patient; others only those with an appointment in their scope."""
    if not scope.restricted:
        return True
    query = select(Appointment.key).where(Appointment.patient_key == patient_key)
    if scope.locations:
        query = query.where(col(Appointment.location_key).in_(scope.locations))
    if scope.provider:
        query = query.where(Appointment.provider_key == scope.provider)
    with session(engine) as db:
        return db.exec(query.limit(1)).first() is not None
