"""Bulk writes through the database driver: values converted once per column, then executemany.

SQLAlchemy's per-value bind processing costs more than SQLite's own insert, and a full sync writes
hundreds of thousands of rows; so the mirror's big writes go to the driver directly. Reads and small
writes stay with SQLAlchemy.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache

from sqlalchemy import Connection, Table

from vitalsync.core.db import UTCDateTime


class Writer:
    def __init__(self, conn: Connection, table: Table, columns: list[str]) -> None:
        self.conn = conn
        quote = conn.dialect.identifier_preparer.quote
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        names = [quote(name) for name in columns]
        self.insert_sql = f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
        self.update_sql = (f"UPDATE {quote(table.name)} SET {', '.join(f'{n} = {mark}' for n in names[1:])} "
                           f"WHERE {names[0]} = {mark}")
        sqlite = conn.dialect.name == "sqlite"
        self.convert = [_converter(table.c[name].type, sqlite) for name in columns]
        # PostgreSQL takes new rows fastest through COPY, in the same transaction
        psycopg = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
        self.copy_sql = None if not psycopg else f"COPY {quote(table.name)} ({', '.join(names)}) FROM STDIN"

    def insert(self, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.copy_sql is None:
            self.conn.exec_driver_sql(self.insert_sql, [self._values(row) for row in rows])
            return
        with self.conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
            for row in rows:
                copy.write_row(self._values(row))

    def update(self, rows: list[tuple]) -> None:
        """Rows in column order, the key first; it goes last, into the WHERE clause."""
        if rows:
            self.conn.exec_driver_sql(self.update_sql, [(*values[1:], values[0]) for values in map(self._values, rows)])

    def _values(self, row: tuple) -> tuple:
        return tuple(value if convert is None or value is None else convert(value)
                     for convert, value in zip(self.convert, row))


def _converter(kind, sqlite: bool):
    if isinstance(kind, UTCDateTime):
        return _sqlite_utc if sqlite else _naive_utc
    python = getattr(kind, "python_type", None)
    if sqlite and python is date:
        return date.isoformat
    if sqlite and python is datetime:
        return lambda v: v.isoformat(" ", "microseconds")
    return None


# appointment times repeat (slots, and "now" on every row of a sync): convert each once
@lru_cache(maxsize=100_000)
def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None)


@lru_cache(maxsize=100_000)
def _sqlite_utc(value: datetime) -> str:
    """SQLAlchemy's own text form of a SQLite date-time, so its reads parse what we write."""
    return _naive_utc(value).isoformat(" ", "microseconds")
