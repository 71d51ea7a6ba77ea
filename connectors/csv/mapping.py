"""Rows of the export files → vitalsync records: the column mapping and the cleaning of values.

A field is read from the column ``[connector.columns.<entity>]`` maps it to, else from the column
named like the field (matched exactly, then without regard to case). Dates and times are read with
the configured ``strptime`` formats; naive times are in the PMS's zone. Phones become E.164 (a
broken phone becomes None and the row is kept), yes/no words booleans, the export's status words
:class:`AppointmentStatus`. A value that cannot be read rejects its row with a reason that quotes
the value only when it has the shape of a date or a number and is not a phone number: no PHI.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.errors import PersonMustAct
from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync import normalize
from vitalsync.sync.connector import (AppointmentRecord, LocationRecord, PatientRecord, PickupRecord,
                                      ProviderRecord, RecallRecord)
from vitalsync.sync.tabular import DEFAULT_MINUTES, FIELDS, STATUSES, YES

#: Columns a file must have (under their mapped names).
REQUIRED: dict[str, tuple[str, ...]] = {
    "locations": ("key", "name"), "providers": ("key", "name"), "patients": ("key", "first_name", "last_name"),
    "appointments": ("key", "patient_key", "start"), "recalls": ("key", "patient_key", "due"),
    "pickups": ("key", "patient_key", "ready_at"),
}
DEFAULT_LOCATION = "main"  #: the location of rows that name none (single-office exports)
#: Words that may appear in a date; any other word keeps the value out of a rejection message.
DATE_WORDS = frozenset(
    "t z am pm utc gmt jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june "
    "july august september october november december mon tue wed thu fri sat sun monday tuesday wednesday "
    "thursday friday saturday sunday".split())


class Unusable(Exception):
    """A value of a row cannot be read; ``str()`` is the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")


