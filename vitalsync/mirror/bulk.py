"""Bulk writes through the database driver: values converted once per column, then executemany.

SQLAlchemy's per-value bind processing costs more than SQLite's own insert, and a full sync writes
hundreds of thousands of rows; so the mirror's big writes go to the driver directly. Reads and small
writes stay with SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from itertools import chain, repeat

from sqlalchemy import Connection, String, Table

from vitalsync.core.db import UTCDateTime
from vitalsync.core.memo import Memo
from vitalsync.mirror.forms import SQLITE_BOOLEAN, naive_utc, sqlite_utc


ROWS_PER_INSERT = 500  #: new rows in one SQLite INSERT (fewer when its bound variables would pass the limit)


class Writer:
    """INSERTs and UPDATEs of plain tuples in ``columns`` order, on the session's own connection
    (so inside its transaction). Values are converted a column at a time with cached converters:
    a sync's times, dates and its "now" repeat on many rows."""

    def __init__(self, conn: Connection, table: Table, columns: list[str]) -> None:
        self.conn = conn
        quote = conn.dialect.identifier_preparer.quote
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self.names = [quote(name) for name in columns]
        self.table_name = quote(table.name)
        self.insert_sql = self._insert_sql(())
        self.update_sql = (f"UPDATE {self.table_name} SET {', '.join(f'{n} = {self.mark}' for n in self.names[1:])} "
                           f"WHERE {self.names[0]} = {self.mark}")
        self.sqlite = conn.dialect.name == "sqlite"
        self.convert = [_converter(table.c[name], self.sqlite) for name in columns]
        # PostgreSQL takes new rows fastest through COPY, in the same transaction
        psycopg = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
        self.copy_sql = None if not psycopg else f"COPY {self.table_name} ({', '.join(self.names)}) FROM STDIN"

    def insert(self, rows: list[tuple], extra: tuple = (), stored: bool = False) -> None:
        """``rows`` with ``extra`` (the same values for every row) after each one; ``stored``: the
        rows' values are already as the mirror stores them (``forms.stored_form``), only ``extra`` is converted."""
        if not rows:
            return
        values = rows if stored else self._columns(rows)
        tail = tuple(value if convert is None else convert(value)
                     for convert, value in zip(self.convert[len(rows[0]):], extra))
        cursor = self.conn.connection.dbapi_connection.cursor()
        try:
            if self.copy_sql is not None:
                with cursor.copy(self.copy_sql) as copy:
                    write = copy.write_row
                    for row in values:
                        write(row + tail)
            elif self.sqlite and (literals := _literals(tail)) is not None:
                self._sqlite_insert(cursor, values if isinstance(values, list) else list(values), literals)
            else:
                cursor.executemany(self.insert_sql, [row + tail for row in values] if tail else values)
        finally:
            cursor.close()

    def _sqlite_insert(self, cursor, rows: list[tuple], literals: tuple[str, ...]) -> None:
        """Rows into SQLite, many to an INSERT. The values every row shares are written into the
        statement (binding them on each row costs a third more). The sqlite3 module lets go of the
        GIL on every step, which is every row with ``executemany``: while a thread reads ahead, that
        hands the GIL over and back twice a row; one statement for many rows steps once."""
        width = len(self.names) - len(literals)
        many = max(1, min(ROWS_PER_INSERT, cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(width, 1)))
        whole = len(rows) - len(rows) % many
        if whole:
            sql = self._insert_sql(literals, many)
            for first in range(0, whole, many):
                cursor.execute(sql, list(chain.from_iterable(rows[first:first + many])))
        if whole < len(rows):
            cursor.executemany(self._insert_sql(literals), rows[whole:])

    def _insert_sql(self, literals: tuple[str, ...], rows: int = 1) -> str:
        values = f"({', '.join([self.mark] * (len(self.names) - len(literals)) + list(literals))})"
        return f"INSERT INTO {self.table_name} ({', '.join(self.names)}) VALUES {', '.join([values] * rows)}"

    def update(self, rows: list[tuple], extra: tuple = ()) -> None:
        """Rows in column order, the key first; it goes last, into the WHERE clause."""
        if rows:
            self.conn.exec_driver_sql(self.update_sql, [(*values[1:], values[0]) for values in self._columns(rows, extra)])

    def _columns(self, rows: list[tuple], extra: tuple = ()):
        """The converted rows, built column by column: ``map`` over a column of a cached converter
        stays in C for every value seen before."""
        width = len(rows[0])
        columns: list = list(zip(*rows)) if width else []
        for index, convert in enumerate(self.convert[:width]):
            if convert is not None:
                columns[index] = map(convert, columns[index])
        for convert, value in zip(self.convert[width:], extra):
            columns.append(repeat(value if convert is None else convert(value)))
        return zip(*columns)


def _literals(values: tuple) -> tuple[str, ...] | None:
    """SQLite literals of converted values (NULL, ints, text), or None when one is of another kind."""
    literals = []
    for value in values:
        if value is None:
            literals.append("NULL")
        elif type(value) is int:
            literals.append(str(value))
        elif type(value) is str:
            literals.append("'" + value.replace("'", "''") + "'")
        else:
            return None
    return tuple(literals)


def _converter(column, sqlite: bool):
    """A converter of non-empty and empty (None) values, or None when the driver takes them as they are.

    Each is a C-level callable or a memo's look-up, so ``map`` over a column costs little per value."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return _memo(sqlite_utc if sqlite else naive_utc)
    python = getattr(kind, "python_type", None)
    if isinstance(getattr(kind, "impl_instance", kind), String) and not column.nullable:
        return str.__str__  # a StrEnum member as its plain value (drivers adapt subclasses slowly)
    if sqlite and python is bool:
        return SQLITE_BOOLEAN
    if sqlite and python is date:
        return _memo(date.isoformat)
    if sqlite and python is datetime:
        return _memo(lambda value: value.isoformat(" ", "microseconds"))
    return None


def _memo(convert):
    """A memo's look-up of ``convert`` (each value converted once per writer: a sync's times repeat,
    appointments share them and its "now" is on every row); empty stays empty."""
    return Memo(lambda value: None if value is None else convert(value), limit=500_000).__getitem__
