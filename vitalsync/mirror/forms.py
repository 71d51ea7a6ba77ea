"""How the mirror stores times, dates and flags (``StoredForm``), for streams that convert to it.

Kept apart from the writer (no SQLAlchemy here): a stream read in a process of its own
(``mirror.reader``) is handed these and imports only this.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from vitalsync.sync.connector import StoredForm


def naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use aware datetimes")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def sqlite_utc(value: datetime) -> str:
    """SQLAlchemy's own text form of a SQLite date-time, so its reads parse what we write."""
    return naive_utc(value).isoformat(" ", "microseconds")


#: the sqlite3 module binds a bool only after a failed look-up of an adapter for it (slow); an int at once
SQLITE_BOOLEAN = {True: 1, False: 0, None: None}.__getitem__


def same(value):
    return value


#: what the writer's converters make of each kind of value, for streams that hand values over
#: already so (``Writer.insert(stored=True)``): SQLite keeps times as SQLAlchemy's text of UTC, dates
#: as ISO text and flags as ints; PostgreSQL takes naive UTC datetimes and the rest as they are
SQLITE_FORM = StoredForm(instant=sqlite_utc, day=date.isoformat, flag=SQLITE_BOOLEAN)
POSTGRES_FORM = StoredForm(instant=naive_utc, day=same, flag=same)


def stored_form(conn) -> StoredForm:
    """The form of the mirror behind ``conn`` (a SQLAlchemy connection)."""
    return SQLITE_FORM if conn.dialect.name == "sqlite" else POSTGRES_FORM
