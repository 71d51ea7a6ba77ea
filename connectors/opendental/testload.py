"""Bulk loading for the test database: multi-row INSERTs, built while the server stores the last ones.

mysqlclient's ``executemany`` quotes each value through Python-level dispatch (~60 µs a row of 17
values); the generator's rows hold only ints, floats, strings, dates and datetimes, so quoting them
here is 4× faster. A writer thread sends each statement while the next is being built (the driver
releases the GIL while the server works), so the load runs at about the server's insert speed.
"""

from __future__ import annotations

import threading
from queue import Queue

ROWS = 2000  #: rows per INSERT: well under max_allowed_packet (16 MB by default)
#: what mysql_real_escape_string escapes (safe in utf8: no multi-byte sequence holds these bytes)
ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"})


class Loader:
    """``add(table, columns, row)`` rows, then ``close()``; counts the rows per table."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.buffers: dict[str, tuple[tuple, list]] = {}
        self.counts: dict[str, int] = {}
        self.statements: Queue = Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._send, name="od-testdb-writer", daemon=True)
        self.thread.start()

    def add(self, table: str, columns: tuple, row: tuple) -> None:
        columns, buffer = self.buffers.setdefault(table, (columns, []))
        buffer.append(row)
        if len(buffer) >= ROWS:
            self._flush(table)

    def add_all(self, table: str, columns: tuple, rows) -> None:
        for row in rows:
            self.add(table, columns, row)
        self._flush(table)

    def close(self) -> dict[str, int]:
        """Send what is left, wait for the writer, commit; the row counts per table."""
        try:
            for table in list(self.buffers):
                self._flush(table)
        finally:
            self.statements.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error
        self.conn.commit()
        return self.counts

    def abort(self) -> None:
        """Stop the writer after what it was given; nothing more is committed."""
        self.buffers.clear()
        self.statements.put(None)
        self.thread.join()

    def _flush(self, table: str) -> None:
        columns, buffer = self.buffers.get(table, ((), []))
        if not buffer:
            return
        if self.error is not None:
            raise self.error
        literal = self._literal
        values = ",".join(["(" + ",".join([literal(v) for v in row]) + ")" for row in buffer])
        self.statements.put(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}")
        self.counts[table] = self.counts.get(table, 0) + len(buffer)
        buffer.clear()

    @staticmethod
    def _literal(value) -> str:
        kind = type(value)
        if kind is int or kind is float:
            return str(value)
        if kind is str:
            return "'" + value.translate(ESCAPES) + "'"
        return f"'{value}'"  # date, datetime: ISO text

    def _send(self) -> None:
        cursor = self.conn.cursor()
        while (statement := self.statements.get()) is not None:
            if self.error is None:
                try:
                    cursor.execute(statement)
                except BaseException as exc:  # noqa: BLE001 - handed to the producer, which raises it
                    self.error = exc
