"""Reading the values of a request: one place that turns query, form and path text into what a page
uses, or refuses it with a message for the person (400), never a 500 further down.

    day = values.day(page.query.get("day"), "day")          # a date, None when empty, else BadValue
    number = values.page_number(page.query.get("page"))     # 1 when empty
    to = values.moment(page.form.get("move_to"), "move_to", zone)

Every value of every console request is first checked by :func:`check_request` (the guard calls it),
so a page added later needs no code of its own for NUL characters or oversized text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)  #: far enough both ways; beyond, date arithmetic overflows
LAST_PAGE = 1_000_000
MAX_TEXT = 4000  #: characters in one value (a note, a list of locations); a form is 64 KB at most anyway


class BadValue(ValueError):
    """A value the page cannot use; its text tells the person which field and what is expected."""


def check_request(items: Iterable[tuple[str, str]]) -> None:
    """Refuse any name or value with a NUL character (PostgreSQL cannot store one) or longer than MAX_TEXT."""
    for name, value in items:
        if "\x00" in name or "\x00" in value:
            raise BadValue(f"{_label(name)}: contains a NUL character")
        if len(value) > MAX_TEXT:
            raise BadValue(f"{_label(name)}: longer than {MAX_TEXT} characters")


def day(text: str | None, name: str) -> date | None:
    """A date (YYYY-MM-DD) from FIRST_DAY to LAST_DAY; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise BadValue(f"{name}: expected a date such as 2026-03-02, got {text[:40]!r}") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise BadValue(f"{name}: a date from {FIRST_DAY} to {LAST_DAY}")
    return value


def moment(text: str | None, name: str, zone: ZoneInfo) -> datetime | None:
    """A date and time (YYYY-MM-DDTHH:MM, in ``zone`` unless it names its offset); None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"{name}: expected a date and time such as 2026-03-02T09:30, got {text[:40]!r}") from None
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise BadValue(f"{name}: a time from {FIRST_DAY} to {LAST_DAY}")
    return value if value.tzinfo else value.replace(tzinfo=zone)


def page_number(text: str | None, name: str = "page") -> int:
    """A page number from 1 to LAST_PAGE; 1 when empty."""
    text = (text or "").strip()
    if not text:
        return 1
    if not (text.isascii() and text.isdigit()) or len(text) > 7 or not 1 <= int(text) <= LAST_PAGE:
        raise BadValue(f"{name}: a page number from 1 to {LAST_PAGE}")
    return int(text)


def _label(name: str) -> str:
    return name.replace("\x00", "\\x00")[:40] or "(a value without a name)"
