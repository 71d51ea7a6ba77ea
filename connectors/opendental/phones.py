"""Phones to E.164 at bulk speed, with exactly the answers of :func:`vitalsync.sync.normalize.e164`.

A full sync normalises a few hundred thousand free-text phones; phonenumbers takes ~30 µs each.
Most North American numbers are typed in a handful of shapes (``(503)363-5432``, ``503-363-5432``,
``5033635432``, ``+1 503 363 5432``). For those the answer depends only on the area code and the
exchange: libphonenumber's NANP metadata decides validity and type on the first six digits (the
tests compare both paths on random numbers). So those six digits are checked once with
phonenumbers and cached; anything else goes to phonenumbers itself, cached by its raw text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from phonenumbers import PhoneNumber, PhoneNumberType, number_type
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from vitalsync.sync.normalize import e164

NANP = frozenset(COUNTRY_CODE_TO_REGION_CODE[1])
#: (503)363-5432, 503.363.5432, 1-503-363-5432, +1 503 363 5432 x12 ...: area code, exchange, line
PLAIN = re.compile(r"\s*(?:\+?1[\s.-]?)?\(?([2-9]\d\d)\)?[\s.-]{0,2}(\d{3})[\s.-]?(\d{4})"
                   r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?\s*")


def phone(raw: str, region: str, mobile_only: bool = False) -> str | None:
    """``raw`` in E.164, or None when empty or not a valid number (never raises)."""
    if not raw:
        return None
    if region in NANP and (match := PLAIN.fullmatch(raw)):
        area, exchange, line = match.groups()
        return f"+1{area}{exchange}{line}" if _nanp_prefix(area + exchange)[mobile_only] else None
    return _parsed(raw, region, mobile_only)


@lru_cache(maxsize=200_000)
def _nanp_prefix(prefix: str) -> tuple[bool, bool]:
    """(valid, valid and textable) for the North American numbers starting with these six digits."""
    # phonenumbers' is_valid_number is its number_type being known: one look at the metadata, not two
    kind = number_type(PhoneNumber(country_code=1, national_number=int(prefix + "0000")))
    return kind != PhoneNumberType.UNKNOWN, kind not in (PhoneNumberType.UNKNOWN, PhoneNumberType.FIXED_LINE)


@lru_cache(maxsize=100_000)
def _parsed(raw: str, region: str, mobile_only: bool) -> str | None:
    return e164(raw, region, mobile_only=mobile_only)
