"""Open Dental rows to vitalsync records: sentinels to None, codes to the internal vocabulary.

The functions map a chunk of rows at a time with their lookups bound to locals: a full sync maps
half a million appointments, so each row costs a handful of dict lookups and one tuple. The SELECTs
(queries.py) already give keys as text, the preferred first name, and each appointment's place and
its start and end as local times in text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import lru_cache, partial
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.memo import Memo
from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.sync.connector import LocationRecord, OptOutRecord, ProviderRecord, StoredForm
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


@dataclass
class Practice:
    """What every mapping needs: the zones, the small lookup tables and the practice's settings.

    The mappers turn a chunk of rows into plain tuples in their record's field order (the mirror
    takes those as they are; ``Rows`` builds records from them for everyone else), with values in
    the records' own form, or in a consumer's ``StoredForm`` when it asks for one. Values that
    repeat are computed once: a place's location and zone, a local time in its zone, a phone's E.164
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
        self.mobiles = Memo(lambda raw: phone(raw, self.region, True))  # Open Dental texts WirelessPhone only
        self.phones = Memo(lambda raw: phone(raw, self.region))
        self.forms: dict[StoredForm | None, _Values] = {}

    def __getstate__(self) -> dict:
        """The settings and lookups; the memos are rebuilt where it is unpickled (a reader process)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def add_clinics(self, rows) -> None:
        self.locations = [LocationRecord("0", self.main_name, self.timezone)]
        self.zones = {"0": ZoneInfo(self.timezone)}
        for num, description, abbr, number, raw_zone in rows:
            zone = zone_name(raw_zone, self.timezone)
            self.zones[str(num)] = ZoneInfo(zone)
            self.locations.append(LocationRecord(str(num), description or abbr or f"Clinic {num}", zone,
                                                 phone(number, self.region) or ""))

    def _values(self, form: StoredForm | None) -> _Values:
        if (values := self.forms.get(form)) is None:
            values = self.forms[form] = _Values(self, form)
        return values

    def appointments(self, rows, form: StoredForm | None = None, *, rejected: list[str]) -> list[tuple]:
        """AppointmentRecord tuples of the rows with a date. Without one, an UnschedList row left the
        schedule (the GONE query names it); any other is damaged and named in ``rejected`` (once)."""
        values = self._values(form)
        places, statuses, types = values.places, values.statuses, self.types
        out = []
        append = out.append
        for num, patient, place, start, end, status, provider, kind in rows:
            place, times = places[place]
            if (start := times[start]) is None or (end := times[end]) is None:
                if status != 3 and (reason := _undated(num, status)) not in rejected:
                    rejected.append(reason)  # once, though a stream may be read more than once
                continue
            append((num, patient, place, start, end, statuses[status], provider, types.get(kind, "")))
        return out

    def patients(self, rows, form: StoredForm | None = None) -> list[tuple]:
        """PatientRecord tuples (the first name is already the preferred one when there is one)."""
        mobiles, phones, consents = self.mobiles, self.phones, self._values(form).consents
        out = []
        append = out.append
        for num, first, last, status, wireless, home, work, emails, txt_ok, confirm, contact, lang, guarantor in rows:
            sms_ok, email_ok, voice_ok, active = consents[status, txt_ok, confirm, contact]
            append((num, first, last, mobiles[wireless] if wireless else None,
                    (phones[home] if home else None) or (phones[work] if work else None),
                    email(emails) if emails else None, sms_ok, email_ok, voice_ok, _language(lang), None,
                    guarantor, active))
        return out

    def recalls(self, rows, form: StoredForm | None = None) -> list[tuple]:
        """RecallRecord tuples; a due date Open Dental has not computed yet comes from the last visit."""
        values = self._values(form)
        days, flag, types, out = values.days, values.flag, self.recall_types, []
        for num, patient, due, previous, interval, disabled, kind in rows:
            if due is None or due == NO_DAY:  # Open Dental leaves it empty until it computes it
                if previous is None or previous == NO_DAY or not interval:
                    continue  # never seen for this recall: nothing is due yet
                due = Interval.unpack(interval).after(previous)
            out.append((num, patient, days(due), types.get(kind, ""), flag(not disabled)))
        return out


def _same(value):
    return value


class _Values:
    """The values the mappers work out once each, in one form: the records' own (``form`` None:
    aware datetimes, dates, bools, AppointmentStatus members) or a consumer's ``StoredForm``."""

    def __init__(self, practice: Practice, form: StoredForm | None) -> None:
        self.practice = practice
        if form is None:
            self.instant = self.flag = _same
            self.statuses, self.days = STATUS, _same
        else:
            self.instant, self.flag = form.instant, form.flag
            self.statuses = {code: status.value for code, status in STATUS.items()}
            self.days = Memo(form.day, limit=100_000).__getitem__  # due dates repeat
        self.places = Memo(self._place)
        #: each zone's local times, worked out once (in the records' form one object per time, so
        #: the mirror converts and hashes each once)
        self.zones: dict[ZoneInfo, Memo] = {}
        self.consents = Memo(self._consent, limit=10_000)

    def _place(self, place: int) -> tuple[str, Memo]:
        """(location key, the times of its zone) of a ClinicNum, or of minus the chair when 0 (see
        queries.APPOINTMENTS): booked before clinics were on, the chair says where."""
        practice = self.practice
        key = str(place if place >= 0 else practice.op_clinic.get(-place, 0))
        zone = practice.zones.get(key) or practice.zones["0"]
        if (times := self.zones.get(zone)) is None:
            times = self.zones[zone] = Memo(partial(self._time, zone))
        return key, times

    def _time(self, zone: ZoneInfo, text: str | None):
        """A local time in text, in ``zone`` and the form; None when there is none (0001-01-01,
        MySQL's zero date, or no end past the year 9999)."""
        try:
            naive = datetime.fromisoformat(text)
        except (TypeError, ValueError):
            return None
        return None if naive.year == 1 else self.instant(naive.replace(tzinfo=zone))

    def _consent(self, codes: tuple) -> tuple:
        """(sms_ok, email_ok, voice_ok, active) from PatStatus, TxtMsgOk and the preferred methods."""
        status, txt_ok, confirm, contact = codes
        alive = status != DECEASED
        sms_ok = alive and (txt_ok == YES or (txt_ok == UNKNOWN and not self.practice.unknown_is_no))
        flag = self.flag
        return (flag(sms_ok), flag(alive), flag(alive and confirm != DO_NOT_CALL and contact != DO_NOT_CALL),
                flag(status in ACTIVE))


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
