"""The database: one engine per process, SQLite by default (WAL, durable commits), PostgreSQL by URL."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


BUSY_SECONDS = 30.0  #: SQLite: how long a statement waits for another writer (the URL's ``?timeout=`` overrides)


def make_engine(url: str, password: str | None = None) -> Engine:
    """The engine for ``url``. Statements' values are never put into exception text (``hide_parameters``):
    they are patients' names, numbers and messages, and an exception may end up in a log or a terminal."""
    parsed = make_url(url)
    if password is not None:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        try:
            busy = float(parsed.query.get("timeout", BUSY_SECONDS))
        except ValueError:
            busy = BUSY_SECONDS
        parsed = parsed.difference_update_query(["timeout"])
        engine = create_engine(parsed, connect_args={"timeout": busy}, hide_parameters=True)
        event.listen(engine, "connect", lambda connection, record: _sqlite_pragmas(connection, record, busy))
        return engine
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def _private_file(path: Path) -> None:
    """The database holds names, phone numbers and password hashes: owner-only, whatever the umask.

    A new file is made 0600 before SQLite opens it (its -wal and -shm files take the same mode);
    an existing one of ours that others could read is closed to them."""
    if not path.parent.is_dir():
        return  # opening it fails with its own error, which the caller names
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        info = path.stat()
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def _sqlite_pragmas(connection, _record, busy: float = BUSY_SECONDS) -> None:
    cursor = connection.cursor()
    # a new database only (SQLite keeps an existing file's page size): 16 KB pages take a full
    # sync's half a million rows with a quarter fewer page writes, splits and WAL frames than 4 KB
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL makes each commit durable in WAL mode: a sent message is never forgotten on power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
    cursor.close()


def session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