def positions(entity: str, file_name: str, header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Where each field sits in the file; a person must act when a required or mapped column is missing."""
    names = [name.strip().lstrip("\ufeff") for name in header]  # a byte-order mark read as text
    exact = {name: i for i, name in reversed(list(enumerate(names)))}
    folded = {name.casefold(): i for i, name in reversed(list(enumerate(names)))}
    found = {}
    for field in FIELDS[entity]:
        column = mapping.get(field, field)
        at = exact.get(column, folded.get(column.casefold()))
        if at is not None:
            found[field] = at
        elif field in mapping or field in REQUIRED[entity]:
            raise PersonMustAct(
                f"{file_name} has no column '{column}' for {entity} {field}; name its column in "
                f"[connector.columns.{entity}] {field} = \"...\" or fix the export")
    return found


class Mapper:
    """Turns one row's values (by field) into a record."""

    def __init__(self, *, zone: ZoneInfo, region: str, statuses: dict[str, AppointmentStatus],
                 datetime_format: str, date_format: str) -> None:
        self.zone, self.region = zone, region
        self.exact = {name: AppointmentStatus(status) for name, status in statuses.items()}
        self.statuses = STATUSES | {_fold(name): status for name, status in self.exact.items()}
        self.datetime_format, self.date_format = datetime_format, date_format

    def record(self, entity: str, get):
        return getattr(self, entity)(lambda field: (get(field) or "").strip())

    def locations(self, get) -> LocationRecord:
        return LocationRecord(key=_key(get), name=get("name"), timezone=self._zone(get, "timezone") or self.zone.key,
                              phone=normalize.e164(get("phone"), self.region) or "")

    def providers(self, get) -> ProviderRecord:
        return ProviderRecord(key=_key(get), name=get("name"), location_key=_ref(get("location_key")))

    def patients(self, get) -> PatientRecord:
        return PatientRecord(
            key=_key(get), first_name=get("first_name"), last_name=get("last_name"),
            mobile=normalize.e164(get("mobile"), self.region, mobile_only=True),
            landline=normalize.e164(get("landline"), self.region), email=normalize.email(get("email")),
            sms_ok=_flag(get("sms_ok")), email_ok=_flag(get("email_ok")), voice_ok=_flag(get("voice_ok")),
            language=normalize.language(get("language")), timezone=_known_zone(get("timezone")),
            guarantor_key=_ref(get("guarantor_key")), active=_flag(get("active")))

    def appointments(self, get) -> AppointmentRecord:
        key, patient, start = _key(get), _key(get, "patient_key"), self._moment(get, "start")
        if get("end"):
            end = self._moment(get, "end")
            if end <= start:
                raise Unusable("end", "is not after the start")
        else:
            end = start + timedelta(minutes=self._minutes(get("duration")))
        return AppointmentRecord(key=key, patient_key=patient, location_key=_ref(get("location_key")) or DEFAULT_LOCATION,
                                 start=start, end=end, status=self._status(get("status")),
                                 provider_key=_ref(get("provider_key")), type=get("type"))

    def recalls(self, get) -> RecallRecord:
        return RecallRecord(key=_key(get), patient_key=_key(get, "patient_key"), due=self._day(get, "due"),
                            type=get("type"), active=_flag(get("active")))

    def pickups(self, get) -> PickupRecord:
        return PickupRecord(key=_key(get), patient_key=_key(get, "patient_key"),
                            location_key=_ref(get("location_key")) or DEFAULT_LOCATION,
                            ready_at=self._moment(get, "ready_at"), picked_up=_flag(get("picked_up"), default=False))

    def _moment(self, get, field: str) -> datetime:
        value = _parsed(get, field, self.datetime_format, "date-time", self.region)
        return value if value.tzinfo else value.replace(tzinfo=self.zone)

    def _day(self, get, field: str) -> date:
        return _parsed(get, field, self.date_format, "date", self.region).date()

    def _minutes(self, text: str) -> float:
        if not text:
            return DEFAULT_MINUTES
        try:
            minutes = float(text)
        except ValueError:
            minutes = 0
        if not 0 < minutes < 24 * 60:
            raise Unusable("duration", f"{_shown(text, self.region)} is not a number of minutes")
        return minutes

    def _status(self, text: str) -> AppointmentStatus:
        if not text:
            return AppointmentStatus.SCHEDULED
        status = self.exact.get(text) or self.statuses.get(_fold(text))
        if status is None:
            # a status word is the practice's vocabulary, not patient data: naming it tells whoever maps it what to add
            raise Unusable("status", f"'{text[:40]}' is not mapped; add it to [connector] statuses")
        return status

    def _zone(self, get, field: str) -> str | None:
        name = get(field)
        try:
            return ZoneInfo(name).key if name else None
        except (ZoneInfoNotFoundError, ValueError):
            raise Unusable(field, f"{_shown(name, self.region)} is not a time zone") from None


def _parsed(get, field: str, format: str, what: str, region: str) -> datetime:
    text = get(field)
    if not text:
        raise Unusable(field, "is empty")
    try:
        return datetime.strptime(text, format)
    except ValueError:
        raise Unusable(field, f"{_shown(text, region)} is not a {what} in the format {format}") from None


def _shown(text: str, region: str) -> str:
    """The value quoted when it cannot be patient data (shaped like a date or number, not a phone)."""
    words = re.findall(r"[a-z]+", text.casefold())
    if len(text) <= 40 and re.search(r"\d", text) and re.fullmatch(r"[\w\s/.:,+\-]*", text) \
            and all(w in DATE_WORDS for w in words) and normalize.e164(text, region) is None:
        return f"'{text}'"
    return "the value"


def _known_zone(name: str) -> str | None:
    """A patient's own zone, or None (their location's) when the export's is not one."""
    try:
        return ZoneInfo(name).key if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _key(get, field: str = "key") -> str:
    key = get(field)
    if not key:
        raise Unusable(field, "is empty")
    return key


def _ref(key: str) -> str | None:
    """An optional reference to another row; PMSs write 0 for 'none'."""
    return None if key in ("", "0") else key


def _flag(text: str, default: bool = True) -> bool:
    return default if not text else _fold(text) in YES
