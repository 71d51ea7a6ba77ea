"""The shared vocabulary of row-and-column sources (CSV exports, ODBC views): fields, status words."""

from __future__ import annotations

from vitalsync.core.vocab import AppointmentStatus

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
