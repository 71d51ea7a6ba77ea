"""Rows of the configured queries → vitalsync records: the column mapping and the cleaning of values.

A field is read from the column ``[connector.columns.<entity>]`` maps it to, else from the column
named like the field (matched without regard to case, as drivers differ). Values are cleaned at
this edge: keys to text, naive times into the PMS's zone, phones to E.164 (a broken phone becomes
None and the row is kept), 'Y'/'N'-style flags to booleans, vendor status values to
:class:`AppointmentStatus`. Anything fancier (a date plus an hour column, lengths in 10-minute
units) belongs in the query's SQL, where the PMS's own dialect can do it.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from vitalsync.core.errors import PersonMustAct
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync import normalize
from vitalsync.sync.connector import (AppointmentRecord, LocationRecord, PatientRecord, PickupRecord,
                                      ProviderRecord, RecallRecord)
from vitalsync.sync.tabular import DEFAULT_MINUTES, FIELDS, STATUSES
from vitalsync_connectors.odbc import values
from vitalsync_connectors.odbc.values import Unusable

REQUIRED: dict[str, frozenset[str]] = {
    "locations": frozenset({"key"}), "providers": frozenset({"key"}), "patients": frozenset({"key"}),
    "appointments": frozenset({"key", "patient_key", "start"}),
    "recalls": frozenset({"key", "patient_key", "due"}),
    "pickups": frozenset({"key", "patient_key", "ready_at"}),
}
#: The location of rows that name none (single-office PMSs often have no location column).
DEFAULT_LOCATION = "main"


def positions(entity: str, names: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Where each field sits in the query's columns; a person must act when one the entity needs is missing."""
    index = {name.lower(): i for i, name in enumerate(names)}
    found = {}
    for field in FIELDS[entity]:
        column = mapping.get(field, field)
        if column.lower() in index:
            found[field] = index[column.lower()]
        elif field in mapping or field in REQUIRED[entity]:
            raise PersonMustAct(
                f"the {entity} query returns no column '{column}' for the field '{field}'; fix "
                f"[connector.queries] {entity} or map the field in [connector.columns.{entity}] "
                f"(the query returns: {', '.join(names)})")
    return found


class Mapper:
    """Turns one entity's rows into records, given where its fields sit."""

    def __init__(self, *, zone: ZoneInfo, region: str, statuses: dict[str, AppointmentStatus]) -> None:
        self.zone, self.region = zone, region
        self.statuses = STATUSES | {values.fold(name): status for name, status in statuses.items()}
        self.exact = dict(statuses)

    def key(self, row, at: dict[str, int]) -> str | None:
        """The row's key, when readable (a rejected row's key keeps it from looking deleted)."""
        return values.text(row[at["key"]]) or None

    def record(self, entity: str, row, at: dict[str, int]):
        def get(field):
            return row[at[field]] if field in at else None
        return getattr(self, entity)(get)

    def locations(self, get) -> LocationRecord:
        return LocationRecord(key=values.key(get("key")), name=values.text(get("name")),
                              timezone=values.zone(get("timezone")) or self.zone.key,
                              phone=normalize.e164(values.text(get("phone")), self.region) or "")

    def providers(self, get) -> ProviderRecord:
        return ProviderRecord(key=values.key(get("key")), name=values.text(get("name")),
                              location_key=values.ref(get("location_key")))

    def patients(self, get) -> PatientRecord:
        text, flag = (lambda field: values.text(get(field))), (lambda field: values.flag(get(field)))
        return PatientRecord(
            key=values.key(get("key")), first_name=text("first_name"), last_name=text("last_name"),
            mobile=normalize.e164(text("mobile"), self.region, mobile_only=True),
            landline=normalize.e164(text("landline"), self.region), email=normalize.email(text("email")),
            sms_ok=flag("sms_ok"), email_ok=flag("email_ok"), voice_ok=flag("voice_ok"),
            language=normalize.language(text("language")), timezone=values.zone(get("timezone")),
            guarantor_key=values.ref(get("guarantor_key")), active=flag("active"))

    def appointments(self, get) -> AppointmentRecord:
        key, patient = values.key(get("key")), values.key(get("patient_key"), "patient_key")
        start = values.moment(get("start"), "start", self.zone)
        try:
            end = values.moment(get("end"), "end", self.zone)
        except Unusable:
            end = None
        if end is None or end <= start:
            end = start + timedelta(minutes=values.minutes(get("duration")) or DEFAULT_MINUTES)
        return AppointmentRecord(
            key=key, patient_key=patient, location_key=values.ref(get("location_key")) or DEFAULT_LOCATION,
            start=start, end=end, status=self._status(get("status")),
            provider_key=values.ref(get("provider_key")), type=values.text(get("type")))

    def recalls(self, get) -> RecallRecord:
        return RecallRecord(key=values.key(get("key")), patient_key=values.key(get("patient_key"), "patient_key"),
                            due=values.day(get("due"), "due"), type=values.text(get("type")),
                            active=values.flag(get("active")))

    def pickups(self, get) -> PickupRecord:
        return PickupRecord(key=values.key(get("key")), patient_key=values.key(get("patient_key"), "patient_key"),
                            location_key=values.ref(get("location_key")) or DEFAULT_LOCATION,
                            ready_at=values.moment(get("ready_at"), "ready_at", self.zone),
                            picked_up=values.flag(get("picked_up"), default=False))

    def _status(self, value) -> AppointmentStatus:
        name = values.text(value)
        if not name:
            return AppointmentStatus.SCHEDULED
        status = self.exact.get(name) or self.statuses.get(values.fold(name))
        if status is None:
            # a status value is the practice's vocabulary, not patient data: naming it tells whoever
            # maps it what to add
            raise Unusable("status", f"'{name[:40]}' is not mapped; add it to [connector.statuses]")
        return AppointmentStatus(status)
