"""Who a message goes to, and on which channel: the first of the kind's channels that can be used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from vitalsync.core.vocab import Channel
from vitalsync.mirror.tables import Patient
from vitalsync.rules.kinds import MessageKind


@dataclass(frozen=True)
class Recipient:
    patient_key: str
    channel: str
    address: str
    language: str
    tz: ZoneInfo


def choose(kind: MessageKind, patient: Patient, location_key: str, snap) -> Recipient | str:
    """A recipient, or the reason no channel of the kind can reach the patient."""
    why_not = []
    for channel in kind.channels:
        address, problem = usable(Channel(channel), patient, snap.opted_out)
        if address:
            return Recipient(patient.key, Channel(channel).value, address, patient.language or "en",
                             snap.recipient_tz(patient, location_key))
        why_not.append(f"{Channel(channel).value}: {problem}")
    return "no usable contact (" + "; ".join(why_not) + ")"


def usable(channel: Channel, patient: Patient, opted_out: Callable[[str, str, str], bool]) -> tuple[str | None, str]:
    """The patient's address on ``channel``, or None and why not."""
    if channel is Channel.SMS:
        address, consent = patient.mobile, patient.sms_ok
        missing = "no mobile number"
    elif channel is Channel.EMAIL:
        address, consent = patient.email, patient.email_ok
        missing = "no email address"
    else:
        address, consent = patient.mobile or patient.landline, patient.voice_ok
        missing = "no phone number"
    if not address:
        return None, missing
    if not consent:
        return None, "no consent in the PMS"
    if opted_out(patient.key, address, channel.value):
        return None, "opted out"
    return address, ""
