"""The shared vocabulary of row-and-column sources (CSV exports, ODBC views): fields, status words."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.vocab import AppointmentStatus

#: The entities a row-and-column source can hold, as ``[connector]`` tables name them.
Entity = Literal["locations", "providers", "patients", "appointments", "recalls", "pickups"]

#: The fields each entity's rows may carry; ``duration`` (minutes) stands in for a missing end.
FIELDS: dict[str, tuple[str, ...]] = {
    "locations": ("key", "name", "timezone", "phone"),
    "providers": ("key", "name", "location_key"),
    "patients": ("key", "first_name", "last_name", "mobile", "landline", "email", "sms_ok", "email_ok",
                 "voice_ok", "language", "timezone", "guarantor_key", "active"),
    "appointments": ("key", "patient_key", "location_key", "start", "end", "duration", "status",
                     "provider_key", "type"),
    "recalls": ("key", "patient_key", "due", "type", "active"),
    "pickups": ("key", "patient_key", "location_key", "ready_at", "picked_up"),
}

#: Status words most PMSs use; ``[connector.statuses]`` adds to and overrides these.
STATUSES = {
    "scheduled": AppointmentStatus.SCHEDULED, "booked": AppointmentStatus.SCHEDULED,
    "confirmed": AppointmentStatus.SCHEDULED, "complete": AppointmentStatus.COMPLETED,
    "completed": AppointmentStatus.COMPLETED, "cancelled": AppointmentStatus.CANCELLED,
    "canceled": AppointmentStatus.CANCELLED, "broken": AppointmentStatus.CANCELLED,
    "no show": AppointmentStatus.NO_SHOW, "no-show": AppointmentStatus.NO_SHOW, "no_show": AppointmentStatus.NO_SHOW,
    "noshow": AppointmentStatus.NO_SHOW, "deleted": AppointmentStatus.DELETED,
}

#: Words for "yes" in flag columns; any other word is a no (nothing is sent on a guess).
YES = frozenset({"1", "y", "yes", "t", "true", "x", "a", "active", "on"})

#: The length of an appointment whose source gives neither end nor duration.
DEFAULT_MINUTES = 30


def mapping_problems(columns: dict[str, dict[str, str]], fields: dict[str, tuple[str, ...]] = FIELDS) -> list[str]:
    """What is wrong with a ``[connector.columns]`` table (entity → field → source column), in config terms."""
    problems = []
    for entity, mapping in columns.items():
        if entity not in fields:
            problems.append(f"connector.columns.{entity}: not an entity (use {', '.join(fields)})")
            continue
        problems += [f"connector.columns.{entity}.{name}: not a field of {entity} (use {', '.join(fields[entity])})"
                     for name in mapping if name not in fields[entity]]
    return problems


def timezone_problems(timezone: str) -> list[str]:
    """``connector.timezone`` must name an IANA zone."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"connector.timezone: unknown time zone {timezone!r} (use an IANA name such as 'America/New_York')"]
    return []
