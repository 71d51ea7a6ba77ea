"""SIU scheduling messages read into a Batch: one appointment with its patient, location and provider.

The trigger event says what happened; for S12/S13/S14 the filler status (SCH-25, table 0278)
refines it, so an S14 that marks a visit ``Complete`` completes it. Each message carries the whole
appointment (as Open Dental, Epic and Cerner send it), so every message but a delete must name
the patient, the time and the place.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from vitalsync.core.vocab import AppointmentStatus as Status
from vitalsync.sync.connector import AppointmentRecord, Batch, LocationRecord, ProviderRecord
from vitalsync_connectors.hl7.message import Message, MessageError, Segment
from vitalsync_connectors.hl7.patient import patient
from vitalsync_connectors.hl7.times import duration, moment

#: The status each trigger event sets; None lets SCH-25 decide. S16 (discontinued: the remaining
#: occurrences are cancelled) counts as a cancellation: no reminder should go to it.
EVENTS = {"S12": None, "S13": None, "S14": None, "S15": Status.CANCELLED, "S16": Status.CANCELLED,
          "S17": Status.DELETED, "S26": Status.NO_SHOW}
#: Table 0278. A waitlisted or blocked slot is not a booked visit: nobody is reminded of it.
FILLER = {"booked": Status.SCHEDULED, "overbook": Status.SCHEDULED, "pending": Status.SCHEDULED,
          "started": Status.SCHEDULED, "complete": Status.COMPLETED, "cancelled": Status.CANCELLED,
          "dc": Status.CANCELLED, "waitlist": Status.CANCELLED, "blocked": Status.CANCELLED,
          "deleted": Status.DELETED, "noshow": Status.NO_SHOW}
#: Where each resource segment keeps its start, duration and duration units (AIG's sit two later).
RESOURCES = {"AIS": (4, 7, 8), "AIG": (8, 11, 12), "AIL": (6, 9, 10), "AIP": (6, 9, 10)}


def ignored(message: Message) -> str | None:
    """Why vitalsync leaves this message unapplied (it is still acknowledged), or None to apply it."""
    kind, event = message.header.get(9, 1), message.header.get(9, 2)
    if kind != "SIU" or event not in EVENTS:
        return f"{kind}^{event} is not a scheduling event vitalsync reads; ignored"
    processing = message.header.get(11, 1)
    if processing not in ("", "P"):
        return f"processing ID {processing} is not production; ignored"
    return None


def read(message: Message, zone: ZoneInfo, region: str) -> Batch:
    """The changes one SIU message makes (raise MessageError when it lacks what they need)."""
    sch = _required(message, "SCH")
    key = (sch.get(2) or sch.get(1)).strip()
    if not key:
        raise MessageError("SCH-2 (the filler appointment ID) and SCH-1 are empty", where="SCH-2")
    status = EVENTS[message.header.get(9, 2)] or FILLER.get(sch.get(25).strip().lower(), Status.SCHEDULED)
    if status is Status.DELETED:
        return Batch(complete=False, deleted_appointments=[key])
    person = patient(_required(message, "PID"), region)
    location = _location(message, zone)
    provider = _provider(message)
    start, end = _times(message, zone)
    appointment = AppointmentRecord(key=key, patient_key=person.key, location_key=location.key, start=start, end=end,
                                    status=status, provider_key=provider and provider.key,
                                    type=sch.get(8, 1) or sch.get(8, 2) or sch.get(7, 1))
    return Batch(complete=False, locations=[location], providers=[provider] if provider else [], patients=[person],
                 appointments=[appointment])


def _required(message: Message, name: str) -> Segment:
    segment = message.first(name)
    if segment is None:
        raise MessageError(f"the {name} segment is missing", where=name, code=100)
    return segment


def _resource(message: Message, name: str) -> Segment | None:
    """The first resource segment of a kind that is not being removed (segment action code D)."""
    return next((s for s in message.all(name) if s.get(2).upper() != "D"), None)


def _location(message: Message, zone: ZoneInfo) -> LocationRecord:
    """AIL-3 (point of care, else facility), else the patient's PV1-3, else the sending facility MSH-4."""
    for segment, number in ((_resource(message, "AIL"), 3), (message.first("PV1"), 3)):
        if segment is None:
            continue
        if key := segment.get(number, 1) or segment.get(number, 4, 1) or segment.get(number, 4, 2):
            return LocationRecord(key=key, name=segment.get(number, 9) or key, timezone=zone.key)
    if key := message.header.get(4, 1) or message.header.get(4, 2):
        return LocationRecord(key=key, name=key, timezone=zone.key)
    raise MessageError("no location: AIL-3, PV1-3 and MSH-4 are empty", where="AIL-3")


def _provider(message: Message) -> ProviderRecord | None:
    """AIP-3 (ID^family^given), else PV1-7, the attending doctor."""
    for segment, number in ((_resource(message, "AIP"), 3), (message.first("PV1"), 7)):
        if segment is not None and (key := segment.get(number, 1).strip()):
            name = " ".join(part for part in (segment.get(number, 3), segment.get(number, 2, 1)) if part)
            return ProviderRecord(key=key, name=name or key)
    return None


def _times(message: Message, zone: ZoneInfo):
    """Start and end from TQ1-7/8 (v2.5+) or SCH-11.4/5 (TQ), else a resource's start and duration."""
    tq1, sch = message.first("TQ1"), message.first("SCH")
    resources = [(name, segment, RESOURCES[name]) for name in RESOURCES if (segment := _resource(message, name))]
    starts = [(tq1, 7, 1, "TQ1-7"), (sch, 11, 4, "SCH-11.4")] + [
        (segment, at[0], 1, f"{name}-{at[0]}") for name, segment, at in resources]
    start = _first_time(starts, zone)
    if start is None:
        raise MessageError("no start time: TQ1-7, SCH-11.4 and the resources' start are empty", where="SCH-11.4")
    end = _first_time([(tq1, 8, 1, "TQ1-8"), (sch, 11, 5, "SCH-11.5")], zone)
    if end is None:
        end = start + _length(tq1, sch, resources)
    if end <= start:
        raise MessageError("the appointment ends before it starts", where="SCH-11.5", code=102)
    return start, end


def _first_time(places, zone: ZoneInfo):
    for segment, number, component, where in places:
        # a TS inside a component keeps its time in the first subcomponent
        if segment is not None and (raw := segment.get(number, component, 1)):
            return moment(raw, zone, where)
    return None


def _length(tq1, sch, resources):
    """TQ1-6 (quantity^units), SCH-9/10, SCH-11.3 (``M30``), then each resource's duration and units."""
    places = [(tq1, 6, 1, 6, 2, "TQ1-6"), (sch, 9, 1, 10, 1, "SCH-9"), (sch, 11, 3, 0, 0, "SCH-11.3")] + [
        (segment, at[1], 1, at[2], 1, f"{name}-{at[1]}") for name, segment, at in resources]
    for segment, number, component, unit_field, unit_component, where in places:
        if segment is not None and (quantity := segment.get(number, component, 1)):
            units = segment.get(unit_field, unit_component, 1) if unit_field else ""
            return duration(quantity, units, where)
    raise MessageError("no end time and no duration (TQ1-8, SCH-11.5, TQ1-6, SCH-9, AIL-9)", where="SCH-9")
