"""The patient of an SIU message, from its PID segment.

Only a number the PMS marks as a cell phone (XTN-3 ``CP``) becomes the textable ``mobile``; a
number with no equipment type is a home phone, used for voice only. Emergency, beeper and
answering-service numbers (XTN-2 ``EMR``, ``BPN``, ``ASN``) reach someone else, so they are skipped.
"""

from __future__ import annotations

from vitalsync.sync import normalize
from vitalsync.sync.connector import PatientRecord
from vitalsync_connectors.hl7.message import MessageError, Repetition, Segment

SOMEONE_ELSE = {"EMR", "BPN", "ASN"}
VOICE = {"", "PH"}
EMAIL = {"INTERNET", "X.400"}


def patient(pid: Segment, region: str) -> PatientRecord:
    key = _identifier(pid)
    name = (pid.field(5) or [Repetition("", pid.sep)])[0]
    mobile = landline = email = None
    for number in pid.field(13) + pid.field(14):  # home, then business
        use, equipment = number.get(2).upper(), number.get(3).upper()
        if use == "NET" or equipment in EMAIL:
            email = email or normalize.email(number.get(4) or number.get(1))
        elif use in SOMEONE_ELSE:
            continue
        elif equipment == "CP":
            mobile = mobile or normalize.e164(_digits(number), region, mobile_only=True)
        elif equipment in VOICE:
            landline = landline or normalize.e164(_digits(number), region)
    language = pid.get(15, 1) or pid.get(15, 2)
    deceased = pid.get(30).upper() == "Y" or bool(pid.get(29))
    return PatientRecord(key=key, first_name=name.get(2), last_name=name.get(1, 1), mobile=mobile, landline=landline,
                         email=email, language=normalize.language(language), active=not deceased)


def _identifier(pid: Segment) -> str:
    """PID-3's first identifier (PID-2, the external ID of v2.3 and before, when PID-3 is empty)."""
    for number in (3, 2):
        for identifier in pid.field(number):
            if identifier.get(1).strip():
                return identifier.get(1).strip()
    raise MessageError("PID-3 (the patient identifier) is empty", where="PID-3")


def _digits(number: Repetition) -> str:
    """XTN-12 (unformatted), else country + area + local number (XTN-5/6/7), else XTN-1 as written."""
    if number.get(12):
        return number.get(12)
    if number.get(7):
        country = number.get(5).lstrip("+")
        return (f"+{country}" if country else "") + number.get(6) + number.get(7)
    return number.get(1)
