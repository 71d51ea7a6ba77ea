"""A synthetic sample patient to render templates for: the console's Message kinds page and
``vitalsync check``. Never a real patient: a preview must not put anyone's PHI on a screen.

Alex (and, for a family message, Sam) booked tomorrow at 9:00 and 9:30 clinic time at "Main Street"
with "Dr. Sample"; a recall due in two weeks; an order ready today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from vitalsync.core.vocab import Channel
from vitalsync.mirror.tables import Appointment, Location, Patient, Pickup, Provider, Recall
from vitalsync.rules.kinds import MessageKind
from vitalsync.rules.render import build_context, render, sms_segments


@dataclass(frozen=True)
class Sample:
    channel: str
    language: str
    family: bool
    body: str
    subject: str | None = None
    segments: int | None = None  #: SMS only: what one such text costs


def sample_context(clinic_name: str, clinic_phone: str, language: str, zone: ZoneInfo, now: datetime,
                   family: bool = False) -> dict:
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    location = Location(key="sample", name="Main Street", timezone=zone.key, phone=clinic_phone)
    provider = Provider(key="sample", name="Dr. Sample")
    alex = Patient(key="sample-1", first_name="Alex", last_name="Sample", language=language)
    sam = Patient(key="sample-2", first_name="Sam", last_name="Sample", language=language)

    def booking(patient: Patient, at: time) -> tuple:
        start = datetime.combine(tomorrow, at, zone)
        appointment = Appointment(key=f"{patient.key}-a", patient_key=patient.key, location_key=location.key,
                                  provider_key=provider.key, start=start, end=start + timedelta(minutes=30),
                                  first_seen_at=now, changed_at=now, previous_start=start - timedelta(days=1))
        return appointment, location, provider, patient

    members = [booking(alex, time(9, 0))] + ([booking(sam, time(9, 30))] if family else [])
    return build_context(
        clinic_name=clinic_name, clinic_phone=clinic_phone, patient=alex, language=language, tz=zone,
        appointments=members, recall=Recall(key="sample", patient_key=alex.key, due=tomorrow + timedelta(days=13)),
        pickup=Pickup(key="sample", patient_key=alex.key, location_key=location.key, ready_at=now),
        pickup_location=location)


def samples(kind: MessageKind, clinic_name: str, clinic_phone: str, zone: ZoneInfo, now: datetime) -> list[Sample]:
    """Each of the kind's templates (every channel, every language) rendered for the sample patient;
    a family-grouping kind's also as a family message."""
    result = []
    for family in (False, True) if kind.group_family else (False,):
        for channel in kind.channels:
            channel = Channel(channel)
            for language in getattr(kind.templates, channel.value):
                context = sample_context(clinic_name, clinic_phone, language, zone, now, family)
                rendered = render(kind, channel, language, context)
                result.append(Sample(channel.value, language, family, rendered.body, rendered.subject,
                                     sms_segments(rendered.body) if channel is Channel.SMS else None))
    return result
