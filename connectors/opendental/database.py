"""The connection to Open Dental's MariaDB/MySQL: a read-only session, errors by what to do next,
and result sets streamed from the server so a full sync holds one chunk in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import starmap
from urllib.parse import unquote, urlsplit

import MySQLdb
from MySQLdb.constants import FIELD_TYPE
from MySQLdb.converters import conversions
from MySQLdb.cursors import SSCursor
from MySQLdb.times import Date_or_None, DateTime_or_None

from vitalsync.core.errors import ConfigError, PersonMustAct, RetryLater
from vitalsync.sync.connector import StoredForm

FETCH = 5000
#: client errors: the server cannot be reached, went away, or is busy for now
TRANSIENT = {1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055}


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    database: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def parse_url(url: str, password: str = "") -> Target:
    """``mysql://user@host:port/database``; the password comes from a secret, never the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"connector.url: {url!r} is not mysql://user@host:port/database")
    if parts.password:
        raise ConfigError("connector.url: put the password in connector.password_file, not in the URL")
    return Target(parts.hostname, parts.port or 3306, unquote(parts.username or "root"), password,
                  unquote(parts.path.strip("/")))


def _cached(convert):
    """``convert`` once per distinct text: dates and times repeat a lot (recall due dates)."""
    cache: dict = {}

    def cached(value):
        try:
            return cache[value]
        except KeyError:
            if len(cache) > 100_000:
                cache.clear()
            result = cache[value] = convert(value)
            return result

    return cached


CONVERSIONS = {**conversions, FIELD_TYPE.DATETIME: _cached(DateTime_or_None), FIELD_TYPE.DATE: _cached(Date_or_None)}


def connect(target: Target, *, database: str | None | bool = True, read_only: bool = True):
    """A connection with autocommit on; read-only unless asked (only the test generator writes)."""
    try:
        conn = MySQLdb.connect(host=target.host, port=target.port, user=target.user, password=target.password,
                               database=target.database if database is True else database or "",
                               charset="utf8mb4", connect_timeout=10, autocommit=True, conv=CONVERSIONS)
        if read_only:
            # a slow consumer of a streamed result must not make the server drop it
            cursor = conn.cursor()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute("SET SESSION net_write_timeout = 600")
    except MySQLdb.Error as exc:
        raise failure(exc, target) from None
    return conn


def failure(exc: Exception, target: Target) -> Exception:
    """The driver's error as what the caller does next, saying what to fix (no patient data)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    detail = exc.args[1] if len(exc.args) > 1 else str(exc)
    where = f"Open Dental database {target}"
    fixes = {
        1044: f"the user may not use the database; run: GRANT SELECT ON `{target.database}`.* TO '{target.user}'@'%'",
        1045: f"access denied for '{target.user}': check connector.url and the secret 'opendental_password'",
        1049: f"the database '{target.database}' does not exist on {target.host}:{target.port}; check connector.url",
        1142: f"the user may not read a table; run: GRANT SELECT ON `{target.database}`.* TO '{target.user}'@'%'",
        1143: f"the user may not read a column; run: GRANT SELECT ON `{target.database}`.* TO '{target.user}'@'%'",
        1146: "a table is missing: is this an Open Dental database (version 21.1 or later)?",
        1054: "a column is missing: vitalsync reads Open Dental 21.1 or later",
        2005: f"the host '{target.host}' is unknown; check connector.url",
    }
    if code in fixes:
        return PersonMustAct(f"{where}: {fixes[code]} (MySQL error {code}: {detail})")
    if code in TRANSIENT or (isinstance(exc, MySQLdb.OperationalError) and code >= 2000):
        return RetryLater(f"{where} is not reachable now (MySQL error {code}: {detail})")
    return PersonMustAct(f"{where}: unexpected error (MySQL error {code}: {detail})")


class Rows:
    """The records of one query, streamed from the server afresh each time they are iterated.

    A full read hands these to the mirror instead of lists: half a million appointments never sit
    in memory at once. ``len()`` and ``bool()`` ask the server about the same query. The mapper
    turns a fetched chunk into tuples in ``record``'s field order: ``tuples()`` hands those on as
    they are (the mirror's bulk path; with its values in a consumer's ``StoredForm`` when given one),
    iteration builds the records. ``rejected`` is the list the mapper names damaged rows in.

    It pickles and opens its own connections, so the mirror may read it in a process of its own
    (``own_process``, see ``vitalsync.mirror.reader``) when it is big: ``estimated_rows``, the
    server's estimate of the table's size (0 when not known).
    """

    own_process = True

    def __init__(self, target: Target, sql: str, args: tuple, mapper, record: type, count_sql: str,
                 rejected: list[str] | None = None, estimated_rows: int = 0) -> None:
        self.target, self.sql, self.args, self.mapper, self.record, self.count_sql = target, sql, args, mapper, record, count_sql
        self.rejected, self.estimated_rows = rejected, estimated_rows

    def __iter__(self):
        record = self.record
        for chunk in self.tuples():
            yield from starmap(record, chunk)

    def tuples(self, size: int = FETCH, form: StoredForm | None = None):
        """Lists of about ``size`` record tuples (fewer where rows were skipped), values in ``form``."""
        conn = connect(self.target)
        try:
            cursor = conn.cursor(SSCursor)
            cursor.execute(self.sql, self.args)
            while rows := cursor.fetchmany(size):
                if chunk := self.mapper(rows, form):
                    yield chunk
        except MySQLdb.Error as exc:
            raise failure(exc, self.target) from None
        finally:
            conn.close()

    def __len__(self) -> int:
        return self._scalar(self.count_sql)

    def __bool__(self) -> bool:
        return self._scalar(f"SELECT EXISTS ({self.sql} LIMIT 1)") == 1

    def _scalar(self, sql: str):
        conn = connect(self.target)
        try:
            cursor = conn.cursor()
            cursor.execute(sql, self.args)
            return cursor.fetchone()[0]
        except MySQLdb.Error as exc:
            raise failure(exc, self.target) from None
        finally:
            conn.close()
