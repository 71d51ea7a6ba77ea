"""Cleaning PMS values at the edge: phones to E.164, emails, languages, empty sentinels."""

from __future__ import annotations

import re
from datetime import date, datetime

import phonenumbers

EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
LANGUAGES = {"eng": "en", "english": "en", "spa": "es", "spanish": "es", "español": "es", "espanol": "es",
             "fra": "fr", "fre": "fr", "french": "fr", "por": "pt", "portuguese": "pt", "vie": "vi", "chi": "zh", "zho": "zh"}
#: Values PMSs store for "nothing": Open Dental keeps no NULLs, and uses these instead.
EMPTY_DATES = (date(1, 1, 1), datetime(1, 1, 1))


def e164(raw: str | None, region: str = "US", *, mobile_only: bool = False) -> str | None:
    """``raw`` as an E.164 number, or None when it is empty or not a valid number."""
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if mobile_only and phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.FIXED_LINE,):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email(raw: str | None) -> str | None:
    """The first valid address of a field that may hold several (separated by ';' or ',')."""
    for part in re.split(r"[;,\s]+", raw or ""):
        if EMAIL.match(part):
            return part
    return None


def language(raw: str | None) -> str:
    """A two-letter language code from a PMS value ('spa', 'Spanish', 'es-MX'); 'en' when unknown."""
    value = (raw or "").strip().lower()
    if not value:
        return "en"
    if value in LANGUAGES:
        return LANGUAGES[value]
    head = value.replace("_", "-").split("-")[0]
    return head if len(head) == 2 and head.isalpha() else "en"


def empty(value):
    """None for a PMS's 'no value' sentinels ('', 0 keys, 0001-01-01), else the value."""
    if value in ("", None) or (isinstance(value, (date, datetime)) and value in EMPTY_DATES):
        return None
    return value
