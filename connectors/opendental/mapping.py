"""Open Dental rows to vitalsync records: sentinels to None, codes to the internal vocabulary.

The functions map a chunk of rows at a time with their lookups bound to locals: a full sync maps
half a million appointments, so each row costs a handful of dict lookups and one tuple. The SELECTs
(queries.py) already give keys as text, the preferred first name, and each appointment's slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.sync.connector import LocationRecord, OptOutRecord, ProviderRecord
from vitalsync.sync.normalize import email, language
from vitalsync_connectors.opendental.interval import Interval
from vitalsync_connectors.opendental.phones import phone

NO_DAY = date(1, 1, 1)
#: AptStatus: 1 Scheduled and 4 ASAP (legacy) are booked; 5 Broken and 3 UnschedList left the schedule
STATUS = {1: AppointmentStatus.SCHEDULED, 4: AppointmentStatus.SCHEDULED, 2: AppointmentStatus.COMPLETED,
          5: AppointmentStatus.CANCELLED, 3: AppointmentStatus.CANCELLED}
STATUS_NAMES = {1: "Scheduled", 2: "Complete", 4: "ASAP", 5: "Broken"}
ACTIVE = frozenset({0, 1, 6})  #: PatStatus Patient, NonPatient, Prospective; not Inactive, Archived, Deleted, Deceased
DECEASED, DO_NOT_CALL, YES, UNKNOWN = 5, 1, 1, 0
REMINDER_OPT_OUT = 1 | 2 | 4  #: commoptout bits All, eConfirm, eReminder
#: clinic.TimeZone is written by .NET, so it may hold a Windows zone id
WINDOWS_ZONES = {
    "Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver", "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles", "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu", "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns", "Canada Central Standard Time": "America/Regina",
}


def zone_name(raw: str, default: str) -> str:
    """An IANA zone from clinic.TimeZone (IANA or Windows id), else ``default``."""
    name = WINDOWS_ZONES.get(raw.strip(), raw.strip())
    try:
        return ZoneInfo(name).key if name else default
    except (ZoneInfoNotFoundError, ValueError):
        return default


class _Cache(dict):
    """A dict that computes a missing value once; cleared when it grows past ``limit`` entries."""

    def __init__(self, compute, limit: int = 200_000) -> None:
        super().__init__()
        self.compute, self.limit = compute, limit

    def __missing__(self, key):
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.compute(key)
        return value


@dataclass
class Practice:
    """What every mapping needs: the zones, the small lookup tables and the practice's settings.

    The mappers turn a chunk of rows into plain tuples in their record's field order (the mirror
    takes those as they are; ``Rows`` builds records from them for everyone else). Values that
    repeat are computed once: an appointment's place, start and end from its slot, a phone's E.164
    form, a patient's consents from their codes.
    """

    timezone: str
    region: str = "US"
    main_name: str = "Main office"
    unknown_is_no: bool = False  #: preference TextMsgOkStatusTreatAsNo
    locations: list[LocationRecord] = field(default_factory=list)
    zones: dict[str, ZoneInfo] = field(default_factory=dict)  #: by ClinicNum as text, "0" is the main office
    op_clinic: dict[int, int] = field(default_factory=dict)
    types: dict[int, str] = field(default_factory=dict)
    recall_types: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slots = _Cache(self._slot)
        self.mobiles = _Cache(lambda raw: phone(raw, self.region, True))  # Open Dental texts WirelessPhone only
        self.phones = _Cache(lambda raw: phone(raw, self.region))
        self.consents = _Cache(self._consent, limit=10_000)
        #: one object per time (and zone): equal times of several slots share it, so the mirror
        #: converts (and hashes) each once
        self.instants: dict[tuple, datetime] = {}

    def add_clinics(self, rows) -> None:
        self.locations = [LocationRecord("0", self.main_name, self.timezone)]
        self.zones = {"0": ZoneInfo(self.timezone)}
        for num, description, abbr, number, raw_zone in rows:
            zone = zone_name(raw_zone, self.timezone)
            self.zones[str(num)] = ZoneInfo(zone)
            self.locations.append(LocationRecord(str(num), description or abbr or f"Clinic {num}", zone,
                                                 phone(number, self.region) or ""))

    def _slot(self, slot: str) -> tuple | None:
        """(location key, start, its ends by length) of a slot ``"<ClinicNum or -Op> <AptDateTime>"`` (see
        queries.APPOINTMENTS); None when the appointment has no date (0001-01-01)."""
        place, when = slot.split(" ", 1)
        if place.startswith("-"):  # booked before clinics were on: the chair says where
            place = str(self.op_clinic.get(int(place[1:]), 0))
        try:
            naive = datetime.fromisoformat(when)
        except ValueError:  # MySQL's zero date
            return None
        if naive.year == 1:
            return None
        start = self._instant(naive.replace(tzinfo=self.zones.get(place) or self.zones["0"]))
        return place, start, {}  # its ends by length, filled as they come

    def _instant(self, value: datetime) -> datetime:
        if len(self.instants) >= 200_000:
            self.instants.clear()
        return self.instants.setdefault((value, value.tzinfo), value)

    def appointments(self, rows, rejected: list[str]) -> list[tuple]:
        """AppointmentRecord tuples of the rows with a date. Without one, an UnschedList row left the
        schedule (the GONE query names it); any other is damaged and named in ``rejected`` (once)."""
        slots, types, statuses = self.slots, self.types, STATUS
        out = []
        append = out.append
        for num, patient, slot, minutes, status, provider, kind in rows:
            span = slots[slot]
            if span is None:
                if status != 3 and (reason := _undated(num, status)) not in rejected:
                    rejected.append(reason)  # once, though a stream may be read more than once
                continue
            place, start, ends = span
            if (end := ends.get(minutes)) is None:
                end = ends[minutes] = self._instant(start + timedelta(minutes=minutes))
            append((num, patient, place, start, end, statuses[status], provider, types.get(kind, "")))
        return out

    def _consent(self, codes: tuple) -> tuple[bool, bool, bool, bool]:
        """(sms_ok, email_ok, voice_ok, active) from PatStatus, TxtMsgOk and the preferred methods."""
        status, txt_ok, confirm, contact = codes
        alive = status != DECEASED
        sms_ok = alive and (txt_ok == YES or (txt_ok == UNKNOWN and not self.unknown_is_no))
        return sms_ok, alive, alive and confirm != DO_NOT_CALL and contact != DO_NOT_CALL, status in ACTIVE

    def patients(self, rows) -> list[tuple]:
        """PatientRecord tuples (the first name is already the preferred one when there is one)."""
        mobiles, phones, consents = self.mobiles, self.phones, self.consents
        out = []
        append = out.append
        for num, first, last, status, wireless, home, work, emails, txt_ok, confirm, contact, lang, guarantor in rows:
            sms_ok, email_ok, voice_ok, active = consents[status, txt_ok, confirm, contact]
            append((num, first, last, mobiles[wireless] if wireless else None,
                    (phones[home] if home else None) or (phones[work] if work else None),
                    email(emails) if emails else None, sms_ok, email_ok, voice_ok, _language(lang), None,
                    guarantor, active))
        return out

    def recalls(self, rows) -> list[tuple]:
        """RecallRecord tuples; a due date Open Dental has not computed yet comes from the last visit."""
        types, out = self.recall_types, []
        for num, patient, due, previous, interval, disabled, kind in rows:
            if due is None or due == NO_DAY:  # Open Dental leaves it empty until it computes it
                if previous is None or previous == NO_DAY or not interval:
                    continue  # never seen for this recall: nothing is due yet
                due = Interval.unpack(interval).after(previous)
            out.append((num, patient, due, types.get(kind, ""), not disabled))
        return out


def _undated(num: int, status: int) -> str:
    return f"appointment {num}: AptStatus {STATUS_NAMES.get(status, status)} but no AptDateTime (0001-01-01); skipped"


@lru_cache(maxsize=1024)
def _language(raw: str) -> str:
    return language(raw)


def providers(rows) -> list[ProviderRecord]:
    """'Maya Chen, DDS' from the names, else the abbreviation ('DOC1') when a provider has no name."""
    out = []
    for num, abbr, first, last, suffix in rows:
        name = " ".join(part for part in (first, last) if part)
        if name and suffix:
            name = f"{name}, {suffix}"
        out.append(ProviderRecord(str(num), name or abbr or f"Provider {num}"))
    return out


def opt_outs(rows) -> list[OptOutRecord]:
    out = []
    for patient, sms, mail in rows:
        if sms & REMINDER_OPT_OUT:
            out.append(OptOutRecord(str(patient), Channel.SMS))
        if mail & REMINDER_OPT_OUT:
            out.append(OptOutRecord(str(patient), Channel.EMAIL))
    return out
