"""FHIR R4 resources as vitalsync records: FHIR's vocabulary stops here.

Every function takes one resource (parsed JSON) and returns a record, or raises :class:`Unreadable`
with a reason that names the resource by id and never holds patient data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.core.vocab import AppointmentStatus
from vitalsync.sync import normalize
from vitalsync.sync.connector import AppointmentRecord, LocationRecord, PatientRecord, ProviderRecord

STATUSES = {
    "booked": AppointmentStatus.SCHEDULED, "pending": AppointmentStatus.SCHEDULED,
    "arrived": AppointmentStatus.SCHEDULED, "checked-in": AppointmentStatus.SCHEDULED,
    "fulfilled": AppointmentStatus.COMPLETED, "cancelled": AppointmentStatus.CANCELLED,
    "noshow": AppointmentStatus.NO_SHOW,
}
#: Not (or no longer) a visit to remind: an error, a wish (proposed), a waiting-list entry.
GONE = frozenset({"entered-in-error", "proposed", "waitlist"})
#: Some servers send neither ``end`` nor ``minutesDuration``; the visit still gets its reminder.
DEFAULT_MINUTES = 30
#: Appointments that name no Location are held at this key (see :func:`fallback_location`).
NO_LOCATION = "default"
NAME_USES = ("official", "usual", None, "nickname", "anonymous", "temp", "maiden")


class Unreadable(ValueError):
    """A resource that cannot become a record."""


def appointment(resource: dict, zone: ZoneInfo) -> AppointmentRecord | None:
    """The appointment, or None when it is gone from the schedule (entered in error, proposed, waitlist)."""
    key, status = resource.get("id", ""), resource.get("status", "")
    if status in GONE:
        return None
    if status not in STATUSES:
        raise Unreadable(f"Appointment/{key}: unknown status {status!r}")
    actors = _actors(resource)
    if "Patient" not in actors:
        raise Unreadable(f"Appointment/{key}: no Patient participant")
    if "start" not in resource:
        if STATUSES[status] is not AppointmentStatus.SCHEDULED:
            return None  # a cancelled or missed request that never had a time
        raise Unreadable(f"Appointment/{key}: no start")
    start = _instant(resource["start"], zone, f"Appointment/{key}: start")
    if "end" in resource:
        end = _instant(resource["end"], zone, f"Appointment/{key}: end")
    else:
        end = start + timedelta(minutes=int(resource.get("minutesDuration") or DEFAULT_MINUTES))
    if end <= start:
        raise Unreadable(f"Appointment/{key}: ends before it starts")
    return AppointmentRecord(
        key=key, patient_key=actors["Patient"], location_key=actors.get("Location", NO_LOCATION),
        start=start, end=end, status=STATUSES[status], provider_key=actors.get("Practitioner"),
        type=_text(resource.get("appointmentType")) or next(filter(None, map(_text, resource.get("serviceType", []))), ""))


def patient(resource: dict, region: str) -> PatientRecord:
    first, last = _name(resource.get("name", []))
    mobile = landline = mail = None
    telecom = sorted((t for t in resource.get("telecom", []) if t.get("use") != "old" and t.get("value")),
                     key=lambda t: t.get("rank", 1 << 30))
    for point in telecom:
        system, use, value = point.get("system"), point.get("use"), point["value"]
        if system == "sms" or (system == "phone" and use == "mobile"):
            mobile = mobile or normalize.e164(value, region, mobile_only=True)
        elif system == "phone":
            landline = landline or normalize.e164(value, region)
        elif system == "email":
            mail = mail or normalize.email(value)
    deceased = resource.get("deceasedBoolean") is True or bool(resource.get("deceasedDateTime"))
    return PatientRecord(
        key=resource.get("id", ""), first_name=first, last_name=last, mobile=mobile, landline=landline,
        email=mail, language=_language(resource.get("communication", [])),
        active=resource.get("active", True) is not False and not deceased)


def practitioner(resource: dict) -> ProviderRecord:
    best = _best_name(resource.get("name", []))
    text = best.get("text") or " ".join([*best.get("prefix", []), *best.get("given", []), best.get("family", "")]).strip()
    return ProviderRecord(key=resource.get("id", ""), name=", ".join([text, *best.get("suffix", [])]) if text else "")


def location(resource: dict, zone: str, region: str) -> LocationRecord:
    """The Location; its zone is the timezone extension when it names a real one, else ``zone``."""
    declared = next((e.get("valueCode") or e.get("valueString") for e in resource.get("extension", [])
                     if e.get("url", "").rstrip("/").endswith("timezone")), None)
    phones = (normalize.e164(t.get("value"), region) for t in resource.get("telecom", []) if t.get("system") == "phone")
    phone = next(filter(None, phones), None)
    return LocationRecord(key=resource.get("id", ""), name=resource.get("name", ""),
                          timezone=declared if _is_zone(declared) else zone, phone=phone or "")


def fallback_location(zone: str) -> LocationRecord:
    """Where appointments that name no Location are held: the practice itself, in its own zone."""
    return LocationRecord(key=NO_LOCATION, name="", timezone=zone)


def reference(value: str) -> tuple[str, str] | None:
    """``("Patient", "123")`` from ``Patient/123``, an absolute URL or a versioned reference."""
    parts = value.split("/_history/")[0].rstrip("/").split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 2 and parts[-1] else None


def _actors(resource: dict) -> dict[str, str]:
    """The first actor of each type among the participants."""
    actors: dict[str, str] = {}
    for participant in resource.get("participant", []):
        found = reference(participant.get("actor", {}).get("reference", ""))
        if found:
            actors.setdefault(*found)
    return actors


def _instant(value: str, zone: ZoneInfo, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable(f"{where}: not a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _text(concept: dict | None) -> str:
    if not concept:
        return ""
    coding = next(iter(concept.get("coding", [])), {})
    return concept.get("text") or coding.get("display") or coding.get("code") or ""


def _best_name(names: list[dict]) -> dict:
    ranked = sorted(names, key=lambda n: NAME_USES.index(n.get("use")) if n.get("use") in NAME_USES else len(NAME_USES))
    return next(iter(ranked), {})


def _name(names: list[dict]) -> tuple[str, str]:
    best = _best_name(names)
    given, family = (best.get("given") or [""])[0], best.get("family", "")
    if not (given or family) and best.get("text"):
        given, _, family = best["text"].rpartition(" ")
        if not given:
            given, family = family, ""
    return given, family


def _language(communication: list[dict]) -> str:
    chosen = next((c for c in communication if c.get("preferred")), None) or next(iter(communication), {})
    concept = chosen.get("language", {})
    coding = next(iter(concept.get("coding", [])), {})
    return normalize.language(coding.get("code") or concept.get("text"))


def _is_zone(name: str | None) -> bool:
    try:
        return bool(name) and ZoneInfo(name) is not None
    except (ZoneInfoNotFoundError, ValueError):
        return False
