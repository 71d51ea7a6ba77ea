"""Rendering a message kind's template: the one place that knows which fields a template may use.

Fields are "minimum necessary": the clinic, the patient's first name, dates, times, places and
numbers. Never a last name, a diagnosis or a procedure; adding a field here is a privacy decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from vitalsync.core.vocab import Channel
from vitalsync.mirror.tables import Appointment, Location, Patient, Pickup, Provider, Recall

if TYPE_CHECKING:
    from vitalsync.rules.kinds import MessageKind

ITEM = "appointments[]"  #: the FIELDS key of one item of the family list
FIELDS: dict[str, set[str]] = {
    "clinic": {"name", "phone"},
    "patient": {"first_name"},
    "appointment": {"date", "time", "when", "weekday", "location", "location_phone", "provider",
                    "previous_date", "previous_time", "previous_when"},
    "appointments": set(),  # a list: iterate it; its items have the ITEM fields
    ITEM: {"number", "first_name", "date", "time", "when", "location", "provider"},
    "recall": {"due_date"},
    "pickup": {"location", "location_phone", "ready_date"},
    "family": set(),  # a bool
}
_APPOINTMENT_NAMES = {"clinic", "patient", "appointment", "appointments", "family"}
#: The top-level names each trigger's context has (keyed by the Trigger value).
TRIGGER_NAMES: dict[str, set[str]] = {
    "appointment_start": _APPOINTMENT_NAMES,
    "appointment_end": _APPOINTMENT_NAMES,
    "appointment_moved": _APPOINTMENT_NAMES,
    "appointment_cancelled": _APPOINTMENT_NAMES,
    "recall_due": {"clinic", "patient", "recall"},
    "pickup_ready": {"clinic", "patient", "pickup"},
    "manual": _APPOINTMENT_NAMES,  # a group send is to appointments picked by day, place, provider, type
}
FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None


def day(value: date | datetime, language: str) -> str:
    """The locale's full date without the year: "Tuesday, November 24", "martes, 24 de noviembre"."""
    language = usable_language(language)
    return _plain(format_date(value, _day_pattern(language), locale=language))


@lru_cache(maxsize=64)
def usable_language(language: str) -> str:
    """``language`` when Babel knows it, else English: a PMS's odd language code must not stop a send."""
    try:
        Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError, AttributeError):
        return FALLBACK_LANGUAGE
    return language.replace("-", "_")


def _plain(text: str) -> str:
    # CLDR puts no-break spaces in "9:30 AM"; they are not GSM-7 and would make an SMS UCS-2.
    return text.replace("\u202f", " ").replace("\u00a0", " ")


@lru_cache(maxsize=64)
def _day_pattern(language: str) -> str:
    pattern = Locale.parse(language).date_formats["full"].pattern
    # The year and what ties it on: ", y", " 'de' y", " y 'г'." at the end, "y年" at the start.
    return re.sub(r"^y+(?:'[^']*'|[^A-Za-z\s])?\s*|[\s,.]*(?:'[^']*'\s*)?y+(?:\s*'[^']*')?\.?$", "", pattern)


def appointment_fields(appointment: Appointment, location: Location, provider: Provider | None, language: str,
                       tz: ZoneInfo, number: int = 1, first_name: str = "") -> dict:
    language = usable_language(language)
    start = appointment.start.astimezone(tz)
    joiner = str(Locale.parse(language).datetime_formats["full"]).replace("'", "")

    def moment(at: datetime | None) -> tuple[str, str, str]:
        if at is None:
            return "", "", ""
        at = at.astimezone(tz)
        d, t = day(at, language), _plain(format_time(at, "short", locale=language))
        return d, t, joiner.replace("{1}", d).replace("{0}", t)

    (d, t, w), (pd, pt, pw) = moment(start), moment(appointment.previous_start)
    return {
        "number": number, "first_name": first_name, "date": d, "time": t, "when": w,
        "weekday": format_date(start, "EEEE", locale=language), "location": location.name,
        "location_phone": location.phone, "provider": provider.name if provider else "",
        "previous_date": pd, "previous_time": pt, "previous_when": pw,
    }


def build_context(*, clinic_name: str, clinic_phone: str, patient: Patient, language: str, tz: ZoneInfo,
                  appointments: list[tuple[Appointment, Location, Provider | None, Patient]] = (),
                  recall: Recall | None = None, pickup: Pickup | None = None,
                  pickup_location: Location | None = None) -> dict:
    language = usable_language(language)
    context: dict = {
        "clinic": {"name": clinic_name, "phone": clinic_phone},
        "patient": {"first_name": patient.first_name},
        "appointments": [
            appointment_fields(a, loc, prov, language, tz, number, member.first_name)
            for number, (a, loc, prov, member) in enumerate(appointments, start=1)
        ],
        "family": len(appointments) > 1,
    }
    if appointments:
        context["appointment"] = context["appointments"][0]
    if recall is not None:
        context["recall"] = {"due_date": day(recall.due, language)}
    if pickup is not None:
        place = pickup_location
        context["pickup"] = {"location": place.name if place else "", "location_phone": place.phone if place else "",
                             "ready_date": day(pickup.ready_at.astimezone(tz), language)}
    return context


def render(kind: MessageKind, channel: Channel, language: str, context: dict) -> Rendered:
    if channel is Channel.EMAIL:
        email = kind.templates.email
        template = _pick(email, language)
        html = _compile(template.html, html=True).render(context) if template.html else None
        # Optional parts left out leave runs of blank lines; one blank line is enough.
        body = re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", _compile(template.text).render(context).strip())
        return Rendered(body=body,
                        subject=" ".join(_compile(template.subject).render(context).split()), html=html)
    sources = getattr(kind.templates, channel.value)
    source = _pick(sources, language)
    return Rendered(body=" ".join(_compile(source).render(context).split()))


def _pick(templates: dict, language: str):
    """The patient's language, else its base language ("es" for "es-MX"), else English."""
    base = language.replace("-", "_").split("_")[0]
    return templates.get(language) or templates.get(base) or templates[FALLBACK_LANGUAGE]


_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1024)
def _compile(source: str, html: bool = False) -> Template:
    return (_HTML if html else _TEXT).from_string(source)


_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
           "abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXTENDED = set("^{}\\[~]|€\f")  # two septets each: an escape, then the character


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes: GSM-7 when every character allows it, else UCS-2."""
    if all(ch in _GSM or ch in _GSM_EXTENDED for ch in text):
        sizes, single, part = [2 if ch in _GSM_EXTENDED else 1 for ch in text], 160, 153
    else:  # UTF-16 code units: a character outside the BMP (most emoji) takes two
        sizes, single, part = [2 if ord(ch) > 0xFFFF else 1 for ch in text], 70, 67
    if sum(sizes) <= single:
        return 1
    count, used = 1, 0
    for size in sizes:  # a two-unit character is never split across segments
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count
