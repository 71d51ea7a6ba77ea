"""HL7 times and durations: ``YYYYMMDDHH[MM[SS[.S…]]][+/-ZZZZ]`` and a quantity with its units."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from vitalsync_connectors.hl7.message import MessageError

TS = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:\.\d{1,4})?(?:([+-])(\d{2})(\d{2}))?$")
UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
    **dict.fromkeys(("", "m", "min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days"), timedelta(days=1)),
    **dict.fromkeys(("w", "wk", "week", "weeks"), timedelta(weeks=1)),
}
#: TQ-3 (SCH-11.3 before v2.5) writes a duration as a letter and a number: M30 is 30 minutes.
TQ_DURATION = re.compile(r"^([SMHDW])(\d+)$")
TQ_UNITS = {"S": "s", "M": "min", "H": "h", "D": "d", "W": "w"}


def moment(raw: str, zone: ZoneInfo, where: str) -> datetime:
    """An aware time in ``zone``; one written without an offset is the PMS's local time."""
    match = TS.match(raw.strip())
    if not match:
        raise MessageError(f"{where} is not an HL7 date-time with a time of day", where=where, code=102)
    year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0))
        if sign is None:
            return naive.replace(tzinfo=zone)
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
        return naive.replace(tzinfo=timezone(offset)).astimezone(zone)
    except ValueError:
        raise MessageError(f"{where} is not a valid date-time", where=where, code=102) from None


def duration(quantity: str, units: str, where: str) -> timedelta:
    """``quantity`` of ``units`` (min, h, s, d; minutes when none is given) as a positive timedelta."""
    if (match := TQ_DURATION.match(quantity.strip())) and not units:
        quantity, units = match.group(2), TQ_UNITS[match.group(1)]
    unit = UNITS.get(units.strip().lower())
    if unit is None:
        raise MessageError(f"{where} has duration units vitalsync does not know", where=where, code=103)
    try:
        amount = float(quantity)
    except ValueError:
        raise MessageError(f"{where} is not a number", where=where, code=102) from None
    if not 0 < amount * unit.total_seconds() <= 366 * 86400:
        raise MessageError(f"{where} is not a plausible appointment length", where=where, code=102)
    return amount * unit
