"""Open Dental rows to vitalsync records: sentinels to None, codes to the internal vocabulary.

The functions map a chunk of rows at a time with their lookups bound to locals: a full sync maps
half a million appointments, so each row costs a handful of dict lookups and one record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.sync.connector import (AppointmentRecord, LocationRecord, OptOutRecord, PatientRecord, ProviderRecord,
                                      RecallRecord)
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


class _Minutes(dict):
    def __missing__(self, minutes: int) -> timedelta:
        value = self[minutes] = timedelta(minutes=minutes)
        return value


MINUTES = _Minutes()


@dataclass
class Practice:
    """What every mapping needs: the zones, the small lookup tables and the practice's settings."""

    timezone: str
    region: str = "US"
    main_name: str = "Main office"
    unknown_is_no: bool = False  #: preference TextMsgOkStatusTreatAsNo
    locations: list[LocationRecord] = field(default_factory=list)
    zones: dict[int, ZoneInfo] = field(default_factory=dict)  #: by ClinicNum, 0 is the main office
    op_clinic: dict[int, int] = field(default_factory=dict)
    types: dict[int, str] = field(default_factory=dict)
    recall_types: dict[int, str] = field(default_factory=dict)

    def add_clinics(self, rows) -> None:
        self.locations = [LocationRecord("0", self.main_name, self.timezone)]
        self.zones = {0: ZoneInfo(self.timezone)}
        for num, description, abbr, number, raw_zone in rows:
            zone = zone_name(raw_zone, self.timezone)
            self.zones[num] = ZoneInfo(zone)
            self.locations.append(LocationRecord(str(num), description or abbr or f"Clinic {num}", zone,
                                                 phone(number, self.region) or ""))

    def appointments(self, rows, rejected: list[str]) -> list[AppointmentRecord]:
        """Records of the rows with a date. Without one, an UnschedList row left the schedule (the
        GONE query names it); any other is damaged and named in ``rejected`` (once)."""
        zones, default, op_clinic, types, minutes = self.zones, self.zones[0], self.op_clinic, self.types, MINUTES
        out = []
        append = out.append
        for num, patient, status, when, length, provider, clinic, op, kind in rows:
            if when is None or when.year == 1:
                if status != 3 and (reason := _undated(num, status)) not in rejected:
                    rejected.append(reason)  # once, though a stream may be read more than once
                continue
            if not clinic:  # booked before clinics were on: the chair says where
                clinic = op_clinic.get(op, 0)
            start = when.replace(tzinfo=zones.get(clinic, default))
            append(AppointmentRecord(str(num), str(patient), str(clinic), start, start + minutes[length],
                                     STATUS[status], str(provider) if provider else None, types.get(kind, "")))
        return out

    def patients(self, rows) -> list[PatientRecord]:
        region, unknown_ok = self.region, not self.unknown_is_no
        out = []
        append = out.append
        for (num, first, preferred, last, status, wireless, home, work, emails, txt_ok, confirm, contact,
             lang, guarantor) in rows:
            alive = status != DECEASED
            append(PatientRecord(
                str(num), preferred or first, last,
                mobile=phone(wireless, region, True),  # Open Dental texts WirelessPhone only
                landline=phone(home, region) or phone(work, region),
                email=email(emails) if emails else None,
                sms_ok=alive and (txt_ok == YES or (txt_ok == UNKNOWN and unknown_ok)),
                email_ok=alive, voice_ok=alive and confirm != DO_NOT_CALL and contact != DO_NOT_CALL,
                language=_language(lang), guarantor_key=str(guarantor) if guarantor else None,
                active=status in ACTIVE))
        return out

    def recalls(self, rows) -> list[RecallRecord]:
        types, out = self.recall_types, []
        for num, patient, due, previous, interval, disabled, kind in rows:
            if due is None or due == NO_DAY:  # Open Dental leaves it empty until it computes it
                if previous is None or previous == NO_DAY or not interval:
                    continue  # never seen for this recall: nothing is due yet
                due = Interval.unpack(interval).after(previous)
            out.append(RecallRecord(str(num), str(patient), due, types.get(kind, ""), active=not disabled))
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
