"""Cleaning one value of a query's row: keys, texts, flags, times. Drivers hand out whatever type the
view's column has (``Decimal('12')`` for a NUMERIC key, text for a date in some views), so every
cleaner takes any type.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalsync.sync import normalize
from vitalsync.sync.tabular import YES


class Unusable(Exception):
    """A required value cannot be read; ``str()`` is the field and the reason, never the value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")


def fold(name) -> str:
    return " ".join(str(name).split()).casefold()


def text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (Decimal, float)) and math.isfinite(value) and value == int(value):
        return str(int(value))  # NUMERIC keys arrive as Decimal('12') or 12.0
    return str(value).strip()


def key(value, field: str = "key") -> str:
    found = text(value)
    if not found:
        raise Unusable(field, "missing")
    return found


def ref(value) -> str | None:
    """An optional reference to another row; PMSs write 0 for 'none'."""
    found = text(value)
    return None if found in ("", "0") else found


def flag(value, default: bool = True) -> bool:
    """A yes/no column; empty keeps the default, an unknown word is a no (nothing is sent on a guess)."""
    if isinstance(value, (bool, int, Decimal, float)):
        return bool(value)
    word = fold(value) if value is not None else ""
    return default if not word else word in YES


def zone(value) -> str | None:
    name = text(value)
    try:
        return ZoneInfo(name).key if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def minutes(value) -> int | None:
    try:
        found = int(Decimal(text(value)))
    except (ArithmeticError, ValueError):
        return None
    return found if found > 0 else None


def moment(value, field: str, local: ZoneInfo) -> datetime:
    """An aware date-time; a naive one is taken in the PMS's zone ``local``."""
    if isinstance(value, str):
        written = value.strip()
        if not written:
            raise Unusable(field, "missing")
        try:
            value = datetime.fromisoformat(written)
        except ValueError:
            raise Unusable(field, "not a date") from None
        if len(written) <= 10:
            raise Unusable(field, "not a date and time")
    if normalize.empty(value) is None:
        raise Unusable(field, "missing")
    if not isinstance(value, datetime):
        raise Unusable(field, "not a date and time" if isinstance(value, date) else "not a date")
    return value if value.tzinfo else value.replace(tzinfo=local)


def day(value, field: str) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise Unusable(field, "not a date") from None
    if normalize.empty(value) is None:
        raise Unusable(field, "missing")
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise Unusable(field, "not a date")
    return value
