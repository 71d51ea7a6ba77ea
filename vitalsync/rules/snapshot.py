"""What planning looks at: the mirror's rows and the queue's state at one moment, read by the caller.

``Snapshot`` holds plain rows; the subjects below turn them into what a kind's trigger is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from vitalsync.core.times import shown
from vitalsync.core.vocab import AppointmentStatus, DecisionKind
from vitalsync.mirror.tables import Appointment, Location, Patient, Pickup, Recall
from vitalsync.rules.kinds import MessageKind, Trigger
from vitalsync.rules.pacing import Booked, Limits
from vitalsync.rules.schedule import Window

GONE = (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED)


@dataclass(frozen=True)
class Target:
    """An appointment a message is about, at the version it was planned for."""

    appointment_key: str
    patient_key: str
    appointment_version: int


@dataclass(frozen=True)
class Pending:
    """A queued message not yet sent, as planning needs to see it."""

    id: int
    key: str
    kind: str
    appointment_keys: tuple[str, ...] = ()
    versions: tuple[int, ...] = ()
    subject_key: str | None = None
    evaluated: bool = True  #: whether this pass looked at its subject (else it is left alone)


@dataclass
class Snapshot:
    now: datetime
    horizon: datetime  #: messages due after this are not planned yet
    default_tz: ZoneInfo
    windows: dict[str, Window]  #: per location key, plus "" for the default
    patients: dict[str, Patient]
    locations: dict[str, Location]
    appointments: dict[str, Appointment]
    recalls: list[Recall] = field(default_factory=list)
    pickups: dict[str, Pickup] = field(default_factory=dict)
    opt_outs: set[tuple[str, str]] = field(default_factory=set)  #: (patient key or address, channel)
    #: appointment key -> confirmed / declined: a family member's own answer ("C1") counts for their appointment
    answered: dict[str, str] = field(default_factory=dict)
    existing_keys: set[str] = field(default_factory=set)
    pending: list[Pending] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)
    address_count: dict[str, int] = field(default_factory=dict)  #: patients per phone number or email address
    limits: Limits | None = None  #: spacing and the frequency cap per address; None: neither
    booked: list[Booked] = field(default_factory=list)  #: messages queued or sent lately, per address

    def window(self, location_key: str) -> Window:
        return self.windows.get(location_key) or self.windows[""]

    def recipient_tz(self, patient: Patient, location_key: str) -> ZoneInfo:
        if patient.timezone:
            return ZoneInfo(patient.timezone)
        return self.window(location_key).tz

    def opted_out(self, patient_key: str, address: str, channel: str) -> bool:
        return (patient_key, channel) in self.opt_outs or (address, channel) in self.opt_outs

    def shares_address(self, address: str) -> bool:
        return self.address_count.get(address, 0) > 1

    def upcoming_for(self, patient_key: str) -> bool:
        return patient_key in self._booked

    @cached_property
    def _booked(self) -> set[str]:
        """Patients with an upcoming scheduled appointment."""
        return {a.patient_key for a in self.appointments.values()
                if a.status == AppointmentStatus.SCHEDULED and a.start > self.now}

    def subjects(self, kind: MessageKind):
        trigger = kind.trigger
        if trigger in (Trigger.APPOINTMENT_START, Trigger.APPOINTMENT_END, Trigger.APPOINTMENT_MOVED,
                       Trigger.APPOINTMENT_CANCELLED):
            for appointment in self.appointments.values():
                if kind.filters.matches(appointment) and _triggers(trigger, appointment, self.now):
                    yield AppointmentSubject(self, appointment, trigger)
        elif trigger is Trigger.RECALL_DUE:
            for recall in self.recalls:
                if recall.active:
                    yield RecallSubject(self, recall)
        elif trigger is Trigger.PICKUP_READY:
            for pickup in self.pickups.values():
                if not pickup.picked_up:
                    yield PickupSubject(self, pickup)

    def why_unwanted(self, pending: Pending) -> tuple[DecisionKind, str]:
        for key, version in zip(pending.appointment_keys, pending.versions):
            appointment = self.appointments.get(key)
            if appointment is None or appointment.status in GONE:
                return DecisionKind.CANCELLED, "appointment cancelled or deleted in the PMS"
            if appointment.version != version and appointment.previous_start is not None:
                return DecisionKind.MOVED, f"appointment moved to {shown(appointment.start, self.window(appointment.location_key).tz)}; planned again for the new time"
            if key in self.answered:
                return DecisionKind.CANCELLED, f"patient already {self.answered[key]}"
            if appointment.version != version:
                return DecisionKind.CANCELLED, "appointment changed in the PMS"
        pickup = self.pickups.get(pending.subject_key or "")
        if pickup is not None and pickup.picked_up:
            return DecisionKind.CANCELLED, "order picked up"
        return DecisionKind.CANCELLED, "no longer planned (the kind, its filters or the family grouping changed)"


def _triggers(trigger: Trigger, appointment: Appointment, now: datetime) -> bool:
    if trigger is Trigger.APPOINTMENT_MOVED:
        return appointment.previous_start is not None and appointment.start > now
    if trigger is Trigger.APPOINTMENT_CANCELLED:
        # only cancellations a sync saw happen, before the appointment: not history from the first sync
        return appointment.changed_at > appointment.first_seen_at and appointment.start > appointment.changed_at
    return True


class AppointmentSubject:
    def __init__(self, snap: Snapshot, appointment: Appointment, trigger: Trigger) -> None:
        self.snap, self.appointment, self.trigger = snap, appointment, trigger
        self.patient = snap.patients.get(appointment.patient_key)
        self.appointment_key, self.subject_key = appointment.key, None
        self.location_key = appointment.location_key
        if trigger in (Trigger.APPOINTMENT_MOVED, Trigger.APPOINTMENT_CANCELLED):
            self.moment = appointment.changed_at
            self.key_part = f"{appointment.key}|v{appointment.version}"
        else:
            self.moment = appointment.end if trigger is Trigger.APPOINTMENT_END else appointment.start
            self.key_part = appointment.key
        self.moment_text = self.moment.isoformat()
        self.day = appointment.start.astimezone(snap.window(self.location_key).tz).date().isoformat()
        self.targets = (Target(appointment.key, appointment.patient_key, appointment.version),)

    def deadline(self, offset: timedelta) -> datetime | None:
        if self.trigger is Trigger.APPOINTMENT_END:
            return None
        return self.appointment.start

    def blocked_by(self, kind: MessageKind) -> str | None:
        if self.patient is None:
            return "patient not in the mirror"
        if not self.patient.active:
            return "patient inactive in the PMS (deceased, archived or deleted)"
        answer = self.snap.answered.get(self.appointment.key)
        if answer and answer in kind.stop_on:
            return f"patient already {answer}"
        return None


class RecallSubject:
    def __init__(self, snap: Snapshot, recall: Recall) -> None:
        self.snap, self.recall = snap, recall
        self.patient = snap.patients.get(recall.patient_key)
        self.appointment_key, self.subject_key = None, recall.key
        self.location_key = ""
        self.moment = datetime.combine(recall.due, time(10, 0), snap.window("").tz)
        self.moment_text, self.key_part, self.day, self.targets = recall.due.isoformat(), f"recall:{recall.key}", "", ()

    def deadline(self, offset: timedelta) -> datetime | None:
        return None

    def blocked_by(self, kind: MessageKind) -> str | None:
        if self.patient is None or not self.patient.active:
            return "patient inactive or not in the mirror"
        if self.snap.upcoming_for(self.recall.patient_key):
            return "patient already has an appointment booked"
        return None


class PickupSubject:
    def __init__(self, snap: Snapshot, pickup: Pickup) -> None:
        self.snap, self.pickup = snap, pickup
        self.patient = snap.patients.get(pickup.patient_key)
        self.appointment_key, self.subject_key = None, pickup.key
        self.location_key = pickup.location_key
        self.moment = pickup.ready_at
        self.moment_text, self.key_part, self.day, self.targets = pickup.ready_at.isoformat(), f"pickup:{pickup.key}", "", ()

    def deadline(self, offset: timedelta) -> datetime | None:
        return None

    def blocked_by(self, kind: MessageKind) -> str | None:
        if self.patient is None or not self.patient.active:
            return "patient inactive or not in the mirror"
        return None
